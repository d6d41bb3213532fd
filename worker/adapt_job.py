"""An adaptation job: the encoder's masked-LM pretraining continued on a collection's text.

The collection's text is written to ``encoders/adapt-job-<id>.txt`` (one document, or
one BIO sentence, a line), then :func:`training.adapt.adapt` trains on it and writes the
encoder folder ``encoders/adapt-job-<id>/`` beside the registry's model versions. The
job reports progress every step (phase ``adapting``, step, loss, ETA) and stops within
one step when cancelled or when the worker stops. A training from the encoder then
starts from the folder (the Training page offers it; :class:`curation.jobs.TrainJobOptions`
``encoder``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from curation.adaptation import AdaptJobOptions, adapted_encoder_folder
from curation.collections import CollectionStore
from curation.jobs import Job, JobOptionsError, JobQueue, JobSignal, Progress
from tagger.bio import write_bytes_atomic
from tagger.encoders import Encoder, load_encoder
from worker.progress import WORKER_STOPPING, JobStopped

ADAPT_PHASE = "adapting"
EncoderLoader = Callable[[str | None], Encoder]


@dataclass
class AdaptJobRunner:
    """Runs one claimed adaptation job; :meth:`run` returns the job's closing message."""

    queue: JobQueue
    collections: CollectionStore
    registry_root: Path
    job: Job
    worker: str
    encoder_spec: str | None = None
    load_encoder: EncoderLoader = load_encoder
    step_delay_s: float = 0.0
    stopping: Callable[[], bool] = lambda: False
    log: logging.Logger = field(default_factory=lambda: logging.getLogger(__name__))
    progress: Progress = field(default_factory=lambda: Progress(phase="preparing"))

    def run(self) -> str:
        from training.adapt import AdaptSettings, adapt, read_text_files

        options = AdaptJobOptions.from_json(self.job.options, job_id=self.job.id)
        folder = adapted_encoder_folder(self.registry_root, self.job.id)
        text = self._write_text(options.collection, folder.with_name(folder.name + ".txt"))
        self._send(self.progress)
        encoder = self.load_encoder(self.encoder_spec)
        longest = int(encoder.backbone.max_sequence_length)
        settings = AdaptSettings(
            steps=options.max_steps,
            epochs=options.epochs,
            max_tokens=min(AdaptSettings.max_tokens, longest),
        )
        started = time.monotonic()

        def on_start(total_steps: int, step: int) -> None:
            self.progress = dataclasses.replace(
                self.progress, phase=ADAPT_PHASE, step=step, total_steps=total_steps
            )

        def on_step(step: int, loss: float) -> None:
            if self.step_delay_s:
                time.sleep(self.step_delay_s)  # fault tests: a step slow enough to cancel
            remaining = max(self.progress.total_steps - step, 0)
            elapsed = time.monotonic() - started
            self.progress = dataclasses.replace(
                self.progress, step=step, loss=loss, eta_s=round(elapsed / step * remaining, 1)
            )
            self._send(self.progress, (step, 1, loss))

        result = adapt(
            encoder,
            read_text_files([text]),
            settings,
            folder,
            on_step=on_step,
            on_start=on_start,
            progress=False,
        )
        record = result.record
        return (
            f"Encoder adapted on {options.collection} ({record['sentences']:,} lines, "
            f"{record['steps']} steps, masked-LM loss {record['final_mlm_loss']:.3f}): "
            "on the Training page, train from it with Start from: the pretrained encoder, "
            "then Encoder."
        )

    def _write_text(self, collection: str, path: Path) -> Path:
        lines = list(self.collections.text_lines(collection))
        if not lines:
            raise JobOptionsError(
                f"collection {collection!r} has no text to adapt the encoder on",
                where=f"job {self.job.id}",
                fix="import abstracts into it first, or pick another collection",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
        words = sum(len(line.split()) for line in lines)
        self.log.info(
            "job %d: %d lines (%d words) of collection %r in %s",
            self.job.id,
            len(lines),
            words,
            collection,
            path,
        )
        return path

    def _send(self, progress: Progress, loss_point: tuple[int, int, float] | None = None) -> None:
        if self.stopping():
            raise JobStopped(WORKER_STOPPING, progress.step)
        signal = self.queue.heartbeat(
            self.job.id, self.worker, progress=progress, loss_point=loss_point
        )
        if signal != JobSignal.CONTINUE:
            raise JobStopped(signal, progress.step)
