"""Tag text or BIO data from the command line.

Usage:
    python -m tagger [--model MODEL] [--format json|bio] [--runtime R] [--precision P] [FILE|-]

`--format json` (default) reads plain text and prints one JSON object with the spans and
their character offsets. `--format bio` reads a BIO/CoNLL file and prints it back as BIO
with the predicted labels. `--model` is a model folder, a version id in the registry, or
`current`; without it, the version in service (the registry folder is
`$TAGGER_REGISTRY_DIR`, default `models`). A mistake (a missing model, a bad file, flags
that do not go together) is one line on stderr and exit status 2; where the model is
served otherwise than asked for by default (`--runtime auto`), one `note:` line says why.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from tagger.bio import (
    RESAVE_AS_UTF8,
    BioFormatError,
    Sentence,
    format_bio,
    parse_bio,
    utf16_problem,
)
from tagger.cli import ArgumentParser, add_model_argument, load_tagger
from tagger.errors import TaggerError, run_cli
from tagger.runtimes import add_serving_arguments
from tagger.tagger import Tagger

PROG = "python -m tagger"


def read_input(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as error:
        raise TaggerError(
            f"cannot read {source} ({error.strerror or error})",
            fix="pass a readable text or BIO file, or - for standard input",
        ) from None


def tag_text(tagger: Tagger, data: bytes, source: str) -> str:
    utf16 = utf16_problem(data)
    if utf16 is not None:
        raise BioFormatError(source, None, utf16, RESAVE_AS_UTF8)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BioFormatError(
            source, None, f"not UTF-8 text ({error.reason})", RESAVE_AS_UTF8
        ) from None
    spans = tagger.tag(text)
    return json.dumps(
        {"model": tagger.version, "spans": [asdict(span) for span in spans]}, ensure_ascii=False
    )


def tag_bio(tagger: Tagger, data: bytes, source: str) -> str:
    sentences = parse_bio(data, source)
    predictions = tagger.tag_words([sentence.words for sentence in sentences])
    tagged = [
        Sentence(s.words, labels) for s, (labels, _) in zip(sentences, predictions, strict=True)
    ]
    return format_bio(tagged)


FORMATS: dict[str, Callable[[Tagger, bytes, str], str]] = {"json": tag_text, "bio": tag_bio}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_model_argument(parser)
    add_serving_arguments(parser)
    parser.add_argument("--format", choices=sorted(FORMATS), default="json")
    parser.add_argument("input", nargs="?", default="-", help="a file, or - for standard input")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A file is read first (a missing one fails fast); standard input only once the
    # model is loaded, so that a model problem is reported before anyone types.
    data = None if args.input == "-" else read_input(args.input)
    tagger = load_tagger(args.model, runtime=args.runtime, precision=args.precision, prog=PROG)
    if data is None:
        data = read_input(args.input)
    output = FORMATS[args.format](tagger, data, "<stdin>" if args.input == "-" else args.input)
    sys.stdout.write(output if output.endswith("\n") else output + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0, or 2 after one `python -m tagger: error: ...` line on stderr."""
    return run_cli(lambda: run(argv), prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
