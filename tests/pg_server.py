"""A throwaway PostgreSQL server for tests: Debian's packages, a temp dir, a loopback port.

``start_server()`` finds ``initdb``/``pg_ctl`` (installing the ``postgresql`` package
with apt-get when they are missing and we are root), creates a cluster in a temporary
folder owned by a non-root user (PostgreSQL refuses to run as root), starts it on a
free port of 127.0.0.1 with trust authentication, and returns a :class:`PgServer`.
When any of that is impossible it raises :class:`PgUnavailable` with the reason, which
the tests turn into a skip.

Example::

    server = start_server()
    url = server.create_database("scratch")  # postgresql+psycopg2://tagger@127.0.0.1:PORT/scratch
    server.stop()
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "tagger"
SERVICE_USER = "postgres"
APT_TIMEOUT_S = 600


class PgUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def _find_bin_dir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _apt_install() -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PgUnavailable("PostgreSQL is not installed and apt-get cannot run (not root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "postgresql"]
    result = subprocess.run(install, env=env, capture_output=True, timeout=APT_TIMEOUT_S)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True,
                       timeout=APT_TIMEOUT_S)  # fmt: skip
        result = subprocess.run(install, env=env, capture_output=True, timeout=APT_TIMEOUT_S)
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise PgUnavailable(f"`apt-get install postgresql` failed: {' '.join(tail)}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_service_user(command: list[str]) -> list[str]:
    """``command`` run as the PostgreSQL service user when we are root."""
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", SERVICE_USER, "--", *command]
    return ["su", SERVICE_USER, "-s", "/bin/sh", "-c", shlex.join(command)]


@dataclass
class PgServer:
    """A running throwaway cluster; :meth:`stop` removes it."""

    bin_dir: Path
    root: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres"
        )
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            _as_service_user(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"]
            ),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(_as_service_user(command), capture_output=True, timeout=120)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).decode(errors="replace").strip()
        raise PgUnavailable(f"{what} failed: {output.splitlines()[-1] if output else '?'}")


def start_server() -> PgServer:
    """Start a fresh cluster or raise :class:`PgUnavailable`."""
    bin_dir = _find_bin_dir()
    if bin_dir is None:
        _apt_install()
        bin_dir = _find_bin_dir()
        if bin_dir is None:
            raise PgUnavailable("the postgresql package installed no initdb")
    root = Path(tempfile.mkdtemp(prefix="tagger-pg-"))
    if os.geteuid() == 0:
        service = pwd.getpwnam(SERVICE_USER) if _has_user(SERVICE_USER) else None
        if service is None:
            shutil.rmtree(root, ignore_errors=True)
            raise PgUnavailable(f"running as root and there is no {SERVICE_USER!r} user")
        os.chown(root, service.pw_uid, service.pw_gid)
    server = PgServer(bin_dir, root, _free_port())
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "-D", str(server.data_dir),
                "-U", SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            "initdb",
        )  # fmt: skip
        options = (
            f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        _run(
            [
                str(bin_dir / "pg_ctl"),
                "-D", str(server.data_dir),
                "-o", options,
                "-l", str(root / "server.log"),
                "-w", "-t", "60",
                "start",
            ],
            "pg_ctl start",
        )  # fmt: skip
    except (PgUnavailable, OSError, subprocess.TimeoutExpired) as error:
        shutil.rmtree(root, ignore_errors=True)
        if isinstance(error, PgUnavailable):
            raise
        raise PgUnavailable(f"starting PostgreSQL failed: {error}") from None
    return server


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
