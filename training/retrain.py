"""One training job from start to finish, as the worker runs it.

1. Snapshot the corrections: the current correction of every sentence with an id up to
   the last one saved when the job starts (a save that lands later goes into the next
   job). Their ids are recorded on the job at once.
2. Build the data: the base ``train`` split with each corrected sentence replacing the
   base sentence with the same words (corrections matching no base sentence are
   added). Corrected sentences are held out of ``devel`` and ``test``, so no score is
   measured on sentences the model was just taught.
3. Start from the serving model's weights (default) or from the encoder, fine-tune with
   :func:`training.train.fine_tune`, reporting progress and hearing cancellation every
   step (:class:`JobProgressCallback`).
4. Measure the serving model and the new one on the same dev sentences, decide promotion
   (:class:`training.registry.PromotionPolicy`), score ``test``, and register the new
   folder (written atomically) with the registry.

A cancelled job (or one the queue no longer assigns to this worker) raises out of
``model.fit`` within one step and registers nothing: the serving model is untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from tagger.bio import Sentence
from tagger.encoders import Encoder, load_encoder
from tagger.model_folder import LoadedModel, load_model_folder, new_version_id
from tagger.tagger import Tagger
from tagger.windows import WindowSettings
from training.corrections import Correction, CorrectionsStore
from training.data import file_sha256, load_split, split_path
from training.evaluate import evaluate_tagger
from training.jobs import Job, JobQueue, JobSignal, Progress
from training.registry import PromotionPolicy, Registration, Registry
from training.train import RECIPES, TrainSettings, fine_tune

START_FROM_SERVING = "serving"
START_FROM_ENCODER = "encoder"
START_POINTS = (START_FROM_SERVING, START_FROM_ENCODER)
SCORE_KEYS = ("precision", "recall", "f1", "n_gold", "n_pred")
# Continued fine-tuning of a converged model on nearly the same data: a short, gentle run.
RETRAIN_OVERRIDES: dict[str, Any] = {"epochs": 2, "learning_rate": 3e-5, "patience": 2}

WORKER_STOPPING = "worker-stopping"  # JobStopped.signal when the worker itself is told to stop

EncoderLoader = Callable[[str | None], Encoder]
Reporter = Callable[[Progress, tuple[int, int, float] | None], JobSignal]


class JobStopped(Exception):
    """Training stopped early; ``signal`` says why (cancelled, lost, worker stopping)."""

    def __init__(self, signal: JobSignal | str, step: int = 0) -> None:
        super().__init__(f"job stopped ({signal}) after step {step}")
        self.signal = signal
        self.step = step


class JobOptionsError(ValueError):
    """A job's options that the worker cannot run; the message names the fix."""


@dataclass(frozen=True)
class TrainJobOptions:
    """What a curator (or the app) asks of a training job; stored as the job's options."""

    start_from: str = START_FROM_SERVING
    epochs: int | None = None
    max_steps: int | None = None
    learning_rate: float | None = None
    encoder: str | None = None
    override: bool = False  # retrain although no correction changed

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, content: dict[str, Any], *, job_id: int | None = None) -> TrainJobOptions:
        where = f"job {job_id}" if job_id is not None else "job options"
        unknown = sorted(set(content) - set(cls.__dataclass_fields__))
        if unknown:
            raise JobOptionsError(
                f"{where}: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(cls.__dataclass_fields__)}"
            )
        options = cls(**content)
        if options.start_from not in START_POINTS:
            raise JobOptionsError(
                f"{where}: start_from={options.start_from!r}; use one of {', '.join(START_POINTS)}"
            )
        return options


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Starting points and settings
# ---------------------------------------------------------------------------


def encoder_from_model(loaded: LoadedModel) -> Encoder:
    """A fresh backbone shaped like the model's, with its vocabulary: to continue training."""
    import keras_hub

    backbone = keras_hub.models.BertBackbone.from_config(loaded.metadata.backbone_config)
    return Encoder(
        backbone,
        loaded.folder / "vocab.txt",
        loaded.metadata.lowercase,
        loaded.metadata.encoder_source,
    )


def retrain_settings(loaded: LoadedModel, options: TrainJobOptions) -> TrainSettings:
    """The serving model's own recipe (windows, decoder, dropout: they must match), made
    short and gentle by :data:`RETRAIN_OVERRIDES`, then the job's own options."""
    recorded = loaded.metadata.training
    fields = {
        name: recorded[name]
        for name in TrainSettings.__dataclass_fields__
        if name in recorded and name not in ("windows", "max_steps")
    }
    settings = TrainSettings(**fields)
    settings = dataclasses.replace(
        settings,
        windows=WindowSettings(**dataclasses.asdict(loaded.metadata.windows)),
        decoder=loaded.metadata.decoder,
        dropout=loaded.metadata.dropout,
        **RETRAIN_OVERRIDES,
    )
    return apply_options(settings, options)


def apply_options(settings: TrainSettings, options: TrainJobOptions) -> TrainSettings:
    chosen = {
        "epochs": options.epochs,
        "max_steps": options.max_steps,
        "learning_rate": options.learning_rate,
    }
    return dataclasses.replace(settings, **{k: v for k, v in chosen.items() if v is not None})


def cap_steps(settings: TrainSettings, max_steps: int | None) -> TrainSettings:
    if max_steps is None:
        return settings
    capped = min(settings.max_steps or max_steps, max_steps)
    return dataclasses.replace(settings, max_steps=capped)


def visible_gpus() -> int:
    if keras.backend.backend() != "tensorflow":
        return 0
    import tensorflow as tf

    return len(tf.config.list_logical_devices("GPU"))


def mirrored_strategy(devices: Sequence[str] | None = None) -> Any:
    """``tf.distribute.MirroredStrategy`` that tolerates boolean inputs.

    Keras 3.15 builds a model under a strategy by averaging the first batch across
    replicas (``Trainer._maybe_symbolic_build``), which TensorFlow cannot do for our
    boolean ``padding_mask``. Only that sample is affected, and only its shape and
    dtype kind matter there, so booleans are averaged as int32 instead.
    """
    import tensorflow as tf

    class MaskSafeMirroredStrategy(tf.distribute.MirroredStrategy):  # type: ignore[misc]
        def reduce(self, reduce_op: Any, value: Any, axis: Any) -> Any:
            def as_number(item: Any) -> Any:
                is_mask = (
                    isinstance(item, tf.distribute.DistributedValues)
                    and self.experimental_local_results(item)[0].dtype == tf.bool
                )
                if is_mask:
                    return self.run(lambda part: tf.cast(part, tf.int32), args=(item,))
                return item

            return super().reduce(reduce_op, tf.nest.map_structure(as_number, value), axis)

    return MaskSafeMirroredStrategy(list(devices) if devices else None)


@contextlib.contextmanager
def training_scope(devices: Sequence[str] | None = None) -> Iterator[str]:
    """Mirror training over ``devices``; by default over all GPUs when TensorFlow sees
    several, else no strategy at all. Yields a description for the job log."""
    if devices is None and visible_gpus() < 2:
        yield "single device"
        return
    strategy = mirrored_strategy(devices)
    with strategy.scope():
        yield f"MirroredStrategy over {strategy.num_replicas_in_sync} devices"


# ---------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------


class JobProgressCallback(keras.callbacks.Callback):
    """Reports progress after every training step and stops within one step when told.

    ``report`` writes the progress (and the step's loss) and returns the job's signal;
    anything but CONTINUE sets ``model.stop_training`` and raises :class:`JobStopped`
    out of ``fit`` at once, so no epoch-end evaluation runs for a cancelled job.
    """

    def __init__(
        self,
        report: Reporter,
        *,
        step_delay_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.report = report
        self.step_delay_s = step_delay_s
        self.clock = clock
        self.progress = Progress(phase="training")
        self.started = 0.0
        self.best_dev_f1: float | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        epochs = int(self.params.get("epochs") or 1)
        steps = int(self.params.get("steps") or 0)
        self.started = self.clock()
        self.progress = dataclasses.replace(
            self.progress, epochs=epochs, total_steps=steps * epochs
        )

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.progress = dataclasses.replace(self.progress, epoch=epoch + 1)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.step_delay_s:
            time.sleep(self.step_delay_s)  # fault tests: a step slow enough to kill mid-epoch
        step = self.progress.step + 1
        loss = float((logs or {}).get("loss", float("nan")))
        elapsed = self.clock() - self.started
        remaining = max(self.progress.total_steps - step, 0)
        self.progress = dataclasses.replace(
            self.progress, step=step, loss=loss, eta_s=round(elapsed / step * remaining, 1)
        )
        self._send((step, self.progress.epoch, loss))

    def on_dev_epoch(self, record: dict[str, Any]) -> None:
        """The ``on_epoch`` hook of :func:`fine_tune`: dev F1 after each epoch."""
        dev_f1 = float(record["dev"]["f1"])
        self.best_dev_f1 = dev_f1 if self.best_dev_f1 is None else max(self.best_dev_f1, dev_f1)
        entry = {
            "epoch": record["epoch"],
            "loss": record["loss"],
            "dev_f1": dev_f1,
            "seconds": record["seconds"],
        }
        self.progress = dataclasses.replace(
            self.progress,
            dev_f1=self.best_dev_f1,
            epoch_history=(*self.progress.epoch_history, entry),
        )
        logging.getLogger(__name__).info(
            "epoch %d: loss %.4f, dev F1 %.2f (%.0f s)",
            record["epoch"],
            record["loss"],
            dev_f1,
            record["seconds"],
        )
        self._send(None)

    def _send(self, loss_point: tuple[int, int, float] | None) -> None:
        signal = self.report(self.progress, loss_point)
        if signal != JobSignal.CONTINUE:
            self.model.stop_training = True
            raise JobStopped(signal, self.progress.step)


# ---------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------


@dataclass
class JobRunner:
    """Runs one claimed training job; :meth:`run` returns the registration or raises.

    ``check`` is asked between phases (and ``report`` every step) whether to go on.
    """

    queue: JobQueue
    registry: Registry
    corrections: CorrectionsStore
    job: Job
    worker: str
    data_dir: str | Path | None = None
    encoder_spec: str | None = None
    max_steps: int | None = None
    epochs: int | None = None
    step_delay_s: float = 0.0
    policy: PromotionPolicy | None = None
    load_encoder: EncoderLoader = load_encoder
    encoder_settings: TrainSettings | None = None  # recipe from an encoder; None: "default"
    stopping: Callable[[], bool] = lambda: False
    log: logging.Logger = field(default_factory=lambda: logging.getLogger(__name__))

    progress: Progress = field(default_factory=Progress)

    def report(self, progress: Progress, loss_point: tuple[int, int, float] | None) -> JobSignal:
        if self.stopping():
            raise JobStopped(WORKER_STOPPING, progress.step)
        self.progress = progress
        return self.queue.heartbeat(
            self.job.id, self.worker, progress=progress, loss_point=loss_point
        )

    def check(self, phase: str) -> None:
        """Enter ``phase`` (keeping the progress so far); stop here if told to."""
        eta = self.progress.eta_s if phase == "training" else None
        signal = self.report(dataclasses.replace(self.progress, phase=phase, eta_s=eta), None)
        if signal != JobSignal.CONTINUE:
            raise JobStopped(signal, self.progress.step)

    def run(self) -> Registration:
        options = TrainJobOptions.from_json(self.job.options, job_id=self.job.id)
        up_to = self.corrections.last_id()
        used = self.corrections.current(up_to_id=up_to) if up_to is not None else []
        self.queue.record_inputs(
            self.job.id, correction_ids=[c.id for c in used], log_file=self.job.log_file
        )
        self.log.info("job %d: %d corrections (ids up to %s)", self.job.id, len(used), up_to)
        serving = self.registry.serving()
        with training_scope() as scope:
            self.log.info("job %d: training on %s", self.job.id, scope)
            start = self._starting_point(options, serving.folder if serving else None)
            data = training_data(self.data_dir, used, start.description)
            data.summary["corrections_up_to_id"] = up_to
            self.check("preparing")
            baseline = self._baseline(start, data.dev)
            callback = JobProgressCallback(self.report, step_delay_s=self.step_delay_s)
            result = fine_tune(
                start.encoder,
                data.train,
                data.dev,
                cap_steps(start.settings, self.max_steps),
                initial_weights=start.weights,
                callbacks=[callback],
                on_epoch=callback.on_dev_epoch,
                verbose=0,
            )
        self.check("evaluating")
        tagger = result.tagger
        test_scores = evaluate_tagger(tagger, data.test)
        tagger.info.metrics["test"] = {key: test_scores[key] for key in SCORE_KEYS}
        dev_f1 = float(tagger.info.metrics.get("dev", {}).get("f1", 0.0))
        policy = self.policy or self.registry.policy
        decision = policy.decide(
            dev_f1,
            serving_dev_f1=baseline,
            serving_version=serving.version if serving else None,
        )
        data.summary["promotion"] = {
            "compared_with": serving.version if serving else None,
            "serving_dev_f1": baseline,  # re-measured on this job's dev sentences
            "dev_f1": dev_f1,
            "tolerance": policy.tolerance,
            "promote": decision.promote,
        }
        tagger.info.version = new_version_id()
        tagger.info.parent = start.parent
        tagger.info.data = {**data.summary["files"], "training_data": data.summary}
        self.check("saving")
        self.log.info(
            "job %d: dev F1 %.2f, test F1 %.2f; %s",
            self.job.id,
            dev_f1,
            test_scores["f1"],
            decision.reason,
        )
        return self.registry.add_version(
            tagger.model,
            start.encoder.vocab_path,
            tagger.info,
            summary=data.summary,
            decision=decision,
            expected_serving=serving.version if serving else None,
            job_id=self.job.id,
        )

    def _starting_point(self, options: TrainJobOptions, serving_folder: Path | None) -> _Start:
        if options.start_from == START_FROM_SERVING and serving_folder is not None:
            loaded = load_model_folder(serving_folder)
            settings = retrain_settings(loaded, options)
            if self.epochs is not None:
                settings = dataclasses.replace(settings, epochs=self.epochs)
            return _Start(
                encoder=encoder_from_model(loaded),
                weights=loaded.model.get_weights(),
                settings=settings,
                parent=loaded.metadata.version,
                description=f"serving:{loaded.metadata.version}",
                serving=loaded,
            )
        if options.start_from == START_FROM_SERVING:
            self.log.info("job %d: no model in service, starting from the encoder", self.job.id)
        encoder = self.load_encoder(options.encoder or self.encoder_spec)
        recipe = self.encoder_settings or RECIPES["default"]
        settings = apply_options(dataclasses.replace(recipe), options)
        if self.epochs is not None:
            settings = dataclasses.replace(settings, epochs=self.epochs)
        return _Start(
            encoder=encoder,
            weights=None,
            settings=settings,
            parent=None,
            description=f"encoder:{encoder.source}",
            serving=None,
        )

    def _baseline(self, start: _Start, dev: Sequence[Sentence]) -> float | None:
        """The serving model's dev F1 on exactly the sentences the new model is scored on."""
        serving = self.registry.serving()
        if serving is None:
            return None
        loaded = start.serving
        if loaded is None:
            try:
                loaded = load_model_folder(serving.folder)
            except Exception as error:  # a damaged serving folder must not block retraining
                self.log.warning(
                    "job %d: cannot load %s (%s); comparing with its recorded dev F1",
                    self.job.id,
                    serving.folder,
                    error,
                )
                return serving.dev_f1
        scores = evaluate_tagger(Tagger(loaded), dev)
        self.log.info("job %d: serving model dev F1 %.2f", self.job.id, scores["f1"])
        return float(scores["f1"])


@dataclass
class _Start:
    encoder: Encoder
    weights: list[Any] | None
    settings: TrainSettings
    parent: str | None
    description: str
    serving: LoadedModel | None
