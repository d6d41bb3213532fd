"""One error type for every mistake a user can fix: what went wrong, where, and the fix.

Every package raises a subclass of :class:`TaggerError` for bad input, bad settings or
a missing model, and every command line catches it once (:func:`run_cli`) and prints
one line, exit status 2, instead of a traceback. Anything else is a bug and keeps its
traceback.

Example:

>>> error = TaggerError("label 'B-Foo' is unknown", where="train.tsv:12",
...                     fix="use O, B-Disease or I-Disease")
>>> str(error)
"train.tsv:12: label 'B-Foo' is unknown. Fix: use O, B-Disease or I-Disease."
>>> str(TaggerError("no model is in service; train one with `make model`"))
'no model is in service; train one with `make model`'
>>> run_cli(lambda: (_ for _ in ()).throw(TaggerError("bad flag")), prog="demo")
2
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class TaggerError(Exception):
    """A problem the user can fix.

    Args:
        what: what is wrong, as the user would say it ("the file has no sentences").
        where: the file and line, flag, setting or page it concerns, if any.
        fix: what to do about it, naming CLI flags and app controls (not Python names).

    A single-argument call (``TaggerError("... ; do this")``) is a whole message.
    """

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = self.what
        if self.where:
            text = f"{self.where}: {text}"
        if self.fix:
            text = f"{text.rstrip('.')}. Fix: {self.fix.rstrip('.')}."
        return text

    def __str__(self) -> str:
        return self.message


def run_cli(main: Callable[[], int], *, prog: str, stderr: TextIO | None = None) -> int:
    """Run a command line's ``main``; a :class:`TaggerError` becomes one line and exit 2."""
    err = stderr or sys.stderr
    try:
        return main()
    except TaggerError as error:
        print(f"{prog}: error: {error}", file=err)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=err)
        return EXIT_INTERRUPTED
