"""What the command lines share: one-line usage errors, ``--model`` and the serving note.

Every command line builds its parser from :class:`ArgumentParser`, whose mistakes (an
unknown flag, a bad choice, a missing argument) are a :class:`UsageError`: through
:func:`tagger.errors.run_cli` they print one line and exit with status 2, as every other
:class:`~tagger.errors.TaggerError` does.

Example:

>>> parser = ArgumentParser(prog="demo")
>>> _ = parser.add_argument("--recipe", choices=("default", "peer"))
>>> try:
...     parser.parse_args(["--recipe", "fast"])
... except UsageError as error:
...     print(error)
argument --recipe: invalid choice: 'fast' (choose from default, peer). Fix: see `demo --help`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn, TextIO

from tagger.errors import TaggerError
from tagger.references import DEFAULT_REGISTRY_DIR, REGISTRY_DIR_ENV, ModelReference
from tagger.runtimes import SERVING_NOTE_FLAG

if TYPE_CHECKING:
    from tagger.tagger import Tagger

MODEL_HELP = (
    "a model folder, a version id in the registry, or `current` (default: current, the "
    f"version in service; the registry folder is ${REGISTRY_DIR_ENV}, default "
    f"{DEFAULT_REGISTRY_DIR}/)"
)


class UsageError(TaggerError, ValueError):
    """A command line used wrongly: an unknown flag, a bad value, a missing argument."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a mistake is a :class:`UsageError` (one line, exit 2 via run_cli)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(_plain_choices(message), fix=f"see `{self.prog} --help`")


def _plain_choices(message: str) -> str:
    """argparse 3.11 quotes each choice ("'default', 'peer'"); one quote style reads better."""
    head, marker, choices = message.partition("(choose from ")
    if not marker:
        return message
    return head + marker + choices.replace("'", "")


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more.

    >>> positive_int("4")
    4

    Args:
        text: the flag's value as typed.
    """
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, not {text!r}")
    return int(text)


def add_model_argument(parser: argparse.ArgumentParser, help: str = MODEL_HELP) -> None:
    """``--model``: a folder, a version id or ``current``; omitted, the version in service."""
    parser.add_argument("--model", default=None, metavar="MODEL", help=help)


def load_tagger(
    model: ModelReference | None,
    *,
    runtime: str,
    precision: str | None,
    prog: str,
    stderr: TextIO | None = None,
) -> Tagger:
    """``Tagger.load`` for a command line: a serving fallback is printed once, to stderr."""
    from tagger.tagger import Tagger

    with _serving_note_not_logged():
        tagger = Tagger.load(model, runtime=runtime, precision=precision)
    if tagger.serving_note:
        print(f"{prog}: note: {tagger.serving_note}", file=stderr or sys.stderr)
    return tagger


@contextmanager
def _serving_note_not_logged() -> Iterator[None]:
    """The command line prints the note itself; the logged copy would be a second one."""
    drop = _DropServingNote()
    logger = logging.getLogger("tagger.tagger")
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


class _DropServingNote(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, SERVING_NOTE_FLAG, False)
