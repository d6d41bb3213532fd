"""Tag text or BIO data from the command line.

Usage:
    python -m tagger --model MODEL_DIR [--format json|bio] [--runtime R] [--precision P] [FILE|-]

`--format json` (default) reads plain text and prints one JSON object with the spans and
their character offsets. `--format bio` reads a BIO/CoNLL file and prints it back as BIO
with the predicted labels.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from tagger.bio import BioFormatError, Sentence, format_bio, parse_bio
from tagger.model_folder import ModelFolderError
from tagger.runtimes import RuntimeSetupError, add_serving_arguments
from tagger.tagger import Tagger


def read_input(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    return Path(source).read_bytes()


def tag_text(tagger: Tagger, data: bytes, source: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BioFormatError(
            source, None, f"not UTF-8 text ({error.reason})", "save it as UTF-8"
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tagger", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a trained model folder")
    add_serving_arguments(parser)
    parser.add_argument("--format", choices=sorted(FORMATS), default="json")
    parser.add_argument("input", nargs="?", default="-", help="a file, or - for standard input")
    args = parser.parse_args(argv)
    try:
        data = read_input(args.input)
        tagger = Tagger.load(args.model, runtime=args.runtime, precision=args.precision)
        output = FORMATS[args.format](tagger, data, "<stdin>" if args.input == "-" else args.input)
    except (BioFormatError, ModelFolderError, RuntimeSetupError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(output if output.endswith("\n") else output + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
