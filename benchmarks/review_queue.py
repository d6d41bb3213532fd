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
retrain from the model in service), and the new version is scored on test. Every F1 is
strict entity-level (seqeval ``mode="strict"``, IOB2).

``--retrain-data`` is the job's ``retrain_data``: ``replay`` (the default, as the
Retrain button runs it) trains on the corrections plus a seeded sample of the half
split under the worker's replay schedule; ``full`` on the whole half split plus the
corrections under its retrain schedule. ``--retrain-epochs`` and ``--retrain-lr``
override either schedule's epochs and peak rate (the first, full-retrain runs used 1
epoch), ``--replay-sentences`` the replay sample's size. Each arm lives in
``WORK/arm-<arm>`` (full) or ``WORK/arm-<arm>-replay``, so runs of both kinds sit
side by side. Each arm reports ``retrain_seconds`` (the worker process, start to exit)
and the job's own ``phase_seconds`` (:mod:`worker.training_job`).

What is reused between runs, in ``WORK``: the base model (``base/``, trained only when
missing), ``base-scored/`` (the base with the sha256 of the devel sentences its recorded
devel F1 was measured on, written once that figure is checked by scoring it as the
worker does, so that a retrain takes the baseline from the registry as it does for a
version the worker trained; ``--no-base-dev-record`` adopts the bare base, whose
baseline every arm then measures), and ``pool-tagged/`` (the database and registry
after the pool is imported and tagged, for the arms that tag it). Usage::

    python -m benchmarks.review_queue --data-dir $BC5CDR_DIR --work models/bench-queue \\
        --arms queue none --retrain-data replay --out benchmarks/results/queue_replay_raw.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curation.jobs import JOB_KIND_TRAIN, RETRAIN_DATA_CHOICES, RETRAIN_DATA_FULL, TrainJobOptions
from tagger.bio import Sentence, read_bio

POOL_FILE = "pool.bio"
COLLECTION = "pool"
CURATOR = "simulated-curator"
ARMS = ("none", "random", "queue")
DB_FILE = "tagger.sqlite3"  # the app folder's SQLite file (curation.database)
SNAPSHOT = "pool-tagged"
SCORED_BASE = "base-scored"


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


def scored_base(work: Path, base: Path, data: Path) -> tuple[Path, dict[str, Any]]:
    """The base as the worker knows a version it trained: with the sha256 of the devel
    sentences its recorded devel F1 was measured on, in ``work/base-scored``.

    Written only once the recorded figures are checked: the base is scored on devel here
    exactly as the worker scores a serving model it cannot take from the registry, and
    its precision, recall, F1 and mention counts must be those recorded. Otherwise the
    bare base is returned and every arm measures its baseline.
    """
    from tagger.model_folder import WEIGHTS_FILE, file_sha256, load_model_folder
    from tagger.tagger import Tagger
    from training.data import load_split
    from training.evaluate import evaluate_tagger
    from worker.job_data import DEV_SHA_KEY, sentences_sha256

    out = work / SCORED_BASE
    devel = load_split("devel", data)
    digest = sentences_sha256(devel)
    weights = file_sha256(base / WEIGHTS_FILE)
    if (out / "model.json").is_file():
        content = json.loads((out / "model.json").read_text(encoding="utf-8"))
        record = content.get("data", {}).get("training_data", {})
        if record.get(DEV_SHA_KEY) == digest and record.get("base_weights_sha256") == weights:
            return out, record
    loaded = load_model_folder(base)
    started = time.time()
    scores = evaluate_tagger(Tagger(loaded), devel)
    keys = ("precision", "recall", "f1", "n_gold", "n_pred")
    recorded = loaded.metadata.metrics.get("dev", {})
    record = {
        "dev_recorded": {key: recorded.get(key) for key in keys},
        "dev_measured": {key: scores[key] for key in keys},
        "measure_seconds": round(time.time() - started, 1),
        "dev_sentences": len(devel),
        "base_weights_sha256": weights,
    }
    del loaded
    # The same mention count, predictions and scores: measured on these very sentences.
    if scores["f1"] is None or record["dev_measured"] != record["dev_recorded"]:
        return base, {**record, "stamped": False}
    record = {**record, DEV_SHA_KEY: digest, "stamped": True}
    staging = work / f".{SCORED_BASE}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(base, staging)  # copy2: the weights keep their mtime (the ONNX cache)
    content = json.loads((staging / "model.json").read_text(encoding="utf-8"))
    content.setdefault("data", {})["training_data"] = record
    (staging / "model.json").write_text(json.dumps(content, indent=2), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(staging, out)
    return out, record


def snapshot_key(adopted: Path, data: Path) -> dict[str, str]:
    from tagger.model_folder import WEIGHTS_FILE, file_sha256

    return {
        "adopted": str(adopted),
        "weights_sha256": file_sha256(adopted / WEIGHTS_FILE),
        "model_json_sha256": file_sha256(adopted / "model.json"),
        "pool_sha256": file_sha256(data / POOL_FILE),
    }


def restore_snapshot(work: Path, key: dict[str, str], app_data: Path, registry: Path) -> int:
    """The tagged pool's database and registry into the arm's folders; the number of
    documents tagged, or -1 when there is no snapshot for this base and pool."""
    folder = work / SNAPSHOT
    marker = folder / "snapshot.json"
    if not marker.is_file():
        return -1
    recorded = json.loads(marker.read_text(encoding="utf-8"))
    if {name: recorded.get(name) for name in key} != key:
        return -1
    app_data.mkdir(parents=True)
    shutil.copyfile(folder / DB_FILE, app_data / DB_FILE)
    shutil.copytree(folder / "models", registry)
    return int(recorded["documents_tagged"])


def save_snapshot(
    work: Path, key: dict[str, str], app_data: Path, registry: Path, tagged: int
) -> None:
    """The arm's database (SQLite's online backup: WAL included) and registry, as they
    are after the pool was imported and tagged, before any correction."""
    staging = work / f".{SNAPSHOT}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    source, target = sqlite3.connect(app_data / DB_FILE), sqlite3.connect(staging / DB_FILE)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    shutil.copytree(registry, staging / "models")
    marker = {**key, "documents_tagged": tagged}
    (staging / "snapshot.json").write_text(json.dumps(marker, indent=2), encoding="utf-8")
    shutil.rmtree(work / SNAPSHOT, ignore_errors=True)
    os.replace(staging, work / SNAPSHOT)


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


def arm_folder(work: Path, arm: str, retrain_data: str) -> Path:
    """``arm-queue`` for a full retrain (the first runs' folders), ``arm-queue-replay``."""
    suffix = "" if retrain_data == RETRAIN_DATA_FULL else f"-{retrain_data}"
    return work / f"arm-{arm}{suffix}"


def open_arm(
    arm: str, args: argparse.Namespace, data: Path, adopted: Path, folder: Path
) -> tuple[Any, int, bool]:
    """The arm's curation state with the pool imported (and tagged, but for ``none``):
    from the snapshot when one fits, else built here (and snapshotted when tagged).
    Returns it, the documents tagged and whether the snapshot was used."""
    from curation.service import Curation

    app_data, registry_dir = folder / "data", folder / "models"
    key = snapshot_key(adopted, data)
    if arm != "none":
        tagged = restore_snapshot(args.work, key, app_data, registry_dir)
        if tagged >= 0:
            return Curation.open(data_dir=app_data, registry_dir=registry_dir), tagged, True
    curation = Curation.open(data_dir=app_data, registry_dir=registry_dir)
    curation.registry.adopt(adopted, actor="benchmark")
    report = curation.collections.import_files(
        COLLECTION, [(POOL_FILE, (data / POOL_FILE).read_bytes())], imported_by="benchmark"
    )
    if report.problems:
        raise RuntimeError(f"the pool did not import cleanly: {report.problems[0]}")
    if arm == "none":
        return curation, 0, False
    tagged = tag_pool(curation)
    save_snapshot(args.work, key, app_data, registry_dir, tagged)
    return curation, tagged, False


def queue_retrain(curation: Any, arm: str, args: argparse.Namespace) -> Any:
    """The job the Retrain button queues, with ``--retrain-data`` and ``--retrain-epochs``."""
    override = arm == "none"
    availability = curation.retrain_availability(override=override)
    if not availability.allowed:
        raise RuntimeError(f"{arm}: no retrain may be queued: {availability.reason}")
    options = TrainJobOptions(
        override=override,
        epochs=args.retrain_epochs,
        learning_rate=args.retrain_lr,
        retrain_data=args.retrain_data,
        replay_sentences=args.replay_sentences,
    )
    TrainJobOptions.from_json(options.to_json())  # a bad combination fails here
    queued = curation.queue.enqueue(
        kind=JOB_KIND_TRAIN, options=options.to_json(), requested_by="benchmark"
    )
    if not queued.created or queued.job is None:
        raise RuntimeError(f"{arm}: no retrain was queued: {queued.message}")
    return queued.job


def run_arm(
    arm: str, args: argparse.Namespace, data: Path, adopted: Path, pool: Sequence[Sentence]
) -> dict[str, Any]:
    from tagger import Tagger
    from training.data import load_split
    from training.evaluate import evaluate_tagger

    folder = arm_folder(args.work, arm, args.retrain_data)
    shutil.rmtree(folder, ignore_errors=True)
    app_data, registry_dir = folder / "data", folder / "models"
    started = time.time()
    curation, tagged, from_snapshot = open_arm(arm, args, data, adopted, folder)
    corrected = correct(curation, arm, pool, args.corrections, args.seed)
    chosen_seconds = time.time() - started
    queued = queue_retrain(curation, arm, args)
    command = [
        sys.executable, "-m", "worker", "--once", "--app-data-dir", str(app_data),
        "--registry", str(registry_dir), "--data-dir", str(data), "--no-adopt",
    ]  # fmt: skip
    retrain_started = time.time()
    subprocess.run(command, check=True)
    retrain_seconds = time.time() - retrain_started
    job = curation.queue.get(queued.id)
    if job.model_version is None:
        raise RuntimeError(f"{arm}: the retrain produced no version ({job.status}: {job.error})")
    version = curation.registry.get(job.model_version)
    summary = version.summary
    tagger = Tagger.load(version.folder)
    test = evaluate_tagger(tagger, load_split("test", data))
    dev = evaluate_tagger(tagger, load_split("devel", data))
    gold_mentions = sum(
        label.startswith("B-") for index in corrected for label in pool[index].labels
    )
    job_seconds = summary.get("job_seconds")
    return {
        "arm": arm,
        "retrain_data": summary.get("retrain_data"),
        "job_options": job.options,
        "corrected": len(corrected),
        "corrected_gold_mentions": gold_mentions,
        "corrected_pool_indexes": corrected,
        "pool_items_tagged": tagged,
        "pool_tagging_from_snapshot": from_snapshot,
        "version": job.model_version,
        "decision": version.decision,
        "retrain_seconds": round(retrain_seconds, 1),
        # The job's own phases; the rest of retrain_seconds is the worker process's
        # start (imports, housekeeping) and its end (after registration).
        "phase_seconds": summary.get("phase_seconds"),
        "job_seconds": job_seconds,
        "outside_job_seconds": (
            round(retrain_seconds - job_seconds, 1) if job_seconds is not None else None
        ),
        "train_sentences": summary.get("train_sentences"),
        "replay": summary.get("replay"),
        "promotion": summary.get("promotion"),
        "choose_seconds": round(chosen_seconds, 1),
        "test": scores(test),
        "dev": scores(dev),
        "served_as": tagger.describe_serving(),
        "job_metrics": version.metrics,  # scored by the job (Keras float32), as the app shows
        "worker_command": " ".join(command),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="BC5CDR-disease folder")
    parser.add_argument("--work", type=Path, default=Path("models/bench-queue"))
    parser.add_argument("--corrections", type=int, default=200)
    parser.add_argument("--base-epochs", type=int, default=3)
    parser.add_argument(
        "--retrain-data",
        choices=RETRAIN_DATA_CHOICES,
        default="replay",
        help="the retrain job's retrain_data (default replay, as the Retrain button runs it)",
    )
    parser.add_argument(
        "--retrain-epochs",
        type=int,
        default=None,
        help="override the retrain schedule's epochs (default: the job's own; the first "
        "full-retrain runs used 1)",
    )
    parser.add_argument(
        "--retrain-lr", type=float, default=None, help="override the schedule's peak rate"
    )
    parser.add_argument(
        "--replay-sentences",
        type=int,
        default=None,
        help="base sentences a replay retrain replays (default: the worker's rule)",
    )
    parser.add_argument(
        "--no-base-dev-record",
        action="store_true",
        help="adopt the bare base: every arm then measures the serving model's devel F1",
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    started = time.time()
    data, pool = prepare_split(args.data_dir, args.work)
    base, train_command = base_model(args.work, data, args.base_epochs)
    adopted, dev_record = base, {"stamped": False, "skipped": True}
    if not args.no_base_dev_record:
        adopted, dev_record = scored_base(args.work, base, data)
    from tagger import Tagger
    from training.data import load_split
    from training.evaluate import evaluate_tagger

    base_tagger = Tagger.load(base)
    result: dict[str, Any] = {
        "command": "python -m benchmarks.review_queue " + " ".join(argv or sys.argv[1:]),
        "base_command": "python " + " ".join(train_command[1:]),
        "pool_sentences": len(pool),
        "train_sentences": len(read_bio(data / "train.tsv")),
        "retrain_data": args.retrain_data,
        "retrain_epochs": args.retrain_epochs,
        "retrain_lr": args.retrain_lr,
        "replay_sentences": args.replay_sentences,
        "adopted_base": str(adopted),
        "base_dev_record": dev_record,
        "base": {
            "test": scores(evaluate_tagger(base_tagger, load_split("test", data))),
            "dev": scores(evaluate_tagger(base_tagger, load_split("devel", data))),
        },
        "arms": {},
    }
    del base_tagger
    for arm in args.arms:
        result["arms"][arm] = run_arm(arm, args, data, adopted, pool)
        print(json.dumps(result["arms"][arm]["test"]), file=sys.stderr)
    result["seconds"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
