"""benchmarks.serving on the tiny model: ours measured per serving choice, no peer."""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks import serving
from tagger.bio import write_bio
from tests.tiny import tiny_corpus


def test_ours_is_measured_per_serving_choice_with_dev_and_test_scores(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for split in ("devel", "test"):
        write_bio(tiny_corpus(repeat=3), data / f"{split}.tsv")
    out = tmp_path / "serving.json"
    cores = os.sched_getaffinity(0)
    serving.main(
        ["--model", str(tiny_model_dir), "--data-dir", str(data), "--threads", "1",
         "--document-sentences", "4", "--no-peer", "--out", str(out)]
    )  # fmt: skip
    result = json.loads(out.read_text(encoding="utf-8"))
    rows = {row["name"]: row for row in result["ours"]}
    assert list(rows) == [config.name for config in serving.OUR_CONFIGS]
    n_sentences = len(tiny_corpus(repeat=3))
    for row in rows.values():
        assert row["words_per_s"] > 0 and row["latency_ms_250_words_median"] > 0
        assert row["threads"] == 1
        assert row["documents"] == len(serving.documents_of(n_sentences, 4))
        assert row["test"]["n_gold"] == row["dev"]["n_gold"] > 0
    assert rows["one window per sentence chunk"]["packed_context"] is None
    assert rows["packed, 24 context pieces each side"]["packed_context"] == 24
    assert rows["packed, no context pieces"]["packed_context"] == 0
    assert rows["float32"]["precision"] == "float32"
    assert "peer" not in result
    assert os.sched_getaffinity(0) == cores  # the pin to --threads cores is undone


def test_the_serving_section_compares_ours_with_the_fastest_peer_configuration() -> None:
    from benchmarks.report import serving_section

    scores = {"precision": 80.0, "recall": 70.0, "f1": 74.67, "n_gold": 10, "n_pred": 9}
    ours = {
        "name": "default",
        "precision": "int8",
        "packed_context": 32,
        "threads": 2,
        "n_words": 100,
        "documents": 3,
        "document_sentences": 10,
        "tokens_read": 500,
        "words_per_s": 6000.0,
        "latency_ms_250_words_median": 20.0,
        "latency_text_words": 251,
        "dev": scores,
        "test": scores,
    }

    def peer_config(best: float, batch: int) -> dict[str, object]:
        by_size = {"1": best / 2, "8": best, "16": best / 3}
        return {
            "words_per_s_by_batch_size": by_size,
            "words_per_s_best": best,
            "best_batch_size": batch,
            "latency_ms_median": 30.0,
            "f1": None,
        }

    serving = {
        "command": "python -m benchmarks.serving", "peer_command": "peer sweep",
        "model": "default", "model_dev": {"f1": 75.0}, "threads": 2, "ours": [ours],
        "peer": {"sweep": {"batch_sizes": [1, 8, 16]}, "threads": {"torch_intra_op": 2,
                 "ort_intra_op": 2}, "cpu": {"avx2": True}, "head": "untrained",
                 "f1_note": "untrained head: speed only",
                 "configs": {"torch-fp32": peer_config(3000.0, 8),
                             "torch-int8": peer_config(4000.0, 8)}},
    }  # fmt: skip
    section = serving_section({"serving": serving})
    assert "**int8, packed windows, 32 context pieces each side (the default)**" in section
    assert "| **1.50** |" in section  # 6000 ÷ the fastest peer's 4000
    assert "torch dynamic int8" in section and "**4000** (8)" in section
    assert "no VNNI or AMX int8 instructions (AVX2 only)" in section
    assert "so its rows have no F1" in section
    assert "Command: `python -m benchmarks.serving`" in section


def test_a_choice_that_serves_the_model_as_the_default_does_is_measured_once(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import shutil

    def measured_names(model: Path) -> list[str]:
        return [config.name for config in serving.distinct_configs(model, serving.OUR_CONFIGS)]

    # The tiny model is trained with context, so it is served through packed windows.
    assert measured_names(tiny_model_dir) == [config.name for config in serving.OUR_CONFIGS]

    without_context = tmp_path / "no-context"
    shutil.copytree(tiny_model_dir, without_context)
    metadata_path = without_context / "model.json"
    metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    metadata["windows"].update(context_tokens=0, cross_sentence=False)
    metadata_path.write_text(json.dumps(metadata), encoding="utf-8")
    # One chunk per window is this model's default: that row would repeat it.
    assert measured_names(without_context) == [
        "default", "packed, no context pieces", "packed, 24 context pieces each side", "float32"
    ]  # fmt: skip
