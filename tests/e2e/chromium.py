"""Debian's Chromium for the browser tests and the load test: where it is, how it starts.

Nothing downloads a browser: ``tests/e2e/install_chromium.sh`` installs Debian's package,
and ``CHROMIUM_PATH`` points elsewhere if needed.
"""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def missing_chromium() -> str | None:
    """Why no browser can be started here (and how to get one), or None."""
    if CHROMIUM.is_file():
        return None
    return (
        f"no Chromium at {CHROMIUM}: run tests/e2e/install_chromium.sh "
        "(apt-get install chromium) or set CHROMIUM_PATH"
    )
