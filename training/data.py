"""Find, download and verify the BC5CDR-disease splits (train, devel, test).

The folder is chosen by, in order: an explicit ``data_dir`` (``--data-dir``), the
``BC5CDR_DIR`` environment variable, then ``data/bc5cdr-disease`` under the current
working directory (where ``make data`` downloads it).

Example:

>>> from training.data import load_split
>>> sentences = load_split("devel", bc5cdr_dir)
>>> sentences[0].words[:3]
('22', '-', 'oxacalcitriol')

From the shell::

    python -m training.data download --dest data/bc5cdr-disease
    python -m training.data verify --data-dir data/bc5cdr-disease
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tagger.bio import Sentence, read_bio, write_bytes_atomic
from tagger.cli import ArgumentParser
from tagger.errors import TaggerError, run_cli

ENV_VAR = "BC5CDR_DIR"
DEFAULT_DATA_DIR = Path("data") / "bc5cdr-disease"
SPLITS = ("train", "devel", "test")
SHA256: dict[str, str] = {
    "train.tsv": "d630dafe7dd67e21350cc3278dbdcfadcccbb2b63d0fda83b2427853988e5ad9",
    "devel.tsv": "8c3af95475029c2100c2b7c0108b2715bc700ac198c7a21d587f11f1d06b17bd",
    "test.tsv": "a530bf9e17a4122b101b09cedd5f3cf8e6307d6a0093146c33b8de2e69ec0fa3",
}
BASE_URL = (
    "https://raw.githubusercontent.com/cambridgeltl/MTL-Bioinformatics-2016/"
    "master/data/BC5CDR-disease-IOB/"
)

FILE_NAMES = tuple(f"{split}.tsv" for split in SPLITS)
_HOW_TO_FIX = (
    f"set {ENV_VAR} to a folder with {', '.join(FILE_NAMES)}, pass --data-dir, "
    "or run `make data` to download them"
)
_LOCAL_COPY_HINT = f"if you have a local copy, set {ENV_VAR} to its folder or pass --data-dir"
_CHUNK_BYTES = 1 << 20

# urlopen-like: opener(url, timeout=...) returns a context manager with .read().
Opener = Callable[..., Any]

logger = logging.getLogger(__name__)


class DataError(TaggerError, RuntimeError):
    """The data is missing, wrong or unreachable; the message is one line naming the fix."""

    def __init__(self, message: str) -> None:
        # One line, always: the CLI prints it as the whole error report.
        super().__init__(" ".join(message.split()))


# ---------------------------------------------------------------------------
# Locating
# ---------------------------------------------------------------------------


def _chosen_dir(data_dir: str | os.PathLike[str] | None) -> tuple[Path, str]:
    """The folder to use and, for error messages, what chose it."""
    if data_dir is not None:
        return Path(data_dir), "--data-dir"
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return Path(from_env), ENV_VAR
    return DEFAULT_DATA_DIR, "the default folder"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The BC5CDR-disease folder, checked to hold train.tsv, devel.tsv and test.tsv.

    Raises DataError naming the missing files, the folder and the fix.
    """
    folder, origin = _chosen_dir(data_dir)
    if not folder.is_dir():
        raise DataError(
            f"BC5CDR-disease folder {folder} (from {origin}) does not exist; {_HOW_TO_FIX}."
        )
    missing = [name for name in FILE_NAMES if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"BC5CDR-disease data incomplete: {', '.join(missing)} missing in {folder} "
            f"(from {origin}); {_HOW_TO_FIX}."
        )
    return folder


def split_path(split: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of one split's file, e.g. ``split_path("test")`` -> ``.../test.tsv``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
    return resolve_data_dir(data_dir) / f"{split}.tsv"


def load_split(split: str, data_dir: str | os.PathLike[str] | None = None) -> list[Sentence]:
    """Sentences of one split, read with :func:`tagger.bio.read_bio`."""
    return read_bio(split_path(split, data_dir))


# ---------------------------------------------------------------------------
# Verifying
# ---------------------------------------------------------------------------


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(data_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Check the three files against :data:`SHA256`; return ``{file name: sha256}``.

    Raises DataError naming each mismatching file with the expected and actual hash.
    """
    folder = resolve_data_dir(data_dir)
    digests = {name: file_sha256(folder / name) for name in FILE_NAMES}
    mismatches = [
        f"{folder / name} has sha256 {digest}, expected {SHA256[name]}"
        for name, digest in digests.items()
        if digest != SHA256[name]
    ]
    if mismatches:
        raise DataError(
            f"{'; '.join(mismatches)}; re-download with `make data` or "
            f"`python -m training.data download --dest {folder}`."
        )
    return digests


# ---------------------------------------------------------------------------
# Downloading
# ---------------------------------------------------------------------------


def _file_url(base_url: str, name: str) -> str:
    # Plain concatenation: urljoin would drop the last path segment without a slash.
    return f"{base_url.rstrip('/')}/{name}"


def _failure_reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return str(error)
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return f"{type(error).__name__}: {error}"


def _fetch(url: str, opener: Opener, timeout: float) -> bytes:
    try:
        with opener(url, timeout=timeout) as response:
            return bytes(response.read())
    # ValueError: a malformed URL; HTTPException: a truncated or garbled response.
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise DataError(
            f"download of {url} failed ({_failure_reason(error)}); {_LOCAL_COPY_HINT}."
        ) from error


def _check_payload(name: str, url: str, payload: bytes) -> None:
    digest = hashlib.sha256(payload).hexdigest()
    if digest != SHA256[name]:
        raise DataError(
            f"downloaded {name} from {url} has sha256 {digest}, expected {SHA256[name]}, "
            f"so it was not written; retry, or {_LOCAL_COPY_HINT}."
        )


def _has_expected_hash(path: Path) -> bool:
    return path.is_file() and file_sha256(path) == SHA256[path.name]


def download(
    dest: str | os.PathLike[str],
    *,
    base_url: str = BASE_URL,
    opener: Opener = urllib.request.urlopen,
    timeout: float = 30,
) -> Path:
    """Download train/devel/test.tsv into ``dest``, checking each sha256 before writing.

    Files already present with the right hash are kept. Raises DataError (one line)
    when the network fails, a hash differs, or ``dest`` cannot be written.

    Example: ``download(Path("data/bc5cdr-disease"))``.
    """
    folder = Path(dest)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in FILE_NAMES:
            _download_file(folder / name, base_url, opener, timeout)
    except OSError as error:
        raise DataError(
            f"cannot write to {folder} ({_failure_reason(error)}); pass --dest a writable folder."
        ) from error
    return folder


def _download_file(target: Path, base_url: str, opener: Opener, timeout: float) -> None:
    if _has_expected_hash(target):
        logger.info("%s already present, sha256 ok", target)
        return
    url = _file_url(base_url, target.name)
    logger.info("downloading %s", url)
    payload = _fetch(url, opener, timeout)
    _check_payload(target.name, url, payload)
    write_bytes_atomic(target, payload)
    logger.info("wrote %s (%d bytes, sha256 ok)", target, len(payload))


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _run_download(args: argparse.Namespace) -> int:
    folder = download(args.dest, base_url=args.base_url, timeout=args.timeout)
    print(f"BC5CDR-disease is ready in {folder}; use it with --data-dir {folder} or {ENV_VAR}.")
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    digests = verify(args.data_dir)
    for name, digest in digests.items():
        print(f"ok  {name}  {digest}")
    return 0


PROG = "python -m training.data"


def _build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description="Download or verify BC5CDR-disease.")
    commands = parser.add_subparsers(dest="command", required=True)

    download_parser = commands.add_parser("download", help="download the three splits")
    download_parser.add_argument(
        "--dest", type=Path, default=DEFAULT_DATA_DIR, help="folder to download into"
    )
    download_parser.add_argument("--base-url", default=BASE_URL, help="mirror to download from")
    download_parser.add_argument(
        "--timeout", type=float, default=30, help="seconds per request before giving up"
    )
    download_parser.set_defaults(handler=_run_download)

    verify_parser = commands.add_parser("verify", help="check the three splits' sha256")
    verify_parser.add_argument(
        "--data-dir", type=Path, default=None, help=f"folder to check (default: ${ENV_VAR})"
    )
    verify_parser.set_defaults(handler=_run_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training.data``; returns the exit status.

    0, or 2 after one ``python -m training.data: error: ...`` line on stderr.
    """

    def run() -> int:
        args = _build_parser().parse_args(argv)
        return int(args.handler(args))

    return run_cli(run, prog=PROG)


if __name__ == "__main__":
    # Configured here, not in main(), so callers of main() keep their own logging.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    raise SystemExit(main())
