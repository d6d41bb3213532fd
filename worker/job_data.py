"""The data a training job trains and scores on: the base split with the corrections in.

Two ways to train (``TrainJobOptions.retrain_data``):

- **full**: the base ``train`` split with each corrected sentence replacing the base
  sentence with the same words (corrections matching no base sentence are added).
- **replay** (a retrain from the model in service, by default): every correction plus a
  seeded sample of the base sentences no correction replaced (:func:`replay_size`
  sentences, drawn in runs of consecutive sentences by :func:`replay_sample`), in base
  order, the added corrections last, as in the full data. The model in service already
  learned the base split; replaying part of it keeps what it knows while it takes in
  the corrections, at a fraction of a full pass.

Either way corrected sentences are held out of ``devel`` and ``test``, so no score is
measured on sentences the model was just taught, and the summary records the sha256 of
the dev sentences (:func:`sentences_sha256`): a later job scored on exactly the same
sentences may reuse this version's dev F1 as its baseline instead of measuring it again.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.corrections import Correction
from curation.jobs import (
    REPLAY_MIN_SENTENCES,
    REPLAY_PER_CORRECTION,
    RETRAIN_DATA_FULL,
    RETRAIN_DATA_REPLAY,
    replay_size,
)
from tagger.bio import Sentence
from training.data import file_sha256, load_split, split_path

# The sample is drawn in runs of this many consecutive base sentences: the default
# recipe reads 64 context pieces across sentence boundaries, and BC5CDR's training
# abstracts run about 9 sentences (500 abstracts, 4,560 sentences), so a replayed
# sentence mostly keeps its own abstract's neighbours as context, as in the full split.
REPLAY_RUN_SENTENCES = 8
DEV_SHA_KEY = "dev_sentences_sha256"


@dataclass(frozen=True)
class TrainingData:
    """The three splits a job uses and a summary recorded with the model version."""

    train: list[Sentence]
    dev: list[Sentence]
    test: list[Sentence]
    summary: dict[str, Any]


@dataclass(frozen=True)
class ReplayPlan:
    """A replay retrain's sample: its seed and, optionally, its size.

    Args:
        seed: seeds which runs of base sentences are drawn.
        sentences: base sentences to replay; None: :func:`replay_size`'s default.
    """

    seed: int
    sentences: int | None = None


def merge_corrections(
    base: Sequence[Sentence], corrections: Sequence[Correction]
) -> tuple[list[Sentence], dict[str, int]]:
    """``base`` with corrected sentences replaced (same words), other corrections appended.

    When two corrections have the same words, the later one (higher id) wins.
    """
    merged, _corrected, counts = _merge(base, corrections)
    return merged, counts


def _merge(
    base: Sequence[Sentence], corrections: Sequence[Correction]
) -> tuple[list[Sentence], list[bool], dict[str, int]]:
    """:func:`merge_corrections`, and for each merged sentence whether it is a correction
    (the first ``len(base)`` of them stand where the base sentences stood)."""
    by_words: dict[tuple[str, ...], Correction] = {}
    for correction in sorted(corrections, key=lambda c: c.id):
        by_words[correction.words] = correction
    matched: set[tuple[str, ...]] = set()
    merged: list[Sentence] = []
    corrected: list[bool] = []
    for sentence in base:
        correction = by_words.get(sentence.words)
        if correction is None:
            merged.append(sentence)
            corrected.append(False)
        else:
            matched.add(sentence.words)
            merged.append(Sentence(sentence.words, correction.labels, sentence.line))
            corrected.append(True)
    added = [by_words[words] for words in by_words if words not in matched]
    merged.extend(correction.as_sentence() for correction in added)
    corrected.extend(True for _ in added)
    counts = {
        "base_sentences_replaced": sum(corrected[: len(base)]),
        "corrections_replacing_base": len(matched),
        "corrections_added": len(added),
    }
    return merged, corrected, counts


def replay_sample(
    candidates: Sequence[bool], size: int, seed: int, *, run: int = REPLAY_RUN_SENTENCES
) -> list[int]:
    """Indexes of ``size`` base sentences to replay (ascending), drawn in runs.

    ``candidates[i]`` says whether base sentence ``i`` may be replayed (no correction
    replaced it). The base is cut into runs of ``run`` consecutive sentences at fixed
    places; the runs are shuffled with ``seed`` and their candidates taken in that order
    until there are ``size``. The same candidates, size and seed give the same sample,
    and a sentence that stops being a candidate changes only its own run's share.

    >>> first = replay_sample([True] * 10, 4, seed=1, run=3)
    >>> len(first), first == replay_sample([True] * 10, 4, seed=1, run=3)
    (4, True)
    >>> replay_sample([False, True], 5, seed=0)
    [1]
    """
    starts = list(range(0, len(candidates), run))
    random.Random(seed).shuffle(starts)
    chosen: list[int] = []
    for start in starts:
        for index in range(start, min(start + run, len(candidates))):
            if len(chosen) == size:
                return sorted(chosen)
            if candidates[index]:
                chosen.append(index)
    return sorted(chosen)


def sentences_sha256(sentences: Sequence[Sentence]) -> str:
    """The sha256 of ``sentences`` in order, words and labels (not file lines).

    Order counts: packed windows read neighbouring sentences as context.

    >>> a, b = Sentence(["Fever", "."], ["B-Disease", "O"]), Sentence(["No", "."], ["O", "O"])
    >>> sentences_sha256([a, b]) == sentences_sha256([a, b]) != sentences_sha256([b, a])
    True
    """
    digest = hashlib.sha256()
    for sentence in sentences:
        line = json.dumps([sentence.words, sentence.labels], ensure_ascii=False)
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def held_out(sentences: Sequence[Sentence], corrected: set[tuple[str, ...]]) -> list[Sentence]:
    return [sentence for sentence in sentences if sentence.words not in corrected]


def training_data(
    data_dir: str | Path | None,
    corrections: Sequence[Correction],
    started_from: str,
    *,
    replay: ReplayPlan | None = None,
) -> TrainingData:
    """The job's train/dev/test sentences: full data, or a replay sample when ``replay``."""
    base = load_split("train", data_dir)
    merged, is_correction, counts = _merge(base, corrections)
    replay_summary: dict[str, Any] | None = None
    if replay is None:
        train = merged
    else:
        candidates = [not flag for flag in is_correction[: len(base)]]
        distinct = counts["corrections_replacing_base"] + counts["corrections_added"]
        size = replay_size(distinct, sum(candidates), replay.sentences)
        sampled = set(replay_sample(candidates, size, replay.seed))
        train = [
            sentence
            for index, sentence in enumerate(merged)
            if is_correction[index] or index in sampled
        ]
        replay_summary = {
            "seed": replay.seed,
            "base_sentences_replayed": len(sampled),
            "requested": replay.sentences,  # None: the default rule
            "rule": f"max({REPLAY_PER_CORRECTION} x corrections, {REPLAY_MIN_SENTENCES}), "
            "at most the base sentences no correction replaced",
            "run_sentences": REPLAY_RUN_SENTENCES,
            "base_sentences_available": sum(candidates),
            "correction_sentences": len(train) - len(sampled),
        }
    corrected = {correction.words for correction in corrections}
    devel, test = load_split("devel", data_dir), load_split("test", data_dir)
    dev, test_kept = held_out(devel, corrected), held_out(test, corrected)
    summary = {
        "base_sentences": len(base),
        "train_sentences": len(train),
        "retrain_data": RETRAIN_DATA_FULL if replay is None else RETRAIN_DATA_REPLAY,
        **({"replay": replay_summary} if replay_summary is not None else {}),
        "corrections_used": len(corrections),
        "correction_ids": [correction.id for correction in corrections],
        **counts,
        "dev_sentences": len(dev),
        "dev_held_out": len(devel) - len(dev),
        DEV_SHA_KEY: sentences_sha256(dev),
        "test_sentences": len(test_kept),
        "test_held_out": len(test) - len(test_kept),
        "started_from": started_from,
        "files": {
            split: {
                "file": split_path(split, data_dir).name,
                "sha256": file_sha256(split_path(split, data_dir)),
            }
            for split in ("train", "devel", "test")
        },
    }
    return TrainingData(train, dev, test_kept, summary)
