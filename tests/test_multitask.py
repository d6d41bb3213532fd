"""Multi-task fine-tuning with a second label set (`--aux-labels`, `training.multitask`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tagger.bio import Sentence, write_bio
from tagger.model import IGNORE_INDEX, build_token_classifier
from tagger.model_folder import load_model_folder
from tagger.tokenization import WordPieceEncoder
from tests.tiny import (
    DRUGS,
    tiny_corpus,
    tiny_encoder,
    tiny_recipe,
    tiny_split,
    tiny_training_folders,
)
from training.data import DataError
from training.datasets import WindowBatches, training_windows
from training.fit_loop import fit_batches
from training.multitask import (
    AuxiliaryTask,
    align_labels,
    load_auxiliary_task,
    multitask_losses,
    multitask_trainer,
)
from training.train import LABELS, fine_tune, main, refit_on_train_and_devel


def chemical_labels(sentences: Sequence[Sentence], *, line: int = 0) -> list[Sentence]:
    """The tiny corpus labelled for its drugs instead of its diseases."""
    return [
        Sentence(s.words, tuple("B-Chemical" if w in DRUGS else "O" for w in s.words), line)
        for s in sentences
    ]


def test_the_auxiliary_head_learns_its_labels_beside_the_classifier(tmp_path: Path) -> None:
    import keras

    train, _ = tiny_split()
    encoder = tiny_encoder(tmp_path / "encoder")
    wordpiece = WordPieceEncoder.from_vocab_file(encoder.vocab_path, lowercase=True)
    task = AuxiliaryTask("Chemical", chemical_labels(train), weight=1.0)
    classifier = build_token_classifier(encoder.backbone, len(LABELS), dropout=0.0)
    trainer = multitask_trainer(classifier, task)
    trainer.compile(optimizer=keras.optimizers.Adam(5e-3), **multitask_losses(task))
    settings = tiny_recipe().windows
    batches = WindowBatches(
        training_windows(train, wordpiece, settings),
        train,
        {label: index for index, label in enumerate(LABELS)},
        batch_size=8,
        pad_id=wordpiece.pad_id,
        seed=0,
        aux_sentences=task.train,
        aux_label_ids=task.label_ids(),
    )
    fit_batches(trainer, batches, epochs=8, verbose=0)
    inputs, (_, chemical) = batches[0]
    disease_logits, chemical_logits = trainer.predict_on_batch(inputs)
    scored = chemical != IGNORE_INDEX
    assert (np.argmax(chemical_logits, -1)[scored] == chemical[scored]).mean() > 0.95
    assert (chemical[scored] == 1).any()  # the batch has chemicals to find
    # The classifier alone is the shared part: same logits, no auxiliary weights.
    np.testing.assert_allclose(classifier.predict_on_batch(inputs), disease_logits, atol=1e-5)
    assert len(trainer.weights) == len(classifier.weights) + 2


def test_fine_tune_and_refit_with_an_auxiliary_task_keep_only_the_classifier(
    tmp_path: Path,
) -> None:
    train, dev = tiny_split()
    task = AuxiliaryTask(
        "Chemical",
        chemical_labels(train),
        dev=chemical_labels(dev),
        source={"train": {"file": "t"}},
    )
    settings = tiny_recipe(2, average_last=2, max_steps=3)
    encoder = tiny_encoder(tmp_path / "a")
    initial = [w.copy() for w in encoder.backbone.get_weights()]
    multi = fine_tune(encoder, train, dev, settings, auxiliary=task, verbose=0)
    plain = build_token_classifier(tiny_encoder(tmp_path / "b").backbone, len(LABELS))
    assert [w.shape for w in multi.tagger.model.get_weights()] == [
        w.shape for w in plain.get_weights()
    ]
    training = multi.tagger.info.training
    assert training["auxiliary"] == {
        "entity_type": "Chemical",
        "weight": 0.5,
        "train": {"file": "t"},
    }
    assert len(training["history"]) == 2 and "averaged" in training
    assert not np.allclose(encoder.backbone.get_weights()[0], initial[0])  # it trained

    refit = refit_on_train_and_devel(
        tiny_encoder(tmp_path / "c"), train, dev, settings, multi, auxiliary=task, verbose=0
    )
    assert refit.tagger.info.training["train_sentences"] == len(train) + len(dev)
    assert refit.tagger.info.training["auxiliary"]["entity_type"] == "Chemical"


def test_auxiliary_labels_of_other_sentences_are_refused_with_file_and_line() -> None:
    main_split = tiny_corpus()[:3]
    chemical = chemical_labels(main_split, line=5)
    with pytest.raises(DataError, match=r"chem\.tsv has 2 sentences, the training split 3"):
        align_labels(main_split, chemical[:2], "chem.tsv")
    shorter = [*chemical[:2], Sentence(chemical[2].words[:-1], chemical[2].labels[:-1], 21)]
    count = len(shorter[2].words)
    with pytest.raises(DataError) as caught:
        align_labels(main_split, shorter, "chem.tsv")
    assert str(caught.value).startswith(
        f"chem.tsv:{21 + count}: sentence 3 has {count} words, the training split's {count + 1}"
    )
    assert align_labels(main_split, chemical, "c")[1].labels == chemical[1].labels


def write_chemical_folder(folder: Path, data: Path, splits: Sequence[str]) -> Path:
    from tagger.bio import read_bio

    folder.mkdir()
    for split in splits:
        write_bio(chemical_labels(read_bio(data / f"{split}.tsv")), folder / f"{split}.tsv")
    return folder


def test_the_train_command_records_the_auxiliary_labels(tmp_path: Path) -> None:
    encoder_dir, data = tiny_training_folders(tmp_path)
    chemical = write_chemical_folder(tmp_path / "chem", data, ["train"])
    out = tmp_path / "model"
    code = main(
        ["--out", str(out), "--encoder", str(encoder_dir), "--data-dir", str(data),
         "--epochs", "1", "--max-steps", "2", "--batch-size", "8", "--max-tokens", "32",
         "--context-tokens", "8", "--aux-labels", str(chemical), "--aux-weight", "0.25",
         "--no-test"]
    )  # fmt: skip
    assert code == 0
    auxiliary = load_model_folder(out).metadata.training["auxiliary"]
    assert auxiliary["entity_type"] == "Chemical" and auxiliary["weight"] == 0.25
    assert auxiliary["train"]["file"] == "train.tsv" and len(auxiliary["train"]["sha256"]) == 64
    saved = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert saved["labels"] == list(LABELS)  # the served labels are the disease labels


def test_bad_auxiliary_labels_stop_the_command_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encoder_dir, data = tiny_training_folders(tmp_path)
    chemical = write_chemical_folder(tmp_path / "chem", data, ["train"])
    base = ["--encoder", str(encoder_dir), "--data-dir", str(data), "--epochs", "1",
            "--aux-labels", str(chemical)]  # fmt: skip
    assert main(["--out", str(tmp_path / "a"), *base, "--refit-on-devel"]) == 2
    err = capsys.readouterr().err
    assert f"{chemical / 'devel.tsv'} is missing; --aux-labels needs devel.tsv" in err
    lines = (chemical / "train.tsv").read_text(encoding="utf-8").splitlines()
    lines[2] = "aspirin\tB-Chemical"
    (chemical / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["--out", str(tmp_path / "b"), *base]) == 2
    err = capsys.readouterr().err
    assert f"{chemical / 'train.tsv'}:3: 'aspirin' where the training split has" in err
    assert "(sentence 1, word 3)" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_load_auxiliary_task_reads_a_prefix_of_each_split(tmp_path: Path) -> None:
    _, data = tiny_training_folders(tmp_path)
    chemical = write_chemical_folder(tmp_path / "chem", data, ["train", "devel"])
    from tagger.bio import read_bio

    train, dev = read_bio(data / "train.tsv")[:5], read_bio(data / "devel.tsv")[:2]
    task = load_auxiliary_task(chemical, train, dev, weight=2.0)
    assert (len(task.train), len(task.dev), task.weight) == (5, 2, 2.0)
    assert set(task.source) == {"train", "devel"}
    assert [s.words for s in task.train] == [s.words for s in train]
