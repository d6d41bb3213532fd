"""Is the review queue worth it? Corrections chosen by the queue, at random, or none.

A model is trained on the first half of the BC5CDR-disease train split; the second
half is the unlabeled pool, imported as a collection (one sentence per item) and tagged
by the worker's own collection tagger. A simulated curator then corrects ``--corrections``
items to their gold labels, three ways, each in a fresh database and registry that
starts from the same base model:

- **queue**: the items the review queue serves first (``ReviewQueue.next_item``, its
  doubt order and diversity rule), saved through ``ReviewQueue.save``;
- **random**: the same number of pool items drawn at random (fixed seed);
- **none**: no correction at all (the control: the retrain alone).

Each arm then retrains through the worker (``python -m worker --once``: the one-click
retrain from the model in service, with the worker's retrain recipe, ``--retrain-epochs``
epochs over the half split plus the corrections), and the new version is scored on
test. Every F1 is strict entity-level (seqeval ``mode="strict"``, IOB2). Usage::

    python -m benchmarks.review_queue --data-dir $BC5CDR_DIR --work models/bench-queue \\
        --out benchmarks/results/queue.json
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tagger.bio import Sentence, read_bio

POOL_FILE = "pool.bio"
COLLECTION = "pool"
CURATOR = "simulated-curator"
ARMS = ("none", "random", "queue")


def prepare_split(data_dir: Path, work: Path) -> tuple[Path, list[Sentence]]:
    """``work/data`` (train = first half of train, devel, test) and the pool sentences."""
    folder = work / "data"
    folder.mkdir(parents=True, exist_ok=True)
    text = (data_dir / "train.tsv").read_text(encoding="utf-8")
    blocks = [block for block in text.split("\n\n") if block.strip()]
    half = len(blocks) // 2
    (folder / "train.tsv").write_text("\n\n".join(blocks[:half]) + "\n", encoding="utf-8")
    (folder / "pool.tsv").write_text("\n\n".join(blocks[half:]) + "\n", encoding="utf-8")
    for split in ("devel.tsv", "test.tsv"):
        shutil.copyfile(data_dir / split, folder / split)
    pool = read_bio(folder / "pool.tsv")
    # One item per sentence: -DOCSTART- starts each document of the collection.
    lines = []
    for sentence in pool:
        lines.append("-DOCSTART-\tO\n")
        lines += [
            f"{word}\t{label}\n"
            for word, label in zip(sentence.words, sentence.labels, strict=True)
        ]
        lines.append("\n")
    (folder / POOL_FILE).write_text("".join(lines), encoding="utf-8")
    return folder, pool


def base_model(work: Path, data: Path, epochs: int) -> tuple[Path, list[str]]:
    """The model trained on the half split (trained here unless ``work/base`` has it)."""
    out = work / "base"
    command = [
        sys.executable, "-m", "training.train", "--out", str(out), "--data-dir", str(data),
        "--epochs", str(epochs), "--no-test",
    ]  # fmt: skip
    if not (out / "model.json").is_file():
        subprocess.run(command, check=True)
    return out, command


def tag_pool(curation: Any) -> int:
    from worker.collection_tagging import CollectionTagger

    tagger = CollectionTagger(curation.collections, curation.registry, batch_size=256)
    total = 0
    while stored := tagger.step():
        total += stored
    return total


def document_ids(curation: Any) -> list[int]:
    from sqlalchemy import select

    from curation.schema import collection_documents_table as documents

    with curation.database.read() as connection:
        return [int(row) for row in connection.execute(select(documents.c.id)).scalars()]


def pool_index(external_id: str) -> int:
    """``pool.bio#7`` is the 7th document (1-based) of the pool file."""
    return int(external_id.rsplit("#", 1)[1]) - 1


def correct(curation: Any, arm: str, pool: Sequence[Sentence], count: int, seed: int) -> list[int]:
    """The simulated curator's corrections; returns the pool indexes it corrected."""
    from curation.review import ReviewFilter

    review = curation.review
    corrected: list[int] = []
    if arm == "queue":
        for _ in range(count):
            item = review.next_item(CURATOR, ReviewFilter(COLLECTION))
            if item is None:
                break
            index = pool_index(item.external_id)
            review.save(item.id, CURATOR, [pool[index].labels])
            corrected.append(index)
    elif arm == "random":
        for item_id in random.Random(seed).sample(document_ids(curation), count):
            item = review.item(item_id)
            index = pool_index(item.external_id)
            review.save(item.id, CURATOR, [pool[index].labels])
            corrected.append(index)
    return corrected


def scores(metrics: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in metrics.items() if key != "by_length"}


def run_arm(
    arm: str, args: argparse.Namespace, data: Path, base: Path, pool: Sequence[Sentence]
) -> dict[str, Any]:
    from curation.service import Curation
    from tagger import Tagger
    from training.data import load_split
    from training.evaluate import evaluate_tagger

    folder = args.work / f"arm-{arm}"
    shutil.rmtree(folder, ignore_errors=True)
    app_data, registry_dir = folder / "data", folder / "models"
    curation = Curation.open(data_dir=app_data, registry_dir=registry_dir)
    curation.registry.adopt(base, actor="benchmark")
    started = time.time()
    report = curation.collections.import_files(
        COLLECTION, [(POOL_FILE, (data / POOL_FILE).read_bytes())], imported_by="benchmark"
    )
    if report.problems:
        raise RuntimeError(f"the pool did not import cleanly: {report.problems[0]}")
    tagged = tag_pool(curation) if arm != "none" else 0
    corrected = correct(curation, arm, pool, args.corrections, args.seed)
    chosen_seconds = time.time() - started
    queued = curation.request_retrain(
        requested_by="benchmark", override=arm == "none", epochs=args.retrain_epochs
    )
    if not queued.created or queued.job is None:
        raise RuntimeError(f"{arm}: no retrain was queued: {queued.message}")
    command = [
        sys.executable, "-m", "worker", "--once", "--app-data-dir", str(app_data),
        "--registry", str(registry_dir), "--data-dir", str(data), "--no-adopt",
    ]  # fmt: skip
    retrain_started = time.time()
    subprocess.run(command, check=True)
    retrain_seconds = time.time() - retrain_started
    job = curation.queue.get(queued.job.id)
    if job.model_version is None:
        raise RuntimeError(f"{arm}: the retrain produced no version ({job.status}: {job.error})")
    version = curation.registry.get(job.model_version)
    tagger = Tagger.load(version.folder)
    test = evaluate_tagger(tagger, load_split("test", data))
    dev = evaluate_tagger(tagger, load_split("devel", data))
    gold_mentions = sum(
        label.startswith("B-") for index in corrected for label in pool[index].labels
    )
    return {
        "arm": arm,
        "corrected": len(corrected),
        "corrected_gold_mentions": gold_mentions,
        "pool_items_tagged": tagged,
        "version": job.model_version,
        "decision": version.decision,
        "retrain_seconds": round(retrain_seconds, 1),
        "choose_seconds": round(chosen_seconds, 1),
        "test": scores(test),
        "dev": scores(dev),
        "worker_command": " ".join(command),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="BC5CDR-disease folder")
    parser.add_argument("--work", type=Path, default=Path("models/bench-queue"))
    parser.add_argument("--corrections", type=int, default=200)
    parser.add_argument("--base-epochs", type=int, default=3)
    parser.add_argument("--retrain-epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    started = time.time()
    data, pool = prepare_split(args.data_dir, args.work)
    base, train_command = base_model(args.work, data, args.base_epochs)
    from tagger import Tagger
    from training.data import load_split
    from training.evaluate import evaluate_tagger

    base_tagger = Tagger.load(base)
    result: dict[str, Any] = {
        "command": "python -m benchmarks.review_queue " + " ".join(argv or sys.argv[1:]),
        "base_command": "python " + " ".join(train_command[1:]),
        "pool_sentences": len(pool),
        "train_sentences": len(read_bio(data / "train.tsv")),
        "base": {
            "test": scores(evaluate_tagger(base_tagger, load_split("test", data))),
            "dev": scores(evaluate_tagger(base_tagger, load_split("devel", data))),
        },
        "arms": {},
    }
    del base_tagger
    for arm in args.arms:
        result["arms"][arm] = run_arm(arm, args, data, base, pool)
        print(json.dumps(result["arms"][arm]["test"]), file=sys.stderr)
    result["seconds"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
