"""One training job from start to finish, as the worker runs it.

1. Snapshot the corrections: the current correction of every sentence with an id up to
   the last one saved when the job starts (a save that lands later goes into the next
   job). Their ids are recorded on the job at once.
2. Build the data (:mod:`worker.job_data`).
3. Start from the serving model's weights (default) or from the encoder, and score the
   serving model on this job's dev sentences: the promotion compares like with like,
   and a serving model that cannot be scored fails the job before any training.
4. Fine-tune with :func:`training.train.fine_tune`, reporting progress and hearing
   cancellation every step (:class:`worker.progress.JobProgressCallback`).
5. Decide promotion (:class:`curation.promotion.PromotionPolicy`), score ``test``,
   write the folder where the registry says (atomically) and register it.

A cancelled job (or one the queue no longer assigns to this worker) raises out of
``model.fit`` within one step and registers nothing: the serving model is untouched.

A first training (nothing in service when it starts) also serves preliminary versions
while it trains (:mod:`worker.preliminary`); its final version replaces them (it is
compared with what served before the job, nothing), and a job that stops early leaves
the last one in service (:meth:`JobRunner.kept_in_service` says so for its message).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.corrections import CorrectionsStore
from curation.jobs import START_FROM_SERVING, Job, JobQueue, JobSignal, Progress, TrainJobOptions
from curation.promotion import PromotionPolicy
from curation.registry import ModelVersion, Registration, Registry
from tagger.bio import Sentence
from tagger.encoders import Encoder, load_encoder
from tagger.errors import TaggerError
from tagger.model_folder import LoadedModel, load_model_folder, save_model_folder
from tagger.scoring import format_score
from tagger.tagger import Tagger
from tagger.windows import WindowSettings
from training.evaluate import evaluate_tagger
from training.recipes import TrainSettings
from training.train import fine_tune
from worker.devices import training_scope
from worker.job_data import TrainingData, training_data
from worker.preliminary import PreliminaryPublisher, PreliminaryRelease
from worker.progress import WORKER_STOPPING, JobProgressCallback, JobStopped

SCORE_KEYS = ("precision", "recall", "f1", "n_gold", "n_pred")
# Continued fine-tuning of a converged model on nearly the same data: a short, gentle run.
RETRAIN_OVERRIDES: dict[str, Any] = {"epochs": 2, "learning_rate": 3e-5, "patience": 2}

EncoderLoader = Callable[[str | None], Encoder]


class BaselineError(TaggerError, RuntimeError):
    """The serving model cannot be scored on the new model's dev sentences."""


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
    preliminaries: PreliminaryPublisher | None = None  # set by run() for a first training

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

    def kept_in_service(self) -> str:
        """What a job that ends without a final version leaves in service, for its message:
        its last preliminary version, or the model that served before it."""
        note = self.preliminaries.note() if self.preliminaries is not None else None
        return note or "the model in service is unchanged"

    def run(self) -> Registration:
        try:
            return self._run()
        except BaseException:
            if self.preliminaries is not None and self.preliminaries.last is not None:
                self.log.warning("job %d ended early; %s", self.job.id, self.preliminaries.note())
            raise

    def _run(self) -> Registration:
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
            baseline = self._baseline(serving, start, data.dev)
            settings = cap_steps(start.settings, self.max_steps)
            callback = JobProgressCallback(self.report, step_delay_s=self.step_delay_s)
            callbacks: list[Any] = [callback]
            if options.wants_preliminary(serving=serving.version if serving else None):
                self.preliminaries = self._preliminaries(options, start, settings, data)
                callbacks.append(self.preliminaries)  # after the callback that hears cancel
            elif options.preliminary:
                self.log.info(
                    "job %d: no preliminary versions, a version is in service", self.job.id
                )
            result = fine_tune(
                start.encoder,
                data.train,
                data.dev,
                settings,
                initial_weights=start.weights,
                callbacks=callbacks,
                on_epoch=self._epoch_hook(callback),
                verbose=0,
            )
        self.check("evaluating")
        tagger = result.tagger
        test_scores = evaluate_tagger(tagger, data.test)
        tagger.info.metrics["test"] = {key: test_scores[key] for key in SCORE_KEYS}
        dev_f1 = tagger.info.metrics.get("dev", {}).get("f1")  # None: no dev mention
        policy = self.policy or self.registry.policy
        # Against what served before the job: its own preliminary versions are no baseline.
        decision = policy.decide(
            dev_f1,
            serving_dev_f1=baseline,
            serving_version=serving.version if serving else None,
        )
        replaces = self.preliminaries.last if self.preliminaries is not None else None
        if replaces is not None:
            decision = dataclasses.replace(
                decision,
                reason=f"{decision.reason} before this job; it replaces the job's "
                f"preliminary version {replaces.version.version}",
            )
        data.summary["promotion"] = {
            "compared_with": serving.version if serving else None,
            "serving_dev_f1": baseline,  # re-measured on this job's dev sentences
            "dev_f1": dev_f1,
            "tolerance": policy.tolerance,
            "promote": decision.promote,
            "replaces_preliminary": replaces.version.version if replaces else None,
        }
        target = self.registry.reserve_folder()
        tagger.info.version = target.name
        tagger.info.parent = start.parent
        tagger.info.data = {**data.summary["files"], "training_data": data.summary}
        self.check("saving")
        self.log.info(
            "job %d: dev F1 %s, test F1 %s; %s",
            self.job.id,
            format_score(dev_f1),
            format_score(test_scores["f1"]),
            decision.reason,
        )
        save_model_folder(tagger.model, start.encoder.vocab_path, tagger.info, target)
        # The job's own last preliminary, if it served one, is what serves now.
        expected = serving.version if serving else None
        if self.preliminaries is not None:
            expected = self.preliminaries.in_service
        return self.registry.register_folder(
            target,
            summary=data.summary,
            decision=decision,
            expected_serving=expected,
            job_id=self.job.id,
        )

    def _preliminaries(
        self,
        options: TrainJobOptions,
        start: _Start,
        settings: TrainSettings,
        data: TrainingData,
    ) -> PreliminaryPublisher:
        release = PreliminaryRelease(
            registry=self.registry,
            job_id=self.job.id,
            encoder=start.encoder,
            settings=settings,
            dev=data.dev,
            summary=data.summary,
            files=data.summary["files"],
            parent=start.parent,
            in_service=None,
        )
        self.log.info(
            "job %d: first training: a preliminary version after %d steps and at each "
            "better epoch end",
            self.job.id,
            options.preliminary_steps,
        )
        return PreliminaryPublisher(release, after_steps=options.preliminary_steps)

    def _epoch_hook(self, callback: JobProgressCallback) -> Callable[[dict[str, Any]], None]:
        """Progress first (a cancelled job stops there), then any preliminary version."""
        preliminaries = self.preliminaries

        def on_epoch(record: dict[str, Any]) -> None:
            callback.on_dev_epoch(record)
            if preliminaries is not None:
                preliminaries.on_dev_epoch(record)

        return on_epoch

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
        settings = apply_options(self.encoder_settings or TrainSettings(), options)
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

    def _baseline(
        self, serving: ModelVersion | None, start: _Start, dev: Sequence[Sentence]
    ) -> float | None:
        """The serving model's dev F1 on exactly the sentences the new model is scored on.

        A figure recorded elsewhere (another dev set, other held-out sentences) would
        not compare like with like, so a serving model that cannot be scored here
        fails the job before any training, and nothing is promoted.
        """
        if serving is None:
            return None
        try:
            loaded = start.serving or load_model_folder(serving.folder)
            scores = evaluate_tagger(Tagger(loaded), dev)
        except Exception as error:
            raise BaselineError(
                f"the version in service, {serving.version}, cannot be scored on this job's "
                f"{len(dev)} dev sentences ({type(error).__name__}: {error}); nothing was "
                "trained or promoted",
                fix="promote a version that loads (Training page), or retrain from the "
                "encoder instead of the model in service",
            ) from error
        if scores["f1"] is None:
            raise BaselineError(
                f"this job's {len(dev)} dev sentences have no disease mention to score on",
                fix="check the devel split of the BC5CDR folder (BC5CDR_DIR or --data-dir)",
            )
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
