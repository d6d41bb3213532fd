"""A Streamlit server for browser tests and benchmarks: a free loopback port, health wait."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

STARTUP_TIMEOUT_S = 240  # an upper bound: a loaded 2-core machine starts Streamlit slowly


class ServerNotReadyError(RuntimeError):
    """The server exited or never answered; the message holds its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_healthy(
    url: str, server: subprocess.Popen[bytes], log: Path, timeout_s: float = STARTUP_TIMEOUT_S
) -> None:
    """Return once ``url`` answers its health check; raise with the log if it cannot."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServerNotReadyError(
                f"the Streamlit server exited with {server.returncode}:\n{log.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise ServerNotReadyError(
        f"the Streamlit server did not answer within {timeout_s:.0f} s:\n{log.read_text()}"
    )
