"""Tag many documents into Parquet.

Usage:
    python -m tagger.batch INPUT... --out OUT_DIR [--model REF] [--engine local|ray]
        [--address RAY_ADDRESS] [--workers N] [--batch-size N] [--threads N] [--quiet]

Inputs: ``.jsonl`` (``{"id", "title", "text"}`` per line), PubMed XML (``.xml``,
``.xml.gz``: the baseline and update files), ``.txt`` (one document per line) and
folders of ``.txt`` files (one abstract each). Each input becomes ``OUT_DIR/<name>.parquet``
(document_id, start, end, text, label, score, model_version); bad records go to
``OUT_DIR/_errors.jsonl`` with their file and line and never stop the run. A rerun skips
the inputs already complete, so a killed run loses at most the inputs in flight.
``--engine ray`` runs the same tagging on Ray Data (``pip install -r
requirements-ray.txt``): a local instance, or the cluster at ``--address``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tagger.batch.engines import ENGINES
from tagger.batch.run import run_batch
from tagger.cli import ArgumentParser, add_model_argument, positive_int
from tagger.errors import run_cli

PROG = "python -m tagger.batch"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="files or folders to tag")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="the Parquet folder")
    add_model_argument(parser)
    parser.add_argument("--engine", choices=sorted(ENGINES), default="local")
    parser.add_argument("--address", default=None, help="a Ray cluster (default: local Ray)")
    parser.add_argument("--workers", type=positive_int, default=1, help="tagging actors on Ray")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="documents per batch")
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="windows each tagger runs at once"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = run_batch(
        args.inputs,
        args.out,
        model=args.model,
        engine=args.engine,
        address=args.address,
        workers=args.workers,
        batch_size=args.batch_size,
        threads=args.threads,
        progress=not args.quiet,
    )
    rate = report.documents / report.seconds if report.seconds else 0.0
    print(
        f"{PROG}: model {report.model_version}: tagged {len(report.tagged)} input(s), "
        f"{report.documents} documents, {report.words} words, {report.spans} spans in "
        f"{report.seconds:.1f} s ({rate:.1f} documents/s); skipped {len(report.skipped)} "
        f"complete input(s); {report.problems} bad record(s)"
        + (f", listed in {report.errors_file}" if report.problems else ""),
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0, or 2 after one `python -m tagger.batch: error: ...` line on stderr."""
    return run_cli(lambda: run(argv), prog=PROG)


if __name__ == "__main__":
    raise SystemExit(main())
