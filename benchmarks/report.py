"""Render BENCHMARKS.md from the JSON files in benchmarks/results/ (nothing typed by hand)."""

from __future__ import annotations

import statistics
from typing import Any

Results = dict[str, dict[str, Any] | None]

HEADER = """# Benchmarks

Every number below is read from `benchmarks/results/*.json`, written by
`python -m benchmarks.run_all` (or `make bench`), and this file is regenerated from them.
Every F1 is **strict entity-level** (seqeval `mode="strict", scheme=IOB2`) on
BC5CDR-disease `test` unless marked dev. Times are wall-clock on {machine}; this machine is
shared and noisy, so compare the ratios measured in the same run, not absolute times.

The one-house restructuring (the curation layer in `curation/`, the worker in `worker/`,
one error type, model references, one scorer) changed no training step, window, decoding
or serving computation, so the rows measured before it still hold; where a recorded
command names a module that has moved since, its section says so. The review-queue work
(collections, the queue, the span editor) and the preliminary first-model versions changed
no training step, window, decoding or serving computation either; the load test was
re-run after the Correct page became the span editor. The speed work after it runs ONNX
Runtime's windows side by side (each still alone and unpadded: the same labels) and
scores training on ONNX Runtime float32 (the Keras labels up to float rounding): the
serving table was measured again after it, and the F1 rows above it still hold.

On 2026-12-02 the default recipe without context was trained again (devel 78.04, against
78.77 on 2026-11-25 and the default's 78.96) to see whether it could become the default for
its speed: it could not, so its row now holds that later run. `make model` trained it while
it was briefly the default, with exactly the settings of `--recipe no-context` (its
`model.json` records them), and `run_all --steps nocontext --reuse-trained` scored it.
Models trained before 2026-12-02 ran through `model.fit`; later ones through `train_on_batch`
(`training/fit_loop.py`: the same batches, optimizer and callbacks, in faster steps on this
CPU).

On 2026-12-03 the recipe levers of issue 12 ran on packed training windows (steps `packed`,
`multitask`, `adapted`: each up to 8 epochs, about half an hour on these 2 cores, against
an hour for the default recipe's windows), two of them side by side, one core each
(`taskset`): their per-epoch seconds are those of one core shared with the other runs, and
the epoch-time ratio comes from `--steps epoch_time_packed`, run alone before them. Adding
the multi-task head and the encoder-adaptation job changed no default training, decoding or
serving computation. The models under `models/` were trained again on this machine
(`models/bench-queue/base` too), so the rows that name them were measured again.
"""

MISSING = "_not measured yet: run `python -m benchmarks.run_all --steps {step}`_\n\n"


TRAINED_BY = "make model  # python -m training.train --out models/default"


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def spacy_name(spacy: dict[str, Any]) -> str:
    """The spaCy baseline's row name, with how its epoch was chosen (on devel)."""
    recipe = spacy["recipe"]
    return (
        "Non-transformer baseline: spaCy CNN NER from scratch "
        f"(`{recipe['config']}`; best devel epoch {spacy['best_epoch']} of "
        f"{len(spacy['epochs'])} run, cap {recipe['max_epochs']}, patience "
        f"{recipe['patience_epochs']})"
    )


def spacy_stop(spacy: dict[str, Any]) -> str:
    """Why the spaCy baseline stopped training: patience ran out, or the epoch cap came first."""
    recipe, run = spacy["recipe"], len(spacy["epochs"])
    since_best = run - spacy["best_epoch"]
    if since_best >= recipe["patience_epochs"]:
        return f"Training stopped by patience: {since_best} epochs without a better devel F1."
    return (
        f"Training stopped at the epoch cap ({recipe['max_epochs']}), {since_best} epochs after "
        f"the best, before patience ({recipe['patience_epochs']}) ran out, so a longer run "
        "could still find a better devel epoch."
    )


def spacy_missing(what: str) -> str:
    return f"{what}: _not measured yet: run `python -m benchmarks.run_all --steps spacy`_"


def epoch_seconds(result: dict[str, Any]) -> list[float]:
    return result.get("epoch_seconds") or [e["seconds"] for e in result.get("epochs", [])]


def mean_epoch_seconds(result: dict[str, Any]) -> float:
    return statistics.mean(epoch_seconds(result))


def accuracy_section(results: Results) -> str:
    peer, parity, default = results["peer"], results["parity"], results["default"]
    lines = ["## Accuracy: strict entity-level F1 on test\n"]
    if not (peer and parity):
        return lines[0] + MISSING.format(step="peer,parity")
    parity_scores = parity_test(parity)
    spacy = results.get("spacy")
    rows = [
        ("Peer: HF transformers + PyTorch, MiniLM, its recipe", peer["test"], peer["command"]),
    ]
    peer_our_recipe = results.get("peer_our_recipe")
    if peer_our_recipe:
        rows.append(
            (
                "Peer with our default recipe's learning rate, epochs and warm-up (its own "
                "windows and arg-max decoding; best devel epoch kept)",
                peer_our_recipe["test"],
                peer_our_recipe["command"],
            )
        )
    if spacy:
        rows.append((spacy_name(spacy), spacy["test"], spacy["command"]))
    rows += [
        (
            "Ours, the peer's exact recipe (arg-max; a stray `I-` starts nothing, as strict "
            "IOB2 scores the peer)",
            parity_scores,
            parity["command"],
        ),
    ]
    if default:
        rows.append(
            (
                "**Ours, shipped default model, served as `Tagger.load` serves it**",
                default["test"]["viterbi"],
                f"{TRAINED_BY}, version {default['version']}",
            )
        )
    lines.append("| system | precision | recall | F1 | gold | predicted | command |")
    lines.append("|---|---|---|---|---|---|---|")
    for name, scores, command in rows:
        lines.append(
            f"| {name} | {fmt(scores['precision'])} | {fmt(scores['recall'])} | "
            f"{fmt(scores['f1'])} | {scores['n_gold']} | {scores['n_pred']} | `{command}` |"
        )
    if spacy:
        curve = ", ".join(fmt(epoch["dev"]["f1"]) for epoch in spacy["epochs"])
        lines.append(
            f"\nspaCy baseline: devel F1 by epoch {curve} (strict, the epoch kept is the best "
            f"of these; test is tagged once, at the end). It emits "
            f"{spacy['test'].get('n_invalid_i', 'n/a')} `I-` tags after `O` on test. Measured "
            f"{spacy['measured']} by `python -m benchmarks.run_all --steps spacy "
            f"--spacy-max-epochs {spacy['recipe']['max_epochs']}` "
            f"({spacy['wall_seconds']:.0f} s wall), which runs the command in the table. "
            + spacy_stop(spacy)
        )
    else:
        lines.append("\n" + spacy_missing("spaCy CNN baseline"))
    gap = parity_scores["f1"] - peer["test"]["f1"]
    lines.append(
        f"\nParity (ours with the peer's recipe − peer): **{gap:+.2f} F1** "
        f"(goal: within ±1.0). The peer emits {peer['test'].get('n_invalid_i', 'n/a')} "
        "`I-` tags after `O` on test; strict IOB2 scoring ignores them, so our side of the "
        "comparison drops its own (`--decoder argmax-drop`). Repairing them to `B-` instead "
        f"(`argmax`) gives {fmt(parity['test']['argmax']['f1'])}: each repaired stray tag "
        "becomes a predicted entity, mostly a wrong one.\n"
    )
    if peer_our_recipe and default:
        recipe_gain = peer_our_recipe["test"]["f1"] - peer["test"]["f1"]
        rest = default["test"]["viterbi"]["f1"] - peer_our_recipe["test"]["f1"]
        lines.append(
            f"What the lead is made of: the peer with our learning rate, epochs and warm-up "
            f"− the peer with its own: **{recipe_gain:+.2f} F1**; our shipped model − the "
            f"peer with our recipe (what our windows, decoding and serving add): "
            f"**{rest:+.2f} F1**.\n"
        )
    return "\n".join(lines) + "\n"


def parity_test(parity: dict[str, Any]) -> dict[str, Any]:
    """Our peer-recipe scores decoded as the peer's are scored (older runs lack the decoder)."""
    return parity["test"].get("argmax-drop") or parity["test"]["argmax"]


def describe_recipe(training: dict[str, Any]) -> str:
    windows = training["windows"]
    context = (
        f"{windows['context_tokens']} context tokens"
        + (" across sentences" if windows["cross_sentence"] else " within the sentence")
        if windows["context_tokens"]
        else "no context"
    )
    if windows.get("packed"):
        described = (
            f"lr {training['learning_rate']:g}, up to {training['epochs']} epochs, batch "
            f"{training['batch_size']}, packed windows of {windows['max_tokens']} tokens, "
            f"{windows['context_tokens'] // 2} context tokens each side"
        )
    else:
        described = (
            f"lr {training['learning_rate']:g}, up to {training['epochs']} epochs, batch "
            f"{training['batch_size']}, chunks of ≤{windows['max_words']} words, {context}"
        )
    auxiliary = training.get("auxiliary")
    if auxiliary:
        described += (
            f", {auxiliary['entity_type']} labels through a second head (loss weight "
            f"{auxiliary['weight']:g})"
        )
    return described + describe_averaging(training)


def describe_averaging(training: dict[str, Any]) -> str:
    """What weight averaging did in a run, or nothing when it was off.

    >>> history = [{"dev": {"f1": 70.0}}, {"dev": {"f1": 72.5}}, {"dev": {"f1": 72.0}}]
    >>> averaged = {"epochs": [2, 3], "dev": {"f1": 73.1}, "kept": True}
    >>> describe_averaging({"history": history, "best_epoch": 2, "averaged": averaged})
    '; the mean of epochs 2-3 (devel 73.10) beat the best epoch (72.50): kept'
    """
    averaged = training.get("averaged")
    if not averaged:
        return ""
    history, best = training.get("history") or [], training.get("best_epoch")
    best_f1 = history[best - 1]["dev"]["f1"] if best and len(history) >= best else None
    epochs = averaged["epochs"]
    verdict = "beat" if averaged["kept"] else "did not beat"
    return (
        f"; the mean of epochs {epochs[0]}-{epochs[-1]} (devel {fmt(averaged['dev']['f1'])}) "
        f"{verdict} the best epoch ({fmt(best_f1)}): {'kept' if averaged['kept'] else 'not kept'}"
    )


def devel_scores(result: dict[str, Any]) -> dict[str, Any] | None:
    """A recipe run's devel scores at its kept (best-devel) epoch."""
    if result.get("dev"):
        return dict(result["dev"])
    training = result.get("training") or {}
    history, best = training.get("history") or [], training.get("best_epoch")
    if best and len(history) >= best:
        return dict(history[best - 1]["dev"])
    return None


def ablation_section(results: Results) -> str:
    lines = [
        "## Ablation: what the default recipe is made of (ranked by devel F1, strict)\n",
        "Ranked by strict devel F1 at each run's kept epoch (chosen on devel); test F1 is "
        "computed once per row and picks nothing. Test is read the same way for every "
        "model: Keras, float32, one window per sentence chunk.\n",
        "| recipe | devel P | devel R | devel F1 | devel gold / predicted | best epoch "
        "| test F1, argmax | test F1, Viterbi | test P / R, Viterbi | test gold / predicted "
        "| command |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [
        ("the peer's recipe", results["parity"]),
        ("the peer's recipe, sentences cut into chunks", results["chunked"]),
        ("default recipe without context (`--recipe no-context`)", results["nocontext"]),
        ("default recipe on packed windows", results.get("packed")),
        (
            "default recipe on packed windows with the chemical labels as a second head "
            "(`--aux-labels`)",
            results.get("multitask"),
        ),
        (
            "default recipe on packed windows from MiniLM adapted on the shared unlabeled "
            "corpus (`training.adapt`)",
            results.get("adapted"),
        ),
        ("**default recipe** (shipped)", results["default"]),
    ]
    measured = [(name, result, devel_scores(result)) for name, result in rows if result]
    measured.sort(key=lambda row: -((row[2] or {}).get("f1") or 0.0))
    for name, result, dev in measured:
        dev = dev or {}
        best = result.get("best_epoch") or result.get("training", {}).get("best_epoch")
        command = result.get("command") or TRAINED_BY
        scores = result.get("test_exact") or result["test"]
        viterbi = scores["viterbi"]
        lines.append(
            f"| {name}: {describe_recipe(result['training'])} | {fmt(dev.get('precision'))} | "
            f"{fmt(dev.get('recall'))} | {fmt(dev.get('f1'))} | "
            f"{dev.get('n_gold', 'n/a')} / {dev.get('n_pred', 'n/a')} | {best} | "
            f"{fmt(scores['argmax']['f1'])} | {fmt(scores['viterbi']['f1'])} | "
            f"{fmt(viterbi.get('precision'))} / {fmt(viterbi.get('recall'))} | "
            f"{viterbi.get('n_gold', 'n/a')} / {viterbi.get('n_pred', 'n/a')} | `{command}` |"
        )
    for name, result in rows:
        if not result:
            lines.append(f"| {name} | not measured | | | | | | | | | |")
    refit = results.get("refit")
    if refit:
        lines.append(refit_row(refit))
    variants = results["variants"]
    if variants:
        lines.append(
            "\nThe default model with its context switched off at prediction time only: "
            f"{fmt(variants['test_without_context_at_prediction']['f1'])} test F1 (Viterbi)."
        )
    adaptation = (results.get("adapted") or {}).get("adaptation")
    if adaptation:
        lines.append("\n" + describe_adaptation(adaptation))
    return "\n".join(lines) + "\n\n"


def refit_row(refit: dict[str, Any]) -> str:
    """The ablation's last row: the default recipe refit on train+devel, unranked (devel
    is in its training data), its epoch count the one the default's devel run chose.

    >>> scores = {"f1": 80.1, "precision": 79.0, "recall": 81.2, "n_gold": 4424, "n_pred": 4550}
    >>> row = refit_row({"command": "python -m training.train ...", "train_sentences": 9141,
    ...     "epochs_chosen_by": {"model_version": "v1", "best_epoch": 7},
    ...     "test": {"argmax": {**scores, "f1": 79.5}, "viterbi": scores}})
    >>> row.split(" | ")[1:4], row.split(" | ")[6:8]
    (['trained on', 'trained on', 'trained on'], ['79.50', '80.10'])
    """
    chosen = refit["epochs_chosen_by"]
    viterbi = refit["test"]["viterbi"]
    return (
        f"| default recipe refit on train+devel ({refit['train_sentences']:,} sentences) for "
        f"{chosen['best_epoch']} epochs, the count the default model's devel-selected run "
        f"(version `{chosen['model_version']}`) chose; not ranked, devel is in its training "
        f"data | trained on | trained on | trained on | n/a | {chosen['best_epoch']} (given) | "
        f"{fmt(refit['test']['argmax']['f1'])} | {fmt(viterbi['f1'])} | "
        f"{fmt(viterbi['precision'])} / {fmt(viterbi['recall'])} | "
        f"{viterbi['n_gold']} / {viterbi['n_pred']} | `{refit['command']}` |"
    )


def describe_adaptation(adaptation: dict[str, Any]) -> str:
    """How the adapted encoder of the ablation was made.

    >>> print(describe_adaptation({"command": "python -m training.adapt ...", "steps": 650,
    ...     "epochs": 0.5, "sentences": 134833, "final_mlm_loss": 1.9, "seconds": 3000.0}))
    ... # doctest: +ELLIPSIS
    The adapted encoder: 650 masked-LM steps (0.50 passes over 134,833 sentences), final ...
    """
    return (
        f"The adapted encoder: {adaptation['steps']} masked-LM steps "
        f"({fmt(adaptation['epochs'])} passes over {adaptation['sentences']:,} sentences), "
        f"final loss {fmt(adaptation['final_mlm_loss'], 3)}, "
        f"{fmt(adaptation['seconds'], 0)} s: `{adaptation['command']}`."
    )


def raw_text_section(results: Results) -> str:
    default = results["default"]
    title = "## Raw-text path: detokenised test, tagged through `Tagger.tag`, mapped back\n\n"
    if not default:
        return title + MISSING.format(step="default")
    token, raw = default["test"]["viterbi"], default["raw_text"]
    return title + (
        "| path | precision | recall | F1 |\n|---|---|---|---|\n"
        f"| token path (`Tagger.tag_words` on the gold words) | {fmt(token['precision'])} | "
        f"{fmt(token['recall'])} | {fmt(token['f1'])} |\n"
        f"| raw text (spaCy sentences and words, passages of {raw['passage_sentences']} "
        f"sentences) | {fmt(raw['precision'])} | {fmt(raw['recall'])} | {fmt(raw['f1'])} |\n\n"
        "\n"
        f"Raw text − token path: **{raw['f1'] - token['f1']:+.2f} F1** "
        "(goal: no more than 1.0 below).\n\n"
    )


def memory_sentence(results: Results) -> str:
    memory = results.get("memory")
    if not memory:
        return "Memory: not measured yet (`python -m benchmarks.run_all --steps memory`). "
    keras = memory.get("ours_keras_mb")
    return (
        "Peak resident memory (VmHWM) of a fresh process that loaded the default model and "
        f"tagged one line: ours {fmt(memory['ours_mb'], 0)} MB served as by default (ONNX "
        "Runtime, no TensorFlow imported)"
        + (f", {fmt(keras, 0)} MB on the Keras runtime (TensorFlow)" if keras else "")
        + f"; peer {fmt(memory['peer_mb'], 0)} MB (`--steps memory`). "
    )


def describe_serving(ours: dict[str, Any]) -> str:
    runtime = {"onnx": "ONNX Runtime", "keras": "Keras (TensorFlow)"}.get(
        ours.get("runtime", "keras"), ours.get("runtime", "keras")
    )
    packed = ours.get("packed_context")
    reading = (
        f"packed windows, {packed} context pieces each side"
        if packed
        else "one window per sentence chunk, as in training"
    )
    return f"{runtime}, {ours['precision']}, {reading}"


PEER_CONFIG_NAMES = {
    "torch-fp32": "torch fp32 (eager)",
    "torch-int8": "torch dynamic int8 (`quantize_dynamic` on the Linear layers)",
    "ort-fp32-fused": "ONNX Runtime fp32, BERT fusions (`onnxruntime.transformers.optimizer`)",
    "ort-int8-fused": "ONNX Runtime int8, fusions + `quantize_dynamic` (the Optimum path)",
}


def describe_packing(ours: dict[str, Any]) -> str:
    packed = ours.get("packed_context")
    if packed is None:
        return "one window per sentence chunk, as in training"
    if packed == 0:
        return "packed windows, no context pieces (sentences side by side)"
    return f"packed windows, {packed} context pieces each side"


def serving_section(results: Results) -> str:
    serving = results.get("serving")
    title = "## Serving against the peer at its best (whole test set, threads pinned)\n\n"
    if not serving:
        return title + MISSING.format(step="serving")
    peer = serving["peer"]
    configs = peer["configs"]
    fastest_name = max(configs, key=lambda name: configs[name]["words_per_s_best"])
    fastest = configs[fastest_name]
    lines = [
        "| ours, as served | devel F1 | test F1 | test P / R | predicted / gold | tokens read "
        "| words/s | ÷ fastest peer | latency, 250-word abstract (median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for ours in serving["ours"]:
        name = f"{ours['precision']}, {describe_packing(ours)}"
        name = f"**{name} (the default)**" if ours["name"] == "default" else name
        test = ours["test"]
        lines.append(
            f"| {name} | {fmt(ours['dev']['f1'])} | {fmt(test['f1'])} | "
            f"{fmt(test['precision'])} / {fmt(test['recall'])} | {test['n_pred']} / "
            f"{test['n_gold']} | {ours['tokens_read']} | {fmt(ours['words_per_s'], 0)} | "
            f"**{ours['words_per_s'] / fastest['words_per_s_best']:.2f}** | "
            f"{fmt(ours['latency_ms_250_words_median'], 1)} ms |"
        )
    batch_sizes = peer["sweep"]["batch_sizes"]
    peer_lines = [
        "| peer configuration | "
        + " | ".join(f"batch {size}" for size in batch_sizes)
        + " | best words/s (batch) | latency at its best batch | test F1 |",
        "|---|" + "---|" * (len(batch_sizes) + 3),
    ]
    for name, config in configs.items():
        by_size = config["words_per_s_by_batch_size"]
        f1 = config.get("f1")
        peer_lines.append(
            f"| {PEER_CONFIG_NAMES.get(name, name)} | "
            + " | ".join(fmt(by_size[str(size)], 0) for size in batch_sizes)
            + f" | **{fmt(config['words_per_s_best'], 0)}** ({config['best_batch_size']}) | "
            f"{fmt(config['latency_ms_median'], 1)} ms | "
            f"{fmt(f1) if f1 is not None else 'n/a'} |"
        )
    default = next(row for row in serving["ours"] if row["name"] == "default")
    threads = peer["threads"]
    first = serving["ours"][0]
    cpu = peer["cpu"]
    int8_flags = [flag for flag in ("avx512_vnni", "avx_vnni", "amx_int8") if cpu.get(flag)]
    ratio = default["words_per_s"] / fastest["words_per_s_best"]
    int8_rows = [row for row in serving["ours"] if row["precision"] == "int8"]
    best_int8 = max(int8_rows, key=lambda row: row["dev"]["f1"] or 0.0)
    peer_f1 = (
        "; the peer's F1 is its trained model's"
        if peer.get("head") == "trained"
        else f"; the peer's head is untrained ({peer.get('f1_note')}), so its rows have no F1"
    )
    return (
        title
        + "\n".join(lines)
        + "\n\n"
        + "\n".join(peer_lines)
        + "\n\n"
        + (
            f"Ours ÷ the fastest peer configuration ({PEER_CONFIG_NAMES.get(fastest_name)}, "
            f"batch {fastest['best_batch_size']}): **{ratio:.2f}** "
            f"in words/s (goal ≥ 1.3); median latency on a {first['latency_text_words']}-word "
            f"abstract {fmt(default['latency_ms_250_words_median'], 1)} ms against the fastest "
            f"peer's {fmt(fastest['latency_ms_median'], 1)} ms (goal: below it). "
            f"Both sides ran on {serving['threads']} pinned cores (the process's CPU affinity; "
            f"ours runs {first['threads']} windows side by side, one core each; the peer's "
            f"torch intra-op {threads['torch_intra_op']} and ONNX Runtime intra-op "
            f"{threads['ort_intra_op']} threads). The CPU has "
            + (
                ", ".join(int8_flags)
                if int8_flags
                else "no VNNI or AMX int8 instructions (AVX2 only)"
            )
            + f". Ours reads the test set as {first['documents']} documents of "
            f"{first['document_sentences']} sentences (context never crosses them), "
            "tokenisation to labels timed after a warm-up pass; the peer's rows are "
            "tokenisation to labels on length-sorted batches of sentences. "
            f"Our model here is `{serving['model']}` (its devel F1 "
            f"{fmt(serving['model_dev']['f1'])} when trained)"
            + peer_f1
            + ". Serving choices are read by devel F1; test F1 is computed once per row: "
            f"the highest devel F1 among the int8 rows is {best_int8['name']}'s "
            f"({fmt(best_int8['dev']['f1'])}), the default's {fmt(default['dev']['f1'])}. "
            f"{memory_sentence(results)}Command: `{serving['command']}`, which runs "
            f"`{serving['peer_command']}` right after.\n\n"
        )
    )


def training_time_section(results: Results) -> str:
    peer, parity, default = results["peer"], results["parity"], results["default"]
    title = "## Training time per epoch (train split, 2 threads)\n\n"
    if not (peer and parity):
        return title + MISSING.format(step="peer,parity")
    peer_epoch = mean_epoch_seconds(peer)
    lines = [
        "| run | mean seconds / epoch | ours / peer |",
        "|---|---|---|",
        f"| peer (HF + PyTorch) | {peer_epoch:.0f} | 1.00 |",
        f"| ours, peer recipe (no context) | {mean_epoch_seconds(parity):.0f} | "
        f"**{mean_epoch_seconds(parity) / peer_epoch:.2f}** |",
    ]
    spacy = results.get("spacy")
    if spacy:
        spacy_epoch = mean_epoch_seconds(spacy)
        lines.append(
            f"| spaCy CNN baseline (from scratch; its own run; ratio: spaCy / peer) | "
            f"{spacy_epoch:.0f} | "
            f"{spacy_epoch / peer_epoch:.2f} |"
        )
    if default and default["training"].get("history"):
        default_epoch = statistics.mean(e["seconds"] for e in default["training"]["history"])
        lines.append(
            f"| ours, default recipe (with context; trained separately, see model.json) "
            f"| {default_epoch:.0f} | {default_epoch / peer_epoch:.2f} |"
        )
    peer_epochs = ", ".join(f"{seconds:.0f}" for seconds in epoch_seconds(peer))
    our_epochs = ", ".join(f"{seconds:.0f}" for seconds in epoch_seconds(parity))
    return (
        title
        + "\n".join(lines)
        + "\n\nGoal: ours / peer ≤ 1.0 for the same recipe. Epoch times exclude the dev "
        f"evaluation. Per epoch: peer {peer_epochs} s (measured {peer['measured']}), ours "
        f"{our_epochs} s (measured {parity['measured']}). Only runs close in time on a quiet "
        "machine compare; the default recipe's epochs come from its own training run."
        + epoch_time_rows(results)
        + "\n\n"
    )


def epoch_time_rows(results: Results) -> str:
    """Each recipe's epoch against a peer epoch measured right after it."""
    measured = results.get("epoch_time")
    if not measured:
        return "\n\n" + MISSING.format(step="epoch_time").strip()
    tables = [epoch_time_table("epoch_time", measured, "default recipe")]
    packed = results.get("epoch_time_packed")
    tables.append(
        epoch_time_table("epoch_time_packed", packed, "default recipe on packed windows")
        if packed
        else MISSING.format(step="epoch_time_packed").strip()
    )
    return (
        "\n\n"
        + "\n\n".join(tables)
        + "\n\nGoal: ≤ 1.0 for the default recipe. Both exclude the dev evaluation; each "
        "includes its first step's set-up (ours: tracing the train step)."
    )


def epoch_time_table(step: str, measured: dict[str, Any], name: str) -> str:
    ours = statistics.mean(measured["ours"]["epoch_seconds"])
    peer = statistics.mean(measured["peer"]["epoch_seconds"])
    return (
        f"Back to back, minutes apart (`--steps {step}`, measured {measured['measured']}):\n\n"
        "| run | seconds / epoch | ours / peer | command |\n|---|---|---|---|\n"
        f"| ours, {name} ({describe_recipe(measured['ours']['recipe'])}), one epoch "
        f"| {ours:.0f} | **{ours / peer:.2f}** | `{measured['ours']['command']}` |\n"
        f"| peer (HF + PyTorch), one epoch right after | {peer:.0f} | 1.00 | "
        f"`{measured['peer']['command']}` |"
    )


def retrain_section(results: Results) -> str:
    retrain = results.get("retrain")
    title = "## Re-fine-tuning on a curator's corrections (issue 4's loop)\n\n"
    if not retrain:
        return title + MISSING.format(step="retrain")
    lines = [
        f"{retrain['corrections']} devel sentences where the default model errs get their gold "
        "labels saved through the corrections store; one retrain runs through the worker "
        f"(`{retrain['command']}`, {retrain['retrain_wall_seconds']:.0f} s wall). Job: "
        f"{retrain['job']['status']}; in service afterwards: `{retrain['serving_after']}`.\n",
        "| sentences | F1 before | F1 after | change |",
        "|---|---|---|---|",
    ]
    for name in ("corrected_200", "rest_of_devel", "test"):
        before, after = retrain["before"][name]["f1"], retrain["after"][name]["f1"]
        change = "n/a" if before is None or after is None else f"{after - before:+.2f}"
        lines.append(f"| {name.replace('_', ' ')} | {fmt(before)} | {fmt(after)} | {change} |")
    if "training.worker" in retrain["command"]:
        lines.append(
            "\nMeasured before the worker moved to `python -m worker` (the one-house layout: "
            "curation state in `curation/`, one database). The job's training path moved "
            "unchanged; what changed is where its state lives and that promotion now fails "
            "the job rather than compare with a dev F1 measured elsewhere, which did not "
            "happen in this run. Re-run it with `python -m benchmarks.run_all --steps retrain`."
        )
    return title + "\n".join(lines) + "\n\n"


def load_section(results: Results) -> str:
    load = results.get("load")
    title = "## Concurrent sessions while a retrain runs (load test)\n\n"
    if not load:
        return title + MISSING.format(step="load")
    tag, save = load["tag_latency_ms"], load["save_latency_ms"]
    jobs = load["retrain_jobs"]
    lines = [
        f"`{load['command']}`: {load['sessions']} Chromium pages (Playwright) on the app's "
        "Streamlit server on 127.0.0.1 (the fake tagger, so this measures the app and the "
        "store, not the model), each tagging a unique sentence, opening it in Correct (the "
        f"span editor) and saving it with `S`, in a loop for {load['elapsed_s']:.0f} s, "
        "while a real worker process "
        "retrained the tiny model on one job after another (every new version promoted, "
        "verified and hot-swapped by the app). Afterwards every session's saves are "
        "counted against the database's rows of its annotator.\n",
        "| sessions | tags | saves | rows in the database | lost | duplicated | errors shown |",
        "|---|---|---|---|---|---|---|",
        f"| {load['sessions']} | {load['tags']} | {load['saves']} | "
        f"{load['corrections_in_database']} | {load['lost']} | {load['duplicated']} | "
        f"{load['errors']} |",
        "",
        "| latency (click to result on screen) | p50 | p95 |",
        "|---|---|---|",
        f"| Tag | {fmt(tag['p50'], 0)} ms | {fmt(tag['p95'], 0)} ms |",
        f"| Save correction | {fmt(save['p50'], 0)} ms | {fmt(save['p95'], 0)} ms |",
        "",
        f"Retrain jobs meanwhile: {jobs['queued']} queued, {jobs['succeeded']} succeeded, "
        f"{jobs['failed']} failed ({jobs['failed_only_by_the_final_stop']} of them only "
        f"because the worker was stopped when the test ended); "
        f"{load['versions_registered']} versions registered. Run at nice "
        f"{load.get('niceness', 0)} on {load.get('machine', 'this machine')}: the browsers, "
        "the server and the worker share its cores (with other jobs), so the latencies are "
        "those of an overloaded machine, not of a served page.",
    ]
    return title + "\n".join(lines) + "\n\n"


def actions_section(results: Results) -> str:
    actions = results.get("actions")
    title = "## Actions per correction: the span editor against the old Correct page\n\n"
    if not actions:
        return title + MISSING.format(step="actions")
    mouse, keys = actions["editor_mouse"], actions["editor_keyboard"]
    legacy = actions["legacy_correct_page"]
    verified = actions.get("verified_in_browser") or {}

    def replayed(kind: str) -> str:
        done = verified.get(kind)
        return f"{done['matched']} of {done['replayed']}" if done else "not replayed"

    lines = [
        f"`{actions['command']}`: every one of the {actions['sentences_measured']:,} devel "
        f"sentences (of {actions['devel_sentences']:,}) where model `{actions['model']}` "
        "errs; the fewest actions (keys or clicks) that turn its labels into the gold ones, "
        "counting those that bring the curator to the sentence and on to the next one "
        "(`S`, save-and-next, in the editor; pick, Load and Save on the old page). Each plan "
        "is executed with the UI's own edit operations and must end at the gold labels; "
        "editor plans replayed in the real editor in Chromium: keyboard "
        f"{replayed('keyboard')}, mouse {replayed('mouse')} matched label for label and "
        "action for action. The model is the queue benchmark's base model (half of train, "
        "3 epochs), the one that was available in this session, not the shipped default.\n",
        "| UI | mean | median | ÷ old Correct page (mean) |",
        "|---|---|---|---|",
        f"| **span editor, mouse and keys** | {fmt(mouse['mean'])} | {fmt(mouse['median'], 0)} "
        f"| **{fmt(mouse['mean'] / legacy['mean'])}** |",
        f"| span editor, keyboard only | {fmt(keys['mean'])} | {fmt(keys['median'], 0)} | "
        f"{fmt(keys['mean'] / legacy['mean'])} |",
        f"| old Correct page (buttons, range slider, token table) | {fmt(legacy['mean'])} | "
        f"{fmt(legacy['median'], 0)} | 1.00 |",
        "",
        "Goal: at most half of the old page's actions (÷ ≤ 0.50). Keyboard-only plans walk a "
        "word cursor, so their cost grows with the distance to the error; with the mouse "
        "every span edit is one action.",
    ]
    return title + "\n".join(lines) + "\n\n"


def queue_section(results: Results) -> str:
    queue = results.get("queue")
    title = "## Is the review queue worth it? (strict F1 on test)\n\n"
    if not queue:
        return title + MISSING.format(step="queue")
    arms = queue["arms"]
    base = queue["base"]["test"]
    none = arms.get("none", {}).get("test")
    lines = [
        f"`{queue['command']}`: a base model trained on the first half of train "
        f"({queue['train_sentences']:,} sentences; `{queue['base_command']}`), the other "
        f"half ({queue['pool_sentences']:,} sentences) imported as a collection, one "
        "sentence per item, and tagged by the worker's collection tagger. A simulated "
        "curator corrects items to their gold labels, chosen by the review queue "
        "(expected word errors, diversity rule) or at random (seed 13), or none; each arm "
        "then retrains through the worker (`python -m worker --once`, the one-click retrain "
        "from the model in service, one epoch) in its own database and registry.\n",
        "| arm | corrected sentences | their gold mentions | P | R | test F1 | "
        "F1 − none | per 100 corrected | devel F1 | retrain s |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| base model (before any retrain) | | | {fmt(base['precision'])} | "
        f"{fmt(base['recall'])} | {fmt(base['f1'])} | | | {fmt(queue['base']['dev']['f1'])} | |",
    ]
    for name in ("none", "random", "queue"):
        arm = arms.get(name)
        if arm is None:
            continue
        test = arm["test"]
        gain = test["f1"] - none["f1"] if none else None
        per_100 = gain * 100 / arm["corrected"] if gain is not None and arm["corrected"] else None
        lines.append(
            f"| {name} | {arm['corrected']} | {arm['corrected_gold_mentions']} | "
            f"{fmt(test['precision'])} | {fmt(test['recall'])} | {fmt(test['f1'])} | "
            f"{fmt(gain) if name != 'none' else ''} | {fmt(per_100) if per_100 else ''} | "
            f"{fmt(arm['dev']['f1'])} | {fmt(arm['retrain_seconds'], 0)} |"
        )
    gains = {
        name: arms[name]["test"]["f1"] - none["f1"]
        for name in ("random", "queue")
        if name in arms and none
    }
    ratio = ""
    if len(gains) == 2 and gains["random"] > 0:
        times = fmt(gains["queue"] / gains["random"])
        ratio = f" Measured: the queue's gain over none is {times}× random's."
    lines += [
        "",
        "Goal: queue order gains clearly more than random per corrected sentence."
        + ratio
        + " One run, one seed: differences of a few tenths of a point are within what "
        "another seed could move, so this supports the queue but does not prove it. Retrain "
        "seconds are wall-clock on a shared machine and vary with its load.",
    ]
    return title + "\n".join(lines) + "\n\n"


def quick_retrain_section(results: Results) -> str:
    quick, full = results.get("quick_retrain"), results.get("queue")
    title = "## Retrain in minutes: Quick (corrections + replayed sample) against Full\n\n"
    if not quick:
        return title + MISSING.format(step="quick_retrain")
    lines = [
        "| retrain | arm | corrections | trained on (sentences) | test P / R | test F1 | "
        "F1 − its control | devel F1 | retrain s (whole worker run) | seconds by phase |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    runs = [("Quick", quick)] + ([("Full", full)] if full else [])
    gains: dict[str, float] = {}
    for label, run in runs:
        arms = run["arms"]
        control = arms.get("none", {}).get("test", {}).get("f1")
        for name in ("none", "queue"):
            arm = arms.get(name)
            if arm is None:
                continue
            test = arm["test"]
            gain = test["f1"] - control if control is not None and name != "none" else None
            if gain is not None:
                gains[label] = gain
            phases = arm.get("phase_seconds") or {}
            shown = ", ".join(f"{phase} {fmt(sec, 0)}" for phase, sec in phases.items())
            lines.append(
                f"| {label} | {'queue-chosen' if name == 'queue' else 'none (control)'} | "
                f"{arm['corrected']} | {arm.get('train_sentences', 'all')} | "
                f"{fmt(test['precision'])} / {fmt(test['recall'])} | {fmt(test['f1'])} | "
                f"{fmt(gain) if gain is not None else ''} | {fmt(arm['dev']['f1'])} | "
                f"{fmt(arm['retrain_seconds'], 0)} | {shown or 'not recorded'} |"
            )
    quick_queue = quick["arms"].get("queue")
    verdict = ""
    if quick_queue:
        phases = quick_queue.get("phase_seconds") or {}
        scored = " and ".join(
            split for split, phase in (("devel", "dev_eval"), ("test", "test_eval"))
            if phase in phases
        )  # fmt: skip
        scoring = phases.get("dev_eval", 0.0) + phases.get("test_eval", 0.0)
        verdict = (
            f" Measured: Quick took {fmt(quick_queue['retrain_seconds'], 0)} s for "
            f"{quick_queue['corrected']} corrections (goal < 300 s; {fmt(scoring, 0)} s of "
            f"it scoring {scored or 'nothing'})"
        )
        verdict += quick_against_full(quick, full)
    credit = (
        " The corrections' own share (queue arm − its control): "
        + ", ".join(f"{label} {fmt(gain)}" for label, gain in gains.items())
        + "."
        if gains
        else ""
    )
    return (
        title
        + "\n".join(lines)
        + "\n\nThe queue benchmark's base model, pool and 200 queue-chosen corrections "
        "(section below); each arm retrains through the worker (`python -m worker --once`) "
        "in its own database and registry and is scored on test once. Quick: one epoch at "
        "the replay learning rate over the corrections plus base sentences replayed in "
        "runs of 8; its control replays the same base sample with no correction. Full: "
        f"the queue step's arms ({full['measured'] if full else 'not measured'}), one epoch "
        "over the whole half split plus the corrections; their scoring ran on Keras then, "
        "on ONNX Runtime float32 now, which changes labels only by float rounding."
        + verdict
        + credit
        + f" One seed. Command: `{quick['command']}`.\n\n"
    )


def quick_against_full(quick: dict[str, Any], full: dict[str, Any] | None) -> str:
    """Quick's test F1 minus Full's, only where both retrained the same base model.

    >>> base = {"base": {"test": {"f1": 70.0}}}
    >>> quick = {**base, "arms": {"queue": {"test": {"f1": 71.0}}}}
    >>> print(quick_against_full(quick, {**base, "arms": {"queue": {"test": {"f1": 70.5}}}}))
     and its test F1 minus Full's is +0.50 (goal ≥ −0.30).
    >>> other = {"base": {"test": {"f1": 68.0}}, "arms": {"queue": {"test": {"f1": 70.5}}}}
    >>> print(quick_against_full(quick, other))  # doctest: +ELLIPSIS
    ; Quick against Full is not measured: the Full arms retrained another base model ...
    """
    if not full or "queue" not in full["arms"]:
        return "; Quick against Full is not measured (run `--steps queue`)."
    quick_base = quick.get("base", {}).get("test", {}).get("f1")
    full_base = full.get("base", {}).get("test", {}).get("f1")
    if quick_base != full_base:
        return (
            "; Quick against Full is not measured: the Full arms retrained another base "
            f"model (its test F1 {fmt(full_base)}, this run's {fmt(quick_base)}: the base "
            "was trained again since), so run `--steps queue` to compare them on one base."
        )
    difference = quick["arms"]["queue"]["test"]["f1"] - full["arms"]["queue"]["test"]["f1"]
    return f" and its test F1 minus Full's is {difference:+.2f} (goal ≥ −0.30)."


APP_PATH_NAMES = {
    "library": "library: `Tagger.tag_words` over test",
    "inspect": "Inspect page's code (parse, tag, compare with the file's labels)",
    "inspect_live": "Inspect page live: Streamlit server + Chromium, file in to scores shown",
    "tag_page": "Tag page's code, one 250-word abstract (median of 20)",
    "tag_page_pasted": "Tag page's code, abstracts pasted as one text",
    "collections": "worker's collection tagging, 10-sentence documents, database included",
    "library_end": "library again, after every other path (the machine's drift)",
}


def app_paths_section(results: Results) -> str:
    measured = results.get("app_paths")
    title = "## What a curator waits for: the app's paths against the library's\n\n"
    if not measured:
        return title + MISSING.format(step="app_paths")
    lines = ["| path | words/s | ÷ library, same run |", "|---|---|---|"]
    for name, path in measured["paths"].items():
        lines.append(
            f"| {APP_PATH_NAMES.get(name, name)} | {fmt(path['words_per_s'], 0)} | "
            f"{path['ratio']:.2f} |"
        )
    return (
        title
        + "\n".join(lines)
        + f"\n\nModel `{measured['model']}`, {measured['serving']}, {measured['threads']} "
        "threads. Goal: every path at the library's speed (÷ library ≈ 1; the drift row "
        "says how far this machine's speed moved during the run). Command: "
        f"`{measured['command']}`.\n\n"
    )


def first_highlight_section(results: Results) -> str:
    measured = results.get("first_highlight")
    title = "## From `make run` on a clean clone to the first highlighted abstract\n\n"
    if not measured:
        return title + MISSING.format(step="first_highlight")
    seconds = measured.get("seconds_since_make_start") or {}
    lines = ["| stage | seconds after `make run` started |", "|---|---|"]
    for stage, value in seconds.items():
        shown = fmt(value, 0) if value is not None else "not reached"
        lines.append(f"| {stage.replace('_', ' ')} | {shown} |")
    model = measured.get("model_that_tagged") or measured.get("first_model_in_service") or {}
    goals = measured.get("goals") or {}
    timing = goals.get("first_highlight_within_10_minutes", {})
    accuracy = goals.get("devel_f1_at_least_68", {})
    cache = measured.get("pip_cache") or {}
    return (
        title
        + "\n".join(lines)
        + f"\n\nOutcome: {measured.get('outcome')}"
        + (
            f" while waiting for {measured.get('waiting_for')} "
            f"({(measured.get('problem') or '').splitlines()[0][:160]})"
            if measured.get("outcome") != "completed"
            else ""
        )
        + ". The version that drew the highlight (else the first in service): "
        f"`{model.get('version')}`, preliminary: {model.get('preliminary')}, strict devel "
        f"F1 {fmt(model.get('devel_f1'))}, "
        + (
            f"the quick first model (`--recipe first-model`, {model.get('steps')} steps). "
            if model.get("stage") == "first-model"
            else f"taken at training step {model.get('steps')}. "
        )
        + f"Goals: first highlight within 600 s: {'met' if timing.get('met') else 'not met'}; "
        f"its devel F1 at least 68: {'met' if accuracy.get('met') else 'not met'}. pip's "
        f"download cache {'existed' if cache.get('existed') else 'was empty'} (a machine "
        "that never installed these packages downloads them first). Command: "
        f"`{measured['command']}`.\n\n"
    )


PUBMED_SENTENCES_NOTE = (
    "`$PUBMED_SENTENCES`: the shared `pubmed-unlabeled/sentences.txt`, taken from that "
    "variable, else from beside `$BC5CDR_DIR`"
)
BATCH_NAMES = {
    "local": "local (in-process, ONNX Runtime on {threads} threads)",
    "ray-1": "ray, 1 actor (1 thread)",
    "ray-2": "ray, 2 actors (1 thread each)",
}


def describe_timed_model(measured: dict[str, Any]) -> str:
    """The model a throughput row timed: version, how it was trained, its windows."""
    facts = measured.get("model_facts")
    if not facts:
        return f"model `{measured['model']}` (version `{measured['model_version']}`)"
    windows = facts["windows"]
    steps = f", at most {facts['max_steps']} batches" if facts.get("max_steps") else ""
    made = measured.get("model_command")
    return (
        f"model `{measured['model']}` (made by `{made}`; "
        if made and made != "(given)"
        else f"model `{measured['model']}` ("
    ) + (
        f"version `{facts['version']}`: {facts['epochs']} "
        f"epoch(s){steps}, windows of at most {windows['max_tokens']} tokens with "
        f"{windows['context_tokens']} context tokens, strict devel F1 {fmt(facts['devel_f1'])})"
    )


def batch_section(results: Results) -> str:
    measured = results.get("batch")
    title = "## Batch tagging: local and Ray Data on this machine\n\n"
    if not measured:
        return title + MISSING.format(step="batch")
    lines = [
        "| engine | documents/s | words/s | documents/s per core | seconds |",
        "|---|---|---|---|---|",
    ]
    for name, row in measured["configurations"].items():
        label = BATCH_NAMES.get(name, name).format(threads=row["threads_per_tagger"])
        lines.append(
            f"| {label} | {fmt(row['documents_per_s'])} | {fmt(row['words_per_s'], 0)} | "
            f"{fmt(row['documents_per_s_per_core'])} | {fmt(row['seconds'], 0)} |"
        )
    projection = measured["pubmed_projection"]
    efficiency = measured.get("ray_scaling_efficiency")
    rows = measured["configurations"]
    return (
        title
        + "\n".join(lines)
        + f"\n\n{measured['documents']:,} abstracts ({fmt(measured['mean_words_per_abstract'], 0)}"
        f" words on average, title included) built from the shared unlabeled corpus, in "
        f"{measured['files']} JSONL files, tagged into Parquet by `python -m tagger.batch`'s "
        f"code with {describe_timed_model(measured)}, batches of {measured['batch_size']}; "
        "each time is end to end, Ray's start and each actor's model load included. "
        + (
            f"Ray's scaling from 1 to 2 actors: efficiency {fmt(efficiency)} (2-actor "
            "documents/s over twice the 1-actor rate; 1.00 is perfect). "
            if efficiency is not None
            else ""
        )
        + (
            f"Ray with 2 actors ÷ local on the same 2 cores: "
            f"{fmt(rows['ray-2']['documents_per_s'] / rows['local']['documents_per_s'])} (on one "
            "machine Ray's own processes share the cores; its gain is more machines). "
            if "ray-2" in rows and "local" in rows
            else ""
        )
        + "One run per row on a shared, noisy machine: compare rows of one run only. "
        + f"All of PubMed ({projection['abstracts'] / 1e6:.0f}M abstracts of this length) at "
        f"the `{projection['from']}` rate per core: {fmt(projection['core_hours'], 0)} "
        f"core-hours ({fmt(projection['core_hours'] / 24, 0)} core-days; e.g. "
        f"{fmt(projection['core_hours'] / 64, 0)} hours on a 64-core Ray cluster at the same "
        "per-core rate). Per GPU: not measured (no GPU was lent to the session that ran "
        f"this). Run by `python -m benchmarks.run_all --steps batch`, which runs "
        f"`{measured['command']}` ({PUBMED_SENTENCES_NOTE}).\n\n"
    )


def http_section(results: Results) -> str:
    measured = results.get("http")
    title = "## The HTTP tagging service under load\n\n"
    if not measured:
        return title + MISSING.format(step="http")
    lines = [
        "| concurrent clients | requests/s | p50 ms | p95 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for level in measured["levels"]:
        lines.append(
            f"| {level['clients']} | {fmt(level['requests_per_s'])} | {fmt(level['p50_ms'], 0)} "
            f"| {fmt(level['p95_ms'], 0)} | {level['errors']} |"
        )
    return (
        title
        + "\n".join(lines)
        + f"\n\n`python -m tagger.serve` with {describe_timed_model(measured)}, "
        f"{measured['serving']}, on 127.0.0.1; each request "
        f"is `POST /tag` with one abstract ({fmt(measured['mean_words_per_request'], 0)} "
        f"words on average), clients back to back for {fmt(measured['seconds_per_level'], 0)} "
        f"s per level, on the same {measured['cores']} cores as the service. Run by `python -m "
        f"benchmarks.run_all --steps http`, which runs `{measured['command']}` "
        f"({PUBMED_SENTENCES_NOTE}).\n\n"
    )


def render_markdown(results: Results, machine: str) -> str:
    return "".join(
        [
            HEADER.format(machine=machine),
            "\n",
            accuracy_section(results),
            ablation_section(results),
            raw_text_section(results),
            first_highlight_section(results),
            serving_section(results),
            app_paths_section(results),
            training_time_section(results),
            retrain_section(results),
            quick_retrain_section(results),
            load_section(results),
            actions_section(results),
            queue_section(results),
            batch_section(results),
            http_section(results),
        ]
    )
