"""Serve the tagger over HTTP (FastAPI on uvicorn).

Usage:
    python -m tagger.serve [--model MODEL] [--host HOST] [--port N] [--runtime R]
                           [--precision P] [--max-body-bytes N] [--max-texts N]
                           [--max-batch-texts N] [--batch-wait-ms MS] [--poll-seconds S]

Routes: ``POST /tag`` (JSON texts in, spans out), ``POST /tag-bio`` (a BIO document in,
BIO with the predicted labels out), ``GET /health``; :mod:`tagger.serve.app` has the
shapes. ``--model`` is a model folder, a version id, or ``current``; without it, the
registry's version in service (``$TAGGER_REGISTRY_DIR``, default ``models``), and then
the service follows the registry: a version promoted later is loaded in the background
and served within ``--poll-seconds`` of the promotion, while the old one answers until
then (a version that fails to load leaves the old one serving; ``GET /health`` says why).
A folder or a version id is served as it is until the service stops. A mistake (a
missing model, a port in use) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tagger.cli import (
    MODEL_HELP,
    ArgumentParser,
    add_model_argument,
    load_tagger,
    positive_int,
)
from tagger.errors import TaggerError, run_cli
from tagger.runtimes import add_serving_arguments
from tagger.serve.app import ServeSettings, create_app
from tagger.serve.model_watch import DEFAULT_POLL_INTERVAL_S, open_served_model

if TYPE_CHECKING:
    from tagger.tagger import Tagger

PROG = "python -m tagger.serve"
DEFAULT_HOST = "127.0.0.1"  # loopback: serving a network is a choice, made with --host
DEFAULT_PORT = 8000
LOG_LEVELS = ("debug", "info", "warning", "error")


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535.

    Args:
        text: the flag's value as typed.
    """
    if not text.strip().isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, not {text!r}")
    return int(text)


def non_negative_float(text: str) -> float:
    """An argparse type: a number of 0 or more (milliseconds).

    Args:
        text: the flag's value as typed.
    """
    value = _float_or_nan(text)
    if not value >= 0:  # nan fails this too
        raise argparse.ArgumentTypeError(f"expected a number of 0 or more, not {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number over 0 (seconds between checks; 0 would spin).

    Args:
        text: the flag's value as typed.
    """
    value = _float_or_nan(text)
    if not value > 0:  # nan fails this too
        raise argparse.ArgumentTypeError(f"expected a number over 0, not {text!r}")
    return value


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def build_parser() -> ArgumentParser:
    defaults = ServeSettings()
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_model_argument(
        parser,
        help=f"{MODEL_HELP}; with current, a version promoted later is served without a restart",
    )
    add_serving_arguments(parser)
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        metavar="N",
        help=f"default {DEFAULT_PORT}; 0: any free port",
    )
    parser.add_argument(
        "--max-body-bytes",
        metavar="N",
        type=positive_int,
        default=defaults.max_body_bytes,
        help=f"the largest request body; larger is refused with 413 (default "
        f"{defaults.max_body_bytes}, 1 MiB)",
    )
    parser.add_argument(
        "--max-texts",
        metavar="N",
        type=positive_int,
        default=defaults.max_texts,
        help=f"the most texts one POST /tag may send (default {defaults.max_texts})",
    )
    parser.add_argument(
        "--max-batch-texts",
        metavar="N",
        type=positive_int,
        default=defaults.max_batch_texts,
        help="the most texts of concurrent requests tagged in one call (default "
        f"{defaults.max_batch_texts})",
    )
    parser.add_argument(
        "--batch-wait-ms",
        metavar="MS",
        type=non_negative_float,
        default=defaults.batch_wait_s * 1000,
        help="how long a request waits for others to share its call (default "
        f"{defaults.batch_wait_s * 1000:g})",
    )
    parser.add_argument(
        "--poll-seconds",
        metavar="S",
        type=positive_float,
        default=DEFAULT_POLL_INTERVAL_S,
        help="how often the registry's version in service is checked, with --model current "
        f"(default {DEFAULT_POLL_INTERVAL_S:g})",
    )
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    return parser


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or a :class:`TaggerError` saying why not.

    Args:
        host: a host name or address (IPv4 or IPv6).
        port: a TCP port; 0 for any free one.
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as error:
        raise TaggerError(
            f"cannot listen on {host}:{port} ({error.strerror or error})",
            where="--host/--port",
            fix="pass another --port (0 takes any free one), or stop the program using it",
        ) from None


def run(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    args = build_parser().parse_args(argv)
    _log_to_stderr(args.log_level)
    sock = listen(args.host, args.port)  # before the model: a port in use fails at once

    def load_folder(folder: Path) -> Tagger:
        return load_tagger(folder, runtime=args.runtime, precision=args.precision, prog=PROG)

    with sock:
        served = open_served_model(args.model, load_folder, poll_interval_s=args.poll_seconds)
        settings = ServeSettings(
            max_body_bytes=args.max_body_bytes,
            max_texts=args.max_texts,
            max_batch_texts=args.max_batch_texts,
            batch_wait_s=args.batch_wait_ms / 1000,
        )
        config = uvicorn.Config(
            create_app(served, settings), host=args.host, port=args.port, log_level=args.log_level
        )
        server = uvicorn.Server(config)
        # uvicorn names no address when handed a socket; this line is the one to wait for.
        print(
            f"{PROG}: serving model {served.tagger.version} on {address_of(sock)}",
            file=sys.stderr,
            flush=True,
        )
        server.run(sockets=[sock])
    return 0


def address_of(sock: socket.socket) -> str:
    """The URL a client on this machine uses for a listening socket (its real port).

    Args:
        sock: a bound, listening TCP socket.

    >>> with listen("127.0.0.1", 0) as sock:
    ...     address_of(sock).startswith("http://127.0.0.1:")
    True
    """
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _log_to_stderr(level: str) -> None:
    # Our loggers only: the root logger at INFO would print ONNX Runtime's quantizer chatter.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    package = logging.getLogger("tagger")
    package.addHandler(handler)
    package.setLevel(level.upper())


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0, or 2 after one `python -m tagger.serve: error: ...` line on stderr."""
    return run_cli(lambda: run(argv), prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
