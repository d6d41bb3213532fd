"""Requests that arrive together are tagged together: one ``Tagger.tag_many`` call.

Each request puts a job on a queue and awaits its future. One worker coroutine takes the
first job waiting, gives the others a few milliseconds to arrive, takes every job then
waiting (up to ``max_batch_texts`` texts), and runs them in one call on the one tagging
thread; the event loop stays free to accept requests meanwhile, and the jobs that arrive
during a call form the next batch. The tagger is looked up once per batch, so a batch
finishes on the model it started with even if another is swapped in meanwhile.

Example (a stand-in tagger that upper-cases, to show the batching, not the tagging):

>>> import asyncio
>>> class Shouting:
...     version = "demo"
...     calls = 0
...     def tag_many(self, texts):
...         Shouting.calls += 1
...         return [[text.upper()] for text in texts]
>>> async def three_requests_at_once():
...     batcher = MicroBatcher(lambda: Shouting(), max_batch_texts=8, max_wait_s=0.01)
...     await batcher.start()
...     try:
...         return await asyncio.gather(*(batcher.tag_texts([w]) for w in ("a", "b", "c")))
...     finally:
...         await batcher.stop()
>>> [tagged.spans for tagged in asyncio.run(three_requests_at_once())], Shouting.calls
([[['A']], [['B']], [['C']]], 1)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tagger.errors import TaggerError

if TYPE_CHECKING:
    from tagger.spans import Span
    from tagger.tagger import Tagger

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaggedTexts:
    """The spans of each text of one request, and the model version that found them."""

    version: str
    spans: list[list[Span]]


@dataclass(frozen=True)
class TaggedBio:
    """A BIO document with the predicted labels, and the model version that chose them."""

    version: str
    bio: str


@dataclass
class _TextsJob:
    texts: Sequence[str]
    future: asyncio.Future[TaggedTexts] = field(repr=False)


@dataclass
class _BioJob:
    data: bytes
    source: str
    future: asyncio.Future[TaggedBio] = field(repr=False)


_Job = _TextsJob | _BioJob


class MicroBatcher:
    """Tags the texts of concurrent requests in shared ``tag_many`` calls, off the loop.

    Args:
        current_tagger: the tagger to use now; called once per batch (a hot swap
            changes what it returns, never a batch under way).
        max_batch_texts: the most texts one call takes from several requests; a request
            with more is tagged alone. A BIO document is always tagged alone.
        max_wait_s: how long the first job waits for others to join its batch.
    """

    def __init__(
        self,
        current_tagger: Callable[[], Tagger],
        *,
        max_batch_texts: int = 64,
        max_wait_s: float = 0.005,
    ) -> None:
        self._current_tagger = current_tagger
        self._max_batch_texts = max_batch_texts
        self._max_wait_s = max_wait_s
        self._queue: asyncio.Queue[_Job] | None = None
        self._held: _Job | None = None  # taken from the queue, but did not fit the batch
        self._worker: asyncio.Task[None] | None = None
        self._running: list[_Job] = []  # the batch on the tagging thread now
        self._executor: ThreadPoolExecutor | None = None
        self.batches = 0
        self.jobs = 0

    async def start(self) -> None:
        """Start the worker on the running event loop (the app's lifespan calls this)."""
        self._queue = asyncio.Queue()
        # One thread: the model runs one batch at a time, and batches form while it runs.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tagger-serve")
        self._worker = asyncio.create_task(self._work(), name="tagger-serve-batcher")

    async def stop(self) -> None:
        """Stop the worker; jobs still waiting are cancelled."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        pending = [*self._running, *([self._held] if self._held else [])]
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for job in pending:
            job.future.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def tag_texts(self, texts: Sequence[str]) -> TaggedTexts:
        """The spans of each of ``texts``, tagged with whatever requests arrive with them.

        Args:
            texts: the texts of one request.
        """
        future: asyncio.Future[TaggedTexts] = asyncio.get_running_loop().create_future()
        self._submit(_TextsJob(texts, future))
        return await future

    async def tag_bio(self, data: bytes, source: str) -> TaggedBio:
        """A BIO document back with the predicted labels (``python -m tagger --format bio``).

        Args:
            data: the BIO document as sent.
            source: its name in error messages, e.g. ``request body``.

        Raises:
            BioFormatError: the document is not BIO; the message names the line.
        """
        future: asyncio.Future[TaggedBio] = asyncio.get_running_loop().create_future()
        self._submit(_BioJob(data, source, future))
        return await future

    def _submit(self, job: _Job) -> None:
        if self._queue is None:
            raise RuntimeError("the batcher is not started; run the app with its lifespan")
        self._queue.put_nowait(job)

    def _size(self, job: _Job) -> int:
        return len(job.texts) if isinstance(job, _TextsJob) else self._max_batch_texts

    async def _next_batch(self) -> list[_Job]:
        assert self._queue is not None
        first = self._held if self._held is not None else await self._queue.get()
        self._held = None
        batch, size = [first], self._size(first)
        if size < self._max_batch_texts and self._queue.empty():
            # A sleep, then what came: no wait_for on get(), which can drop an item
            # that arrives just as the wait times out.
            await asyncio.sleep(self._max_wait_s)
        while size < self._max_batch_texts and not self._queue.empty():
            job = self._queue.get_nowait()
            if size + self._size(job) > self._max_batch_texts:
                self._held = job
                break
            batch.append(job)
            size += self._size(job)
        return batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            live = [job for job in batch if not job.future.done()]  # a client that left
            if not live:
                continue
            tagger = self._current_tagger()
            self._running = live
            try:
                outcomes = await loop.run_in_executor(self._executor, _run_batch, tagger, live)
            except Exception as error:  # the thread pool itself failed; the loop goes on
                logger.exception("the tagging thread failed")
                outcomes = [error] * len(live)
            finally:
                self._running = []
            self.batches += 1
            self.jobs += len(live)
            for job, outcome in zip(live, outcomes, strict=True):
                if job.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)


def _run_batch(tagger: Tagger, batch: list[_Job]) -> list[Any]:
    """Each job's result or exception, in order; runs on the tagging thread."""
    from tagger.__main__ import tag_bio

    outcomes: dict[int, Any] = {}
    text_jobs = [(index, job) for index, job in enumerate(batch) if isinstance(job, _TextsJob)]
    try:
        outcomes.update(_tag_texts_together(tagger, text_jobs))
    except Exception:
        # One request's text may be what fails: alone, each of the others still succeeds.
        for index, job in text_jobs:
            try:
                outcomes.update(_tag_texts_together(tagger, [(index, job)]))
            except Exception as error:
                logger.exception("tagging the %d texts of a request failed", len(job.texts))
                outcomes[index] = error
    for index, job in enumerate(batch):
        if isinstance(job, _BioJob):
            try:
                outcomes[index] = TaggedBio(tagger.version, tag_bio(tagger, job.data, job.source))
            except Exception as error:
                if not isinstance(error, TaggerError):  # a bad document is the client's
                    logger.exception("tagging a BIO document failed")
                outcomes[index] = error
    return [outcomes[index] for index in range(len(batch))]


def _tag_texts_together(
    tagger: Tagger, jobs: list[tuple[int, _TextsJob]]
) -> dict[int, TaggedTexts]:
    """One ``tag_many`` call for the texts of all ``jobs``, split back per job."""
    texts = [text for _, job in jobs for text in job.texts]
    spans = iter(tagger.tag_many(texts) if texts else [])
    return {
        index: TaggedTexts(tagger.version, [next(spans) for _ in job.texts]) for index, job in jobs
    }
