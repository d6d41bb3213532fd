"""The BENCHMARKS.md sections of issue 10's measurements, rendered from fake results."""

from __future__ import annotations

from typing import Any

from benchmarks.report import app_paths_section, first_highlight_section, quick_retrain_section


def arm(f1: float, seconds: float, corrected: int, **extra: Any) -> dict[str, Any]:
    scores = {"precision": f1, "recall": f1, "f1": f1}
    return {"test": scores, "dev": scores, "corrected": corrected,
            "retrain_seconds": seconds, **extra}  # fmt: skip


def test_the_quick_retrain_section_credits_corrections_against_each_control() -> None:
    phases = {"train": 100.0, "dev_eval": 30.0, "test_eval": 40.0}
    quick = {
        "command": "quick",
        "arms": {
            "none": arm(69.0, 200.0, 0, phase_seconds=phases, train_sentences=800),
            "queue": arm(71.5, 250.0, 200, phase_seconds=phases, train_sentences=1000),
        },
    }
    full = {"command": "full", "measured": "then",
            "arms": {"none": arm(70.0, 900.0, 0), "queue": arm(70.5, 950.0, 200)}}  # fmt: skip
    section = quick_retrain_section({"quick_retrain": quick, "queue": full})
    assert "| Quick | queue-chosen | 200 | 1000 |" in section
    assert "| 2.50 |" in section and "| 0.50 |" in section  # each arm minus its own control
    assert "Quick took 250 s for 200 corrections (goal < 300 s; 70 s of it scoring" in section
    assert "its test F1 minus Full's is +1.00 (goal ≥ −0.30)" in section
    assert "run `python -m benchmarks.run_all --steps quick_retrain`" in quick_retrain_section({})
    rebuilt = {**quick, "base": {"test": {"f1": 70.4}}}
    other_base = quick_retrain_section({"quick_retrain": rebuilt, "queue": full})
    assert "minus Full's" not in other_base
    assert "the Full arms retrained another base model (its test F1 n/a, this run's 70.40" in (
        other_base
    )


def test_the_app_paths_section_gives_each_path_s_ratio_to_the_library() -> None:
    measured = {"model": "m", "serving": "ONNX Runtime int8 on CPU", "threads": 2,
                "command": "python -m benchmarks.app_paths",
                "paths": {"library": {"words_per_s": 4000.0, "ratio": 1.0},
                          "inspect": {"words_per_s": 3800.0, "ratio": 0.95}}}  # fmt: skip
    section = app_paths_section({"app_paths": measured})
    assert "| library: `Tagger.tag_words` over test | 4000 | 1.00 |" in section
    assert "| 3800 | 0.95 |" in section


def test_the_first_highlight_section_names_the_stages_and_the_goals() -> None:
    measured = {
        "command": "python -m benchmarks.first_highlight", "outcome": "completed",
        "seconds_since_make_start": {"app_healthy": 150.0, "first_highlight": 700.0,
                                     "page_ready": None},
        "model_that_tagged": {"version": "v1", "preliminary": True, "devel_f1": 61.2,
                              "steps": 120},
        "goals": {"first_highlight_within_10_minutes": {"met": False},
                  "devel_f1_at_least_68": {"met": False}},
        "pip_cache": {"existed": True},
    }  # fmt: skip
    section = first_highlight_section({"first_highlight": measured})
    assert "| app healthy | 150 |" in section and "| page ready | not reached |" in section
    assert "`v1`, preliminary: True, strict devel F1 61.20, taken at training step 120" in section
    assert "within 600 s: not met" in section and "at least 68: not met" in section


def test_the_epoch_time_rows_compare_one_epoch_of_each_side() -> None:
    from benchmarks.report import epoch_time_rows

    windows = {"max_words": 30, "max_tokens": 128, "context_tokens": 64, "cross_sentence": True}
    recipe = {"learning_rate": 1e-4, "epochs": 1, "batch_size": 32, "windows": windows}
    measured = {"measured": "now",
                "ours": {"command": "ours", "epoch_seconds": [300.0], "recipe": recipe},
                "peer": {"command": "peer", "epoch_seconds": [200.0]}}  # fmt: skip
    rows = epoch_time_rows({"epoch_time": measured})
    assert "| 300 | **1.50** | `ours` |" in rows
    assert "| peer (HF + PyTorch), one epoch right after | 200 | 1.00 | `peer` |" in rows
    assert "run `python -m benchmarks.run_all --steps epoch_time_packed`" in rows
    assert "run `python -m benchmarks.run_all --steps epoch_time`" in epoch_time_rows({})
    packed = {**measured, "ours": {**measured["ours"], "epoch_seconds": [150.0],
                                   "recipe": {**recipe, "batch_size": 16,
                                              "windows": {**windows, "packed": True}}}}  # fmt: skip
    both = epoch_time_rows({"epoch_time": measured, "epoch_time_packed": packed})
    assert "(`--steps epoch_time_packed`, measured now)" in both
    assert "default recipe on packed windows (lr 0.0001, up to 1 epochs, batch 16, packed " in both
    assert "| 150 | **0.75** | `ours` |" in both and "| 300 | **1.50** |" in both


def test_the_ablation_is_ranked_by_devel_f1_with_test_last() -> None:
    from benchmarks.report import ablation_section

    def run(dev_f1: float, test_f1: float, **windows: Any) -> dict[str, Any]:
        shape = {"max_words": 30, "max_tokens": 128, "context_tokens": 64,
                 "cross_sentence": True, **windows}  # fmt: skip
        training = {"learning_rate": 1e-4, "epochs": 8, "batch_size": 32, "windows": shape}
        viterbi = {"precision": test_f1, "recall": test_f1, "f1": test_f1, "n_gold": 10,
                   "n_pred": 9}  # fmt: skip
        scores = {"argmax": {"f1": test_f1}, "viterbi": viterbi}
        dev = {"precision": dev_f1, "recall": dev_f1, "f1": dev_f1, "n_gold": 10, "n_pred": 9}
        return {"command": "c", "best_epoch": 2, "training": training, "dev": dev,
                "test": scores}  # fmt: skip

    results = {"parity": run(75.0, 80.0), "chunked": None, "nocontext": run(78.0, 70.0),
               "packed": run(77.0, 79.0, packed=True, max_tokens=256),
               "default": run(76.0, 78.0), "variants": None}  # fmt: skip
    section = ablation_section(results)
    order = [section.index(name) for name in ("without context", "on packed windows", "shipped",
                                              "the peer's recipe:")]  # fmt: skip
    assert order == sorted(order)  # devel 78 > 77 > 76 > 75, whatever test says
    assert "packed windows of 256 tokens, 32 context tokens each side" in section
    assert "| 78.00 | 10 / 9 | 2 | 70.00 | 70.00 | 70.00 / 70.00 | 10 / 9 | `c` |" in section
    assert "| the peer's recipe, sentences cut into chunks | not measured |" in section
    assert "| default recipe on packed windows with the chemical labels as a second" in section

    multitask = run(79.0, 79.5)
    multitask["training"]["auxiliary"] = {"entity_type": "Chemical", "weight": 0.5}
    multitask["training"]["history"] = [{"dev": {"f1": 78.5}}, {"dev": {"f1": 78.9}}]
    multitask["training"]["best_epoch"] = 2
    multitask["training"]["averaged"] = {"epochs": [1, 2], "dev": {"f1": 79.0}, "kept": True}
    top = ablation_section({**results, "multitask": multitask}).split("|---|")[-1]
    assert top.splitlines()[1].startswith(
        "| default recipe on packed windows with the chemical labels as a second head "
        "(`--aux-labels`): lr 0.0001,"
        " up to 8 epochs, batch 32, chunks of ≤30 words, 64 context tokens across sentences, "
        "Chemical labels through a second head (loss weight 0.5); the mean of epochs 1-2 "
        "(devel 79.00) beat the best epoch (78.90): kept | 79.00 |"
    )


def test_the_accuracy_table_adds_the_peer_trained_with_our_recipe_when_measured() -> None:
    from benchmarks.report import accuracy_section

    def scores(f1: float) -> dict[str, Any]:
        return {"precision": f1, "recall": f1, "f1": f1, "n_gold": 10, "n_pred": 11}

    peer = {"test": scores(74.6), "command": "peer"}
    parity = {"test": {"argmax-drop": scores(74.5), "argmax": scores(73.1)}, "command": "parity"}
    results: dict[str, Any] = {"peer": peer, "parity": parity, "default": None, "spacy": None}
    assert "our default recipe's learning rate" not in accuracy_section(results)
    results["peer_our_recipe"] = {"test": scores(77.25), "command": "peer --lr 0.0001"}
    row = next(line for line in accuracy_section(results).splitlines() if "our default" in line)
    assert "| 77.25 | 77.25 | 77.25 | 10 | 11 | `peer --lr 0.0001` |" in row
    results["default"] = {"test": {"viterbi": scores(78.0)}, "version": "v"}
    assert "the peer with its own: **+2.65 F1**" in accuracy_section(results)
    assert "(what our windows, decoding and serving add): **+0.75 F1**" in accuracy_section(results)


def test_the_report_docstring_examples_run() -> None:
    import doctest

    from benchmarks import report

    result = doctest.testmod(report, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 9 and result.failed == 0


def test_the_refit_row_comes_last_whatever_its_test_f1() -> None:
    from benchmarks.report import ablation_section

    viterbi = {"precision": 90.0, "recall": 90.0, "f1": 90.0, "n_gold": 10, "n_pred": 10}
    refit = {"command": "refit", "train_sentences": 60,
             "epochs_chosen_by": {"model_version": "v7", "best_epoch": 7},
             "test": {"argmax": {"f1": 89.0}, "viterbi": viterbi}}  # fmt: skip
    default = {"command": "d", "best_epoch": 7, "dev": {"f1": 78.0},
               "training": {"learning_rate": 1e-4, "epochs": 8, "batch_size": 32,
                            "windows": {"max_words": 30, "max_tokens": 128,
                                        "context_tokens": 64, "cross_sentence": True}},
               "test": {"argmax": {"f1": 77.0}, "viterbi": {**viterbi, "f1": 78.0}}}  # fmt: skip
    section = ablation_section({"parity": None, "chunked": None, "nocontext": None,
                                "default": default, "variants": None, "refit": refit})  # fmt: skip
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert rows[-1].startswith("| default recipe refit on train+devel (60 sentences) for 7 epochs")
    assert "(version `v7`) chose; not ranked" in rows[-1]
    assert "| trained on | trained on | trained on | n/a | 7 (given) | 89.00 | 90.00 |" in rows[-1]
