"""Fine-tuning recipes: :class:`TrainSettings` and the registry of named recipes.

``TrainSettings()`` *is* the default recipe, so a Python caller, ``python -m
training.train`` and the worker's first job train the same model; the other named
recipes are declared as changes to it. ``python -m training.train --help`` lists each
recipe's values (:func:`describe_recipes`).

Example:

>>> TrainSettings() == RECIPES["default"]
True
>>> RECIPES["peer"].learning_rate, RECIPES["peer"].windows.context_tokens
(5e-05, 0)
>>> RECIPES["default"].windows.context_tokens, RECIPES["no-context"].windows.context_tokens
(64, 0)
>>> quick = RECIPES["first-model"]
>>> quick.epochs, quick.windows.max_tokens, quick.windows.context_tokens
(1, 64, 0)
>>> try:
...     recipe("fast")
... except TaggerError as error:
...     print(error.fix)
use --recipe default or --recipe no-context or --recipe peer or --recipe first-model
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tagger.errors import TaggerError
from tagger.windows import WindowSettings

# Chosen by the ablation in BENCHMARKS.md (on devel): 30-word chunks framed by 64 context
# pieces taken across sentence boundaries.
DEFAULT_WINDOWS = WindowSettings(
    max_tokens=128, max_words=30, context_tokens=64, cross_sentence=True
)

# `--recipe no-context`: the same chunks alone, about half the tokens in training and in
# serving. Devel F1 78.77 (2026-11-25) and 78.04 (2026-12-02) against the default's 78.96:
# the later run is 0.92 below, more than the 0.3 the speed issue allows, so it is not the
# default.
NO_CONTEXT_WINDOWS = WindowSettings(
    max_tokens=128, max_words=30, context_tokens=0, cross_sentence=False
)


@dataclass
class TrainSettings:
    """A fine-tuning recipe; the defaults are the default recipe.

    Args:
        learning_rate: peak AdamW learning rate (after linear warm-up).
        epochs: most epochs; the best-dev epoch is kept.
        batch_size: windows per batch.
        warmup_ratio: share of all steps spent warming up.
        weight_decay: AdamW decay (not on biases and LayerNorm).
        clip_norm: global gradient-norm clip.
        dropout: dropout before the classifier.
        patience: epochs without a better dev F1 before stopping.
        seed: seeds weights, dropout and batch order.
        decoder: how labels are read from probabilities (``viterbi``, ``argmax``, ...).
        windows: how sentences are cut into windows with context.
        adam_epsilon: AdamW epsilon.
        length_pool_batches: batches are cut from pools of this many batches sorted by
            length (less padding); 1 is a plain shuffle.
        max_steps: cap on batches per epoch (the quick first model's, tests, smoke runs).
        jit_compile: compile train steps with XLA.
        average_last: after training, also score the mean of the last this many epochs'
            weights on dev, and keep it if its dev F1 beats the best epoch's; 0 or 1: off.
    """

    learning_rate: float = 1e-4
    epochs: int = 8
    batch_size: int = 32
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    dropout: float = 0.1
    patience: int = 3
    seed: int = 13
    decoder: str = "viterbi"
    windows: WindowSettings = field(default_factory=lambda: dataclasses.replace(DEFAULT_WINDOWS))
    adam_epsilon: float = 1e-6
    length_pool_batches: int = 50
    max_steps: int | None = None
    jit_compile: bool = False
    average_last: int = 0


# Twice the updates of batch 32 in the one epoch: devel F1 74.01 against 67.87-70.35 at
# batch 32, in about the same time (2026-12-02, `--recipe first-model --batch-size 16`).
FIRST_MODEL_BATCH_SIZE = 16

# The quick first model stops after this many batches (two thirds of BC5CDR-disease
# train's 377 at batch 16): the full epoch's first highlight came 684 s after `make run`
# on 2026-12-02, over the 600 s goal, at devel F1 74.09, well over the 68 goal.
FIRST_MODEL_MAX_STEPS = 250

# The quick first model's windows: sentence chunks alone, no context: 0.30 times the
# default windows' tokens on BC5CDR-disease train (165,843 against 551,792).
FIRST_MODEL_WINDOWS = WindowSettings(
    max_tokens=64, max_words=30, context_tokens=0, cross_sentence=False
)


RECIPES: dict[str, TrainSettings] = {
    "default": TrainSettings(),
    "no-context": TrainSettings(windows=NO_CONTEXT_WINDOWS),
    # The Hugging Face peer's recipe, for the parity benchmark: whole sentences (BC5CDR's
    # longest is 275 pieces), no context, plain shuffled batches, torch's AdamW epsilon,
    # arg-max decoding read as strict IOB2 reads the peer's (a stray I- starts nothing).
    "peer": TrainSettings(
        learning_rate=5e-5,
        epochs=4,
        patience=4,
        decoder="argmax-drop",
        adam_epsilon=1e-8,
        length_pool_batches=1,
        windows=WindowSettings(
            max_tokens=320, max_words=512, context_tokens=0, cross_sentence=False
        ),
    ),
}


def first_model_recipe(settings: TrainSettings) -> TrainSettings:
    """The quick first model of a fresh installation, derived from the job's recipe.

    One epoch of at most :data:`FIRST_MODEL_MAX_STEPS` batches (its learning rate decays
    to zero within them) of at most :data:`FIRST_MODEL_BATCH_SIZE` windows, on chunks
    without context in windows of at most :data:`FIRST_MODEL_WINDOWS` tokens: the worker
    trains it before the job's own recipe, so that a curator tags within minutes of
    ``make run``.

    >>> first = first_model_recipe(TrainSettings(learning_rate=3e-5, max_steps=7))
    >>> first.epochs, first.patience, first.learning_rate, first.max_steps, first.batch_size
    (1, 1, 3e-05, 7, 16)
    >>> first_model_recipe(TrainSettings()).max_steps
    250
    >>> first.windows == FIRST_MODEL_WINDOWS
    True
    """
    windows = dataclasses.replace(
        FIRST_MODEL_WINDOWS,
        max_tokens=min(FIRST_MODEL_WINDOWS.max_tokens, settings.windows.max_tokens),
        max_words=settings.windows.max_words,
    )
    return dataclasses.replace(
        settings,
        epochs=1,
        patience=1,
        batch_size=min(FIRST_MODEL_BATCH_SIZE, settings.batch_size),
        max_steps=min(settings.max_steps or FIRST_MODEL_MAX_STEPS, FIRST_MODEL_MAX_STEPS),
        windows=windows,
    )


RECIPES["first-model"] = first_model_recipe(RECIPES["default"])


def recipe(name: str) -> TrainSettings:
    """A fresh copy of the named recipe (safe to change)."""
    if name not in RECIPES:
        choices = " or ".join(f"--recipe {known}" for known in RECIPES)
        raise TaggerError(f"recipe {name!r} is unknown", fix=f"use {choices}")
    chosen = RECIPES[name]
    return dataclasses.replace(chosen, windows=dataclasses.replace(chosen.windows))


def settings_as_json(settings: TrainSettings) -> dict[str, Any]:
    content = dataclasses.asdict(settings)
    content["windows"] = dataclasses.asdict(settings.windows)
    return content


def describe_recipes() -> str:
    """One line per recipe with the values that differ between recipes (for ``--help``)."""
    shown = (
        "learning_rate",
        "epochs",
        "batch_size",
        "patience",
        "decoder",
        "adam_epsilon",
        "length_pool_batches",
        "max_steps",
    )
    lines = []
    for name, settings in RECIPES.items():
        values = [f"{key}={getattr(settings, key)}" for key in shown]
        windows = settings.windows
        values.append(
            f"windows={windows.max_words} words/{windows.max_tokens} tokens, "
            f"{windows.context_tokens} context"
            + (" across sentences" if windows.cross_sentence else "")
        )
        lines.append(f"{name}: " + ", ".join(values))
    return "\n".join(lines)
