"""Preliminary versions: a first training puts a usable model into service while it trains.

On a fresh machine the first job trains for an hour on two CPU cores; a curator should
not wait for all of it. While such a job (nothing in service when it started, see
:meth:`curation.jobs.TrainJobOptions.wants_preliminary`) trains, :class:`PreliminaryPublisher`
serves

- the quick first model the job trains before its own recipe
  (:func:`training.recipes.first_model_recipe`, :meth:`PreliminaryPublisher.publish_first_model`),
- the weights after ``after_steps`` training steps of the job's recipe, if set (scored on
  the job's dev sentences there), and
- the weights at each epoch end (scored already by :class:`training.train.DevEvaluation`),

and, when its dev F1 beats the last preliminary version's (or there is none yet), writes
them to a version folder, derives the ONNX graph the app serves it with, registers it
with ``summary["preliminary"] = True`` and puts it into service. The last epoch publishes
nothing (the job's final version follows at once), and neither does an epoch at which
early stopping ends training.

Each publication is compare-and-set on the version in service: once anyone else (a
curator) puts a version into service, the job publishes no more preliminaries, and its
final version stays a candidate, as any job's does then. A publication that fails is
logged and skipped: the job keeps training. A job that fails or is cancelled leaves its
last preliminary version in service (better than nothing).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from curation.promotion import PromotionDecision
from curation.registry import (
    FIRST_MODEL_STAGE,
    PRELIMINARY_KEY,
    PRELIMINARY_POINT_KEY,
    Registration,
    Registry,
)
from tagger.bio import Sentence
from tagger.encoders import Encoder
from tagger.model_folder import LoadedModel, ModelMetadata, save_model_folder
from tagger.scoring import format_score
from tagger.tagger import Tagger
from tagger.tokenization import WordPieceEncoder
from training.recipes import TrainSettings
from training.train import TrainResult, dev_scores, training_metadata

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreliminaryPoint:
    """Where in a job a preliminary version is taken, and how it scored on dev.

    >>> PreliminaryPoint(epoch=1, step=120, epoch_end=False, dev={"f1": 61.5}).describe()
    'step 120 (epoch 1)'
    >>> PreliminaryPoint(epoch=2, step=378, epoch_end=True, dev={"f1": None}).describe()
    'the end of epoch 2'
    >>> PreliminaryPoint(1, 189, True, {"f1": 70.3}, stage=FIRST_MODEL_STAGE).describe()
    'the quick first model'
    """

    epoch: int
    step: int  # over all epochs
    epoch_end: bool
    dev: dict[str, Any]
    stage: str | None = None  # FIRST_MODEL_STAGE: the quick first model; None: the recipe's

    @property
    def dev_f1(self) -> float | None:
        value = self.dev.get("f1")
        return None if value is None else float(value)

    def describe(self) -> str:
        if self.stage == FIRST_MODEL_STAGE:
            return "the quick first model"
        if self.epoch_end:
            return f"the end of epoch {self.epoch}"
        return f"step {self.step} (epoch {self.epoch})"

    def to_json(self, job_id: int, seconds: float) -> dict[str, Any]:
        return {
            "job_id": job_id,
            "epoch": self.epoch,
            "step": self.step,
            "epoch_end": self.epoch_end,
            "dev_f1": self.dev_f1,
            "seconds": round(seconds, 2),  # scoring + export + registration
            **({"stage": self.stage} if self.stage else {}),
        }


@dataclass
class PreliminaryRelease:
    """What a preliminary version is written and registered with (the job's side)."""

    registry: Registry
    job_id: int
    encoder: Encoder
    settings: TrainSettings
    dev: Sequence[Sentence]
    summary: dict[str, Any]  # the job's training-data summary (shared: read at each release)
    files: dict[str, Any]  # the base data files, as model.json's ``data`` records them
    parent: str | None
    in_service: str | None  # the version in service when the job started


class PreliminaryPublisher(keras.callbacks.Callback):
    """A Keras callback that publishes preliminary versions; see the module docstring.

    Put it after the progress callback (which stops a cancelled job first) and call
    :meth:`on_dev_epoch` from :func:`training.train.fine_tune`'s ``on_epoch`` hook.
    """

    def __init__(self, release: PreliminaryRelease, *, after_steps: int | None) -> None:
        super().__init__()
        self.release = release
        self.after_steps = after_steps
        self.step = 0
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.in_service = release.in_service  # what this job believes serves now
        self.published: list[Registration] = []  # promoted ones, oldest first
        self.seconds: list[float] = []  # each publication's cost
        self.stopped_publishing = False
        self._metadata = training_metadata(release.encoder, release.settings)
        self._wordpiece = WordPieceEncoder.from_vocab_file(
            release.encoder.vocab_path, lowercase=release.encoder.lowercase
        )

    @property
    def last(self) -> Registration | None:
        """The job's preliminary version in service, if it published one."""
        return self.published[-1] if self.published else None

    def note(self) -> str | None:
        """What a job that stops early leaves in service, for its message; None: nothing."""
        if self.last is None:
            return None
        version = self.last.version
        note = version.preliminary_note(training_continues=False)
        return f"its preliminary version {version.version} stays in service: {note}"

    # -- Keras hooks ----------------------------------------------------------------------

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.step += 1
        if self.after_steps is None or self.step != self.after_steps or self.stopped_publishing:
            return
        steps_per_epoch = int(self.params.get("steps") or 0)
        if steps_per_epoch and self.step % steps_per_epoch == 0:
            return  # the epoch ends now and is scored anyway: that hook publishes it
        started = time.perf_counter()
        tagger = Tagger(LoadedModel(self.model, self._wordpiece, self._metadata, Path()))
        scores = dev_scores(tagger, self.release.dev)
        point = PreliminaryPoint(self.epoch, self.step, epoch_end=False, dev=scores)
        self._consider(point, started)

    def on_dev_epoch(self, record: dict[str, Any]) -> None:
        """``fine_tune``'s ``on_epoch`` hook: the epoch's dev scores (already measured)."""
        self.history.append(record)
        epochs = int(self.params.get("epochs") or 0)
        if self.stopped_publishing or record["epoch"] >= epochs or self.model.stop_training:
            return  # the final version comes next
        point = PreliminaryPoint(record["epoch"], self.step, epoch_end=True, dev=record["dev"])
        self._consider(point, time.perf_counter())

    def publish_first_model(self, result: TrainResult, *, steps: int) -> Registration | None:
        """Serve the quick first model: ``result`` of its ``fine_tune`` (scored on dev),
        trained for ``steps`` steps; returns its registration, or None if not served.

        It comes before the job's own recipe trains, so it goes into service unless a
        curator put a version into service meanwhile (or it has no dev F1).
        """
        dev = dict(result.tagger.info.metrics.get("dev", {}))
        point = PreliminaryPoint(
            epoch=len(result.history) or 1,
            step=steps,
            epoch_end=True,
            dev=dev,
            stage=FIRST_MODEL_STAGE,
        )
        metadata = copy.deepcopy(result.tagger.info)
        self._consider(point, time.perf_counter(), model=result.tagger.model, metadata=metadata)
        return self.last

    # -- publishing -------------------------------------------------------------------------

    def _consider(
        self,
        point: PreliminaryPoint,
        started: float,
        *,
        model: keras.Model | None = None,
        metadata: ModelMetadata | None = None,
    ) -> None:
        last = self.last
        best = None if last is None else last.version.preliminary_point.get("dev_f1")
        if point.dev_f1 is None or (best is not None and point.dev_f1 <= best):
            logger.info(
                "job %d: no preliminary version at %s (dev F1 %s, the one in service %s)",
                self.release.job_id,
                point.describe(),
                format_score(point.dev_f1),
                format_score(best),
            )
            return
        try:
            registration = self._publish(point, started, model or self.model, metadata)
        except Exception:  # a preliminary is a bonus: never end the training for it
            logger.warning(
                "job %d: could not publish a preliminary version at %s; training goes on",
                self.release.job_id,
                point.describe(),
                exc_info=True,
            )
            return
        seconds = time.perf_counter() - started
        self.seconds.append(seconds)
        if not registration.promoted:
            # Someone put another version into service: leave it there from now on.
            self.stopped_publishing = True
            logger.info(
                "job %d: preliminary version %s stays a candidate (%s); no more preliminaries",
                self.release.job_id,
                registration.version.version,
                registration.note,
            )
            return
        self.published.append(registration)
        self.in_service = registration.version.version
        logger.info(
            "job %d: preliminary version %s in service from %s, dev F1 %s (%.1f s)",
            self.release.job_id,
            registration.version.version,
            point.describe(),
            format_score(point.dev_f1),
            seconds,
        )

    def _publish(
        self,
        point: PreliminaryPoint,
        started: float,
        model: keras.Model,
        trained_with: ModelMetadata | None,
    ) -> Registration:
        from worker.loop import prepare_serving_graph  # the final version's own step

        release = self.release
        target = release.registry.reserve_folder()
        metadata = self._folder_metadata(point, target.name, trained_with)
        save_model_folder(model, release.encoder.vocab_path, metadata, target)
        # Before it goes into service, so the app's switch to it imports no TensorFlow.
        prepare_serving_graph(target, target.name)
        summary = {
            **copy.deepcopy(release.summary),
            PRELIMINARY_KEY: True,
            PRELIMINARY_POINT_KEY: point.to_json(release.job_id, time.perf_counter() - started),
        }
        reason = (
            f"preliminary version of job {release.job_id} at {point.describe()} (dev F1 "
            f"{format_score(point.dev_f1)}), in service while the job trains on"
        )
        return release.registry.register_folder(
            target,
            summary=summary,
            decision=PromotionDecision(True, reason),
            expected_serving=self.in_service,
            job_id=release.job_id,
        )

    def _folder_metadata(
        self, point: PreliminaryPoint, version: str, trained_with: ModelMetadata | None
    ) -> ModelMetadata:
        """``trained_with``: the first model's own metadata (its recipe, windows, history);
        None: the job's recipe, as far as it has trained."""
        metadata = copy.deepcopy(trained_with or self._metadata)
        metadata.version = version
        metadata.parent = self.release.parent
        metadata.metrics = {"dev": dict(point.dev)}  # no test scoring: it would cost a pass
        where = {"epoch": point.epoch, "step": point.step, "epoch_end": point.epoch_end}
        if point.stage:
            where["stage"] = point.stage
        history = metadata.training.get("history", []) if trained_with else self.history
        metadata.training = {**metadata.training, "preliminary": where, "history": list(history)}
        metadata.data = {**self.release.files, "training_data": copy.deepcopy(self.release.summary)}
        return metadata
