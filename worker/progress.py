"""A training job's progress, reported every step; cancellation heard within one step."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import keras

from curation.jobs import JobSignal, Progress
from tagger.scoring import format_score

WORKER_STOPPING = "worker-stopping"  # JobStopped.signal when the worker itself is told to stop
FIRST_MODEL_PHASE = "quick first model"  # the progress phase while a first job trains it

Reporter = Callable[[Progress, tuple[int, int, float] | None], JobSignal]


class JobStopped(Exception):
    """Training stopped early; ``signal`` says why (cancelled, lost, worker stopping)."""

    def __init__(self, signal: JobSignal | str, step: int = 0) -> None:
        super().__init__(f"job stopped ({signal}) after step {step}")
        self.signal = signal
        self.step = step


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
        phase: str = "training",
    ) -> None:
        super().__init__()
        self.report = report
        self.step_delay_s = step_delay_s
        self.clock = clock
        self.progress = Progress(phase=phase)
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
        dev_f1 = record["dev"]["f1"]  # None where the dev sentences have no mention
        if dev_f1 is not None:
            best = self.best_dev_f1
            self.best_dev_f1 = dev_f1 if best is None else max(best, dev_f1)
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
            "epoch %d: loss %.4f, dev F1 %s (%.0f s)",
            record["epoch"],
            record["loss"],
            format_score(dev_f1),
            record["seconds"],
        )
        self._send(None)

    def _send(self, loss_point: tuple[int, int, float] | None) -> None:
        signal = self.report(self.progress, loss_point)
        if signal != JobSignal.CONTINUE:
            self.model.stop_training = True
            raise JobStopped(signal, self.progress.step)
