"""benchmarks.app_paths on the tiny model: every app path measured against the library's."""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks import app_paths
from tagger.bio import write_bio
from tests.tiny import tiny_corpus

PATHS = ("library", "inspect", "tag_page", "tag_page_pasted", "collections", "library_end")


def test_each_app_path_gets_words_per_second_and_a_ratio_to_the_library(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    sentences = tiny_corpus(repeat=3)
    write_bio(sentences, data / "test.tsv")
    out = tmp_path / "app_paths.json"
    cores = os.sched_getaffinity(0)
    app_paths.main(
        ["--model", str(tiny_model_dir), "--data-dir", str(data), "--out", str(out),
         "--threads", "1", "--doc-sentences", "4", "--runtime", "keras",
         "--precision", "float32"]
    )  # fmt: skip
    assert os.sched_getaffinity(0) == cores  # the pin to --threads cores is undone
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["threads"] == 1 and result["serving"] == "Keras float32 on CPU"
    assert result["sentences"] == len(sentences)
    assert result["words"] == sum(len(sentence.words) for sentence in sentences)
    assert tuple(result["paths"]) == PATHS
    for name, path in result["paths"].items():
        assert path["words_per_s"] > 0, name
        assert path["ratio"] > 0, name
        assert path["what"], name
    assert result["paths"]["library"]["ratio"] == 1.0
    inspect = result["paths"]["inspect"]
    assert inspect["same_labels_as_library"] is True
    assert inspect["progress_calls"] >= 1  # the page's bar moves once per batch
    assert inspect["render_s"] > 0 and inspect["render_all_sentences_s"] > 0
    tag_page = result["paths"]["tag_page"]
    assert tag_page["latency_ms_median"] > 0 and tag_page["library_latency_ms_median"] > 0
    assert result["paths"]["tag_page_pasted"]["abstracts"] >= 2
    collections = result["paths"]["collections"]
    assert collections["documents"] == -(-len(sentences) // 4)
    assert collections["steps"] >= 1 and 0 < collections["tagger_s"] <= collections["seconds"]
