"""One training job from start to finish, as the worker runs it.

1. Snapshot the corrections: the current correction of every sentence with an id up to
   the last one saved when the job starts (a save that lands later goes into the next
   job). Their ids are recorded on the job at once.
2. Build the data (:mod:`worker.job_data`).
   A retrain from the model in service trains on a *replay* sample by default: every
   correction plus a seeded sample of the base sentences they did not replace, under
   :data:`REPLAY_OVERRIDES`; ``retrain_data="full"`` trains on the whole base split under
   :data:`RETRAIN_OVERRIDES`. A first training (from the encoder) uses the full data.
3. Start from the serving model's weights (default) or from the encoder, and take the
   serving model's dev F1 on this job's dev sentences: the promotion compares like with
   like. It is read from the registry when the serving version was scored on exactly
   these sentences (the sha256 of the dev set in its summary), else measured; a serving
   model that cannot be measured fails the job before any training.
4. Fine-tune with :func:`training.train.fine_tune`, reporting progress and hearing
   cancellation every step (:class:`worker.progress.JobProgressCallback`).
5. Decide promotion (:class:`curation.promotion.PromotionPolicy`), score ``test`` (not
   for a replay retrain unless the job asks: ``TrainJobOptions.score_test``),
   write the folder where the registry says (atomically), derive its ONNX serving graph
   and register it. The summary's ``phase_seconds`` says where the job's time went.

A cancelled job (or one the queue no longer assigns to this worker) raises out of
``model.fit`` within one step and registers nothing: the serving model is untouched.

A first training (nothing in service when it starts) also serves preliminary versions
while it trains (:mod:`worker.preliminary`); its final version replaces them (it is
compared with what served before the job, nothing), and a job that stops early leaves
the last one in service (:meth:`JobRunner.kept_in_service` says so for its message).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from curation.corrections import CorrectionsStore
from curation.jobs import START_FROM_SERVING, Job, JobQueue, JobSignal, Progress, TrainJobOptions
from curation.promotion import PromotionPolicy
from curation.registry import ModelVersion, Registration, Registry
from tagger.encoders import Encoder, load_encoder
from tagger.errors import TaggerError
from tagger.model_folder import LoadedModel, load_model_folder, save_model_folder
from tagger.scoring import format_score
from tagger.tagger import Tagger, scoring_tagger
from tagger.windows import WindowSettings
from training.evaluate import evaluate_tagger
from training.recipes import TrainSettings, first_model_recipe
from training.train import fine_tune
from worker.devices import training_scope
from worker.job_data import DEV_SHA_KEY, ReplayPlan, TrainingData, training_data
from worker.preliminary import PreliminaryPublisher, PreliminaryRelease
from worker.progress import FIRST_MODEL_PHASE, WORKER_STOPPING, JobProgressCallback, JobStopped

SCORE_KEYS = ("precision", "recall", "f1", "n_gold", "n_pred")
# Continued fine-tuning of a converged model on nearly the same data: a short, gentle run.
RETRAIN_OVERRIDES: dict[str, Any] = {"epochs": 2, "learning_rate": 3e-5, "patience": 2}
# A replay retrain (the corrections plus a sample of the base, worker.job_data): one pass,
# so each correction is seen once, as in a one-epoch full retrain, and the new model is
# scored on dev once. The pass has a fraction of a full epoch's steps, so its peak rate
# is higher than the full retrain's, for a comparable total update; still half the
# default recipe's 1e-4, and most of every batch is data the model in service fits.
# Not tuned yet: benchmarks.review_queue (--retrain-lr, --replay-sentences) measures it.
REPLAY_OVERRIDES: dict[str, Any] = {"epochs": 1, "learning_rate": 5e-5, "patience": 1}

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


def retrain_settings(
    loaded: LoadedModel, options: TrainJobOptions, *, replay: bool = False
) -> TrainSettings:
    """The serving model's own recipe (windows, decoder, dropout: they must match), made
    short and gentle by :data:`RETRAIN_OVERRIDES` (:data:`REPLAY_OVERRIDES` for a replay
    retrain), then the job's own options."""
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
        **(REPLAY_OVERRIDES if replay else RETRAIN_OVERRIDES),
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
# Where the time goes
# ---------------------------------------------------------------------------


@dataclass
class PhaseSeconds:
    """Wall-clock seconds of a job's phases, in the order they first ran.

    >>> phases = PhaseSeconds()
    >>> with phases.measure("save"):
    ...     pass
    >>> phases.add("train", 12.345)
    >>> phases.as_json()["train"], list(phases.as_json())
    (12.3, ['save', 'train'])
    """

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + max(seconds, 0.0)

    @contextlib.contextmanager
    def measure(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - started)

    def as_json(self) -> dict[str, float]:
        return {phase: round(seconds, 1) for phase, seconds in self.seconds.items()}

    def describe(self) -> str:
        return ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in self.seconds.items())


class LastStepClock(keras.callbacks.Callback):
    """When the last training step of the epoch ended, after every other step callback.

    Put it last among ``fine_tune``'s callbacks: ``fine_tune`` scores dev at the epoch's
    end and then calls its ``on_epoch`` hook, so the time from :attr:`last_step_end` to
    that hook is the new model's dev scoring.
    """

    def __init__(self) -> None:
        super().__init__()
        self.last_step_end: float | None = None

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.last_step_end = time.perf_counter()


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
        started = time.perf_counter()
        phases = PhaseSeconds()
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
            data = training_data(self.data_dir, used, start.description, replay=start.replay)
            data.summary["corrections_up_to_id"] = up_to
            self._log_data(data)
            self.check("preparing")
            phases.add("prepare", time.perf_counter() - started)
            with phases.measure("baseline"):
                baseline, baseline_from = self._baseline(serving, start, data)
            settings = cap_steps(start.settings, self.max_steps)
            callback = JobProgressCallback(self.report, step_delay_s=self.step_delay_s)
            callbacks: list[Any] = [callback]
            serving_version = serving.version if serving else None
            first_model = options.trains_first_model(serving=serving_version)
            if options.wants_preliminary(serving=serving_version):
                self.preliminaries = self._preliminaries(
                    options, start, settings, data, first_model=first_model
                )
                callbacks.append(self.preliminaries)  # after the callback that hears cancel
            elif options.preliminary:
                self.log.info(
                    "job %d: no preliminary versions, a version is in service", self.job.id
                )
            if first_model and self.preliminaries is not None:
                with phases.measure("first_model"):
                    start = self._train_first_model(options, start, settings, data)
            published_before = sum(self.preliminaries.seconds) if self.preliminaries else 0.0
            clock = LastStepClock()
            callbacks.append(clock)  # last: it marks the end of all of a step's callbacks
            fitting = time.perf_counter()
            result = fine_tune(
                start.encoder,
                data.train,
                data.dev,
                settings,
                initial_weights=start.weights,
                callbacks=callbacks,
                on_epoch=self._epoch_hook(callback, clock, phases),
                verbose=0,
            )
            # Training steps (window building and compiling included): the fit's wall
            # time less the dev scoring at epoch ends and any preliminary releases.
            publishing = (
                sum(self.preliminaries.seconds) - published_before if self.preliminaries else 0.0
            )
            fit_seconds = time.perf_counter() - fitting
            phases.add("train", fit_seconds - phases.seconds.get("dev_eval", 0.0) - publishing)
            if self.preliminaries is not None:
                phases.add("preliminary", publishing)
        self.check("evaluating")
        tagger = result.tagger
        test_f1: float | None = None
        if options.scores_test(replay=start.replay is not None):
            with phases.measure("test_eval"):
                test_scores = evaluate_tagger(scoring_tagger(tagger), data.test)
            tagger.info.metrics["test"] = {key: test_scores[key] for key in SCORE_KEYS}
            test_f1 = test_scores["f1"]
        else:
            self.log.info(
                "job %d: test not scored (a replay retrain; job option score_test=true scores it)",
                self.job.id,
            )
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
            "serving_dev_f1": baseline,  # on exactly this job's dev sentences
            # "registry": scored on the same dev sentences (same sha256) when it was
            # trained; "measured": scored here, before training; None: nothing served.
            "serving_dev_f1_from": baseline_from,
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
            format_score(test_f1),
            decision.reason,
        )
        with phases.measure("save"):
            save_model_folder(tagger.model, start.encoder.vocab_path, tagger.info, target)
        self._derive_serving_graph(target, phases)
        data.summary["phase_seconds"] = phases.as_json()
        data.summary["job_seconds"] = round(time.perf_counter() - started, 1)
        self.log.info(
            "job %d: %.1f s in all before registering: %s",
            self.job.id,
            data.summary["job_seconds"],
            phases.describe(),
        )
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

    def _log_data(self, data: TrainingData) -> None:
        summary = data.summary
        replay = summary.get("replay")
        if replay is None:
            self.log.info(
                "job %d: full data: %d train sentences", self.job.id, summary["train_sentences"]
            )
            return
        self.log.info(
            "job %d: replay: %d correction sentences + %d of %d base sentences (seed %d)",
            self.job.id,
            replay["correction_sentences"],
            replay["base_sentences_replayed"],
            replay["base_sentences_available"],
            replay["seed"],
        )

    def _derive_serving_graph(self, target: Path, phases: PhaseSeconds) -> None:
        """The ONNX graph the app serves the version with, before it can go into service
        (the worker's own call after registration then finds it ready)."""
        from tagger.runtimes import default_runtime
        from worker.loop import prepare_serving_graph

        if default_runtime() != "onnx":
            return
        with phases.measure("onnx"):
            prepare_serving_graph(target, target.name)

    def _train_first_model(
        self, options: TrainJobOptions, start: _Start, settings: TrainSettings, data: TrainingData
    ) -> _Start:
        """Train and serve the quick first model; the job's own recipe then starts from a
        freshly loaded encoder (training moved the weights of this one)."""
        assert self.preliminaries is not None
        quick = first_model_recipe(settings)
        self.log.info(
            "job %d: quick first model: at most %d batches of %d chunks of up to %d words "
            "without context, in windows of %d tokens",
            self.job.id,
            quick.max_steps,
            quick.batch_size,
            quick.windows.max_words,
            quick.windows.max_tokens,
        )

        def report(progress: Progress, _loss: tuple[int, int, float] | None) -> JobSignal:
            return self.report(progress, None)  # the loss curve is the job's own recipe's

        callback = JobProgressCallback(
            report, step_delay_s=self.step_delay_s, phase=FIRST_MODEL_PHASE
        )
        result = fine_tune(
            start.encoder,
            data.train,
            data.dev,
            quick,
            callbacks=[callback],
            on_epoch=callback.on_dev_epoch,
            verbose=0,
        )
        registration = self.preliminaries.publish_first_model(result, steps=callback.progress.step)
        if registration is None:
            self.log.info("job %d: the quick first model was not served", self.job.id)
        # The job's own recipe starts at step 0 (not at the first model's last step, 100%).
        self.progress = Progress(phase="preparing")
        self.check("training")
        return dataclasses.replace(
            start, encoder=self.load_encoder(options.encoder or self.encoder_spec)
        )

    def _preliminaries(
        self,
        options: TrainJobOptions,
        start: _Start,
        settings: TrainSettings,
        data: TrainingData,
        *,
        first_model: bool,
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
        after_steps = options.preliminary_steps(first_model=first_model)
        points = ["the quick first model"] if first_model else []
        if after_steps is not None:
            points.append(f"step {after_steps}")
        points.append("each better epoch end")
        self.log.info(
            "job %d: first training: preliminary versions at %s",
            self.job.id,
            ", ".join(points),
        )
        return PreliminaryPublisher(release, after_steps=after_steps)

    def _epoch_hook(
        self, callback: JobProgressCallback, clock: LastStepClock, phases: PhaseSeconds
    ) -> Callable[[dict[str, Any]], None]:
        """Progress first (a cancelled job stops there), then any preliminary version.

        ``fine_tune`` calls it right after scoring the epoch on dev: that scoring's time
        (since the epoch's last step) goes to the ``dev_eval`` phase.
        """
        preliminaries = self.preliminaries

        def on_epoch(record: dict[str, Any]) -> None:
            if clock.last_step_end is not None:
                phases.add("dev_eval", time.perf_counter() - clock.last_step_end)
            callback.on_dev_epoch(record)
            if preliminaries is not None:
                preliminaries.on_dev_epoch(record)

        return on_epoch

    def _starting_point(self, options: TrainJobOptions, serving_folder: Path | None) -> _Start:
        if options.start_from == START_FROM_SERVING and serving_folder is not None:
            loaded = load_model_folder(serving_folder)
            replays = options.uses_replay(serving=True)
            settings = retrain_settings(loaded, options, replay=replays)
            if self.epochs is not None:
                settings = dataclasses.replace(settings, epochs=self.epochs)
            seed = settings.seed if options.replay_seed is None else options.replay_seed
            return _Start(
                encoder=encoder_from_model(loaded),
                weights=loaded.model.get_weights(),
                settings=settings,
                parent=loaded.metadata.version,
                description=f"serving:{loaded.metadata.version}",
                serving=loaded,
                replay=ReplayPlan(seed, options.replay_sentences) if replays else None,
            )
        if options.start_from == START_FROM_SERVING:
            self.log.info("job %d: no model in service, starting from the encoder", self.job.id)
            if options.retrain_data is not None or options.replay_sentences is not None:
                self.log.info("job %d: a training from the encoder uses the full data", self.job.id)
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
        self, serving: ModelVersion | None, start: _Start, data: TrainingData
    ) -> tuple[float | None, str | None]:
        """The serving model's dev F1 on exactly the sentences the new model is scored on,
        and where it came from (``registry`` or ``measured``; None with nothing served).

        The registry's figure is taken only when the serving version's summary records
        the sha256 of exactly this job's dev sentences (in order): its dev F1 was then
        measured on them, by the same code, when it was trained. Any other figure (another
        dev set, other held-out sentences) would not compare like with like, so the
        serving model is scored here; one that cannot be scored fails the job before any
        training, and nothing is promoted.
        """
        if serving is None:
            return None, None
        dev = data.dev
        recorded = serving.summary.get(DEV_SHA_KEY)
        reusable = recorded is not None and recorded == data.summary[DEV_SHA_KEY]
        if reusable and serving.dev_f1 is not None:
            self.log.info(
                "job %d: serving model dev F1 %.2f, from the registry (it was scored on "
                "these same %d dev sentences)",
                self.job.id,
                serving.dev_f1,
                len(dev),
            )
            return serving.dev_f1, "registry"
        try:
            loaded = start.serving or load_model_folder(serving.folder)
            scores = evaluate_tagger(scoring_tagger(Tagger(loaded)), dev)
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
        self.log.info("job %d: serving model dev F1 %.2f (measured)", self.job.id, scores["f1"])
        return float(scores["f1"]), "measured"


@dataclass
class _Start:
    encoder: Encoder
    weights: list[Any] | None
    settings: TrainSettings
    parent: str | None
    description: str
    serving: LoadedModel | None
    replay: ReplayPlan | None = None  # None: the full data
