"""Batch tagging throughput: the local engine against Ray Data with 1 and 2 actors.

The input is ``--documents`` abstracts built from the shared unlabeled corpus
(``pubmed-unlabeled/sentences.txt``, one sentence a line, no document boundaries): each
abstract is a run of consecutive sentences, its first the title, the rest added until
the abstract reaches ``--abstract-words`` words (about a PubMed abstract's length). They
are written as ``--files`` JSONL files, as a PubMed download comes in files, so that
Ray reads in parallel and output is partitioned by file.

Each configuration tags the whole input into a fresh output folder through
:func:`tagger.batch.run.run_batch`, the code ``python -m tagger.batch`` runs, and is
timed end to end, Ray's start and every actor's model load included:

- ``local``: in this process, ONNX Runtime on ``--threads`` threads (all cores);
- ``ray-1``: a local Ray instance, one actor with one thread;
- ``ray-2``: two actors with one thread each.

Scaling efficiency is ``ray-2``'s documents/s over twice ``ray-1``'s (1.0: perfect). The
PubMed projection divides 36M abstracts by the documents/s per CPU core of ``ray-2``
(its rate over its cores), for abstracts of this input's mean length. A first untimed
run on a few documents builds the ONNX graph so no configuration pays for it.

Usage::

    python -m benchmarks.batch_throughput --model models/first \\
        --corpus $PUBMED_SENTENCES --out benchmarks/results/batch_raw.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tagger.batch.run import run_batch
from tagger.model_folder import read_metadata
from tagger.references import resolve_model

PUBMED_ABSTRACTS = 36_000_000
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "local": {"engine": "local", "workers": 1, "threads": None, "cores": None},
    "ray-1": {"engine": "ray", "workers": 1, "threads": 1, "cores": 1},
    "ray-2": {"engine": "ray", "workers": 2, "threads": 1, "cores": 2},
}


def describe_model(model: Path) -> dict[str, Any]:
    """What a reader needs to know of the model that was timed: its version, its training
    (epochs, capped steps), its windows (they set the cost per word) and its devel F1."""
    metadata = read_metadata(model)
    return {
        "version": metadata.version,
        "epochs": metadata.training.get("epochs"),
        "max_steps": metadata.training.get("max_steps"),
        "windows": asdict(metadata.windows),
        "devel_f1": (metadata.metrics.get("dev") or {}).get("f1"),
    }


def build_abstracts(
    corpus: Path, documents: int, abstract_words: int
) -> list[dict[str, str | int]]:
    """``documents`` abstracts of consecutive corpus sentences (first one the title)."""
    abstracts: list[dict[str, str | int]] = []
    title: str | None = None
    body: list[str] = []
    words = 0
    with corpus.open(encoding="utf-8") as lines:
        for line in lines:
            sentence = line.strip()
            if not sentence:
                continue
            if title is None:
                title = sentence
                continue
            body.append(sentence)
            words += len(sentence.split())
            if words >= abstract_words:
                abstracts.append({"id": len(abstracts) + 1, "title": title, "text": " ".join(body)})
                title, body, words = None, [], 0
                if len(abstracts) == documents:
                    return abstracts
    raise SystemExit(f"{corpus} holds only {len(abstracts)} abstracts of {abstract_words} words")


def write_inputs(abstracts: list[dict[str, str | int]], folder: Path, files: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(abstracts) // files)
    paths = []
    for number in range(files):
        path = folder / f"abstracts-{number + 1:03d}.jsonl"
        chunk = abstracts[number * size : (number + 1) * size]
        path.write_text("".join(json.dumps(a) + "\n" for a in chunk), encoding="utf-8")
        paths.append(path)
    return paths


def measure(
    name: str, inputs: list[Path], work: Path, model: Path, batch_size: int, threads: int
) -> dict[str, Any]:
    settings = CONFIGURATIONS[name]
    out = work / f"out-{name}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    report = run_batch(
        inputs,
        out,
        model=model,
        engine=settings["engine"],
        workers=settings["workers"],
        threads=settings["threads"],
        batch_size=batch_size,
        progress=False,
    )
    seconds = time.perf_counter() - started
    cores = settings["cores"] or threads
    result = {
        "engine": settings["engine"],
        "actors": settings["workers"] if settings["engine"] == "ray" else None,
        "threads_per_tagger": settings["threads"] or threads,
        "cores": cores,
        "seconds": seconds,
        "documents": report.documents,
        "words": report.words,
        "spans": report.spans,
        "documents_per_s": report.documents / seconds,
        "words_per_s": report.words / seconds,
        "documents_per_s_per_core": report.documents / seconds / cores,
    }
    print(
        f"{name}: {result['documents_per_s']:.2f} documents/s, {result['words_per_s']:.0f} "
        f"words/s in {seconds:.0f} s",
        flush=True,
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True, help="sentences.txt")
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--abstract-words", type=int, default=200)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--configurations", default=",".join(CONFIGURATIONS))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    threads = len(os.sched_getaffinity(0))
    model = resolve_model(args.model)
    abstracts = build_abstracts(args.corpus, args.documents, args.abstract_words)
    words = [len(f"{a['title']} {a['text']}".split()) for a in abstracts]
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as temporary:
        work = Path(temporary)
        inputs = write_inputs(abstracts, work / "in", args.files)
        warm = write_inputs(abstracts[:8], work / "warm", 1)
        run_batch(warm, work / "out-warm", model=model, progress=False)  # builds the graph
        results = {
            name: measure(name, inputs, work, model, args.batch_size, threads)
            for name in args.configurations.split(",")
        }
    measured: dict[str, Any] = {
        "model": str(args.model),
        "model_version": read_metadata(model).version,
        "model_facts": describe_model(model),
        "documents": len(abstracts),
        "files": args.files,
        "batch_size": args.batch_size,
        "mean_words_per_abstract": statistics.fmean(words),
        "cores": threads,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "configurations": results,
    }
    if "ray-1" in results and "ray-2" in results:
        measured["ray_scaling_efficiency"] = results["ray-2"]["documents_per_s"] / (
            2 * results["ray-1"]["documents_per_s"]
        )
    best = results.get("ray-2") or next(iter(results.values()))
    per_core = best["documents_per_s_per_core"]
    measured["pubmed_projection"] = {
        "abstracts": PUBMED_ABSTRACTS,
        "from": "ray-2" if "ray-2" in results else next(iter(results)),
        "core_hours": PUBMED_ABSTRACTS / per_core / 3600,
        "gpu_hours": None,  # no GPU was lent to the session that measured this
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(measured, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
