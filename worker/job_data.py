"""The data a training job trains and scores on: the base split with the corrections in.

The base ``train`` split with each corrected sentence replacing the base sentence with
the same words (corrections matching no base sentence are added). Corrected sentences
are held out of ``devel`` and ``test``, so no score is measured on sentences the model
was just taught.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.corrections import Correction
from tagger.bio import Sentence
from training.data import file_sha256, load_split, split_path


@dataclass(frozen=True)
class TrainingData:
    """The three splits a job uses and a summary recorded with the model version."""

    train: list[Sentence]
    dev: list[Sentence]
    test: list[Sentence]
    summary: dict[str, Any]


def merge_corrections(
    base: Sequence[Sentence], corrections: Sequence[Correction]
) -> tuple[list[Sentence], dict[str, int]]:
    """``base`` with corrected sentences replaced (same words), other corrections appended.

    When two corrections have the same words, the later one (higher id) wins.
    """
    by_words: dict[tuple[str, ...], Correction] = {}
    for correction in sorted(corrections, key=lambda c: c.id):
        by_words[correction.words] = correction
    matched: set[tuple[str, ...]] = set()
    merged: list[Sentence] = []
    for sentence in base:
        correction = by_words.get(sentence.words)
        if correction is None:
            merged.append(sentence)
        else:
            matched.add(sentence.words)
            merged.append(Sentence(sentence.words, correction.labels, sentence.line))
    added = [by_words[words] for words in by_words if words not in matched]
    merged.extend(correction.as_sentence() for correction in added)
    counts = {
        "base_sentences_replaced": sum(1 for s in base if s.words in matched),
        "corrections_replacing_base": len(matched),
        "corrections_added": len(added),
    }
    return merged, counts


def held_out(sentences: Sequence[Sentence], corrected: set[tuple[str, ...]]) -> list[Sentence]:
    return [sentence for sentence in sentences if sentence.words not in corrected]


def training_data(
    data_dir: str | Path | None, corrections: Sequence[Correction], started_from: str
) -> TrainingData:
    base = load_split("train", data_dir)
    train, counts = merge_corrections(base, corrections)
    corrected = {correction.words for correction in corrections}
    devel, test = load_split("devel", data_dir), load_split("test", data_dir)
    dev, test_kept = held_out(devel, corrected), held_out(test, corrected)
    summary = {
        "base_sentences": len(base),
        "train_sentences": len(train),
        "corrections_used": len(corrections),
        "correction_ids": [correction.id for correction in corrections],
        **counts,
        "dev_sentences": len(dev),
        "dev_held_out": len(devel) - len(dev),
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


