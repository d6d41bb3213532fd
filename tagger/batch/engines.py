"""Where the documents are tagged: in this process, or on Ray (a local instance or a cluster).

Both engines read each input with :func:`tagger.batch.sources.source_rows`, tag batches
of rows with :class:`tagger.batch.tagging.DocumentTagger` and hand the tagged rows to the
same :class:`tagger.batch.output.Collector`, so their Parquet output is the same.

On Ray, inputs are read by tasks (``flat_map``, one input per block) and tagged by a pool
of actors (``map_batches`` with a callable class: one model and one ONNX Runtime session
per actor, a GPU each where the cluster has GPUs). Ray Data restarts an actor that dies
and retries its batch (its defaults for actor pools: ``max_restarts=-1``,
``max_task_retries=-1``); the collector keeps a row seen twice once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tagger.batch.output import Collector
from tagger.batch.sources import ROW_COLUMNS, InputSource, rows_of_source_item, source_rows
from tagger.batch.tagging import DocumentTagger
from tagger.errors import TaggerError


class EngineSetupError(TaggerError, RuntimeError):
    """An engine that cannot start here (Ray missing, a cluster unreachable)."""


@dataclass(frozen=True)
class EngineSettings:
    """How an engine tags.

    Args:
        model: the model folder every worker loads.
        batch_size: documents per batch handed to a tagger.
        workers: taggers at once (Ray actors; the local engine has one).
        threads: windows each tagger's ONNX Runtime runs at once (None: all cores, local;
            one per actor on Ray, as Ray reserves one CPU per actor).
        address: a Ray cluster (``ray://host:10001`` or ``host:6379``); None starts a
            local instance on the loopback interface.
        tagger_class: what tags a batch (tests put a tagger that fails here).
    """

    model: str
    batch_size: int = 32
    workers: int = 1
    threads: int | None = None
    address: str | None = None
    tagger_class: type[DocumentTagger] = DocumentTagger


Engine = Callable[[Sequence[InputSource], Collector, EngineSettings], None]


def _columns(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    return {name: np.asarray([row[name] for row in rows], dtype=object) for name in ROW_COLUMNS}


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_local(
    sources: Sequence[InputSource], collector: Collector, settings: EngineSettings
) -> None:
    """Tag in this process, one input after another (the embedded default)."""
    if not sources:
        return
    tagger = settings.tagger_class(settings.model, threads=settings.threads)
    for source in sources:
        for rows in _batches(source_rows(source), settings.batch_size):
            collector.add(tagger(_columns(rows)))


def _start_ray(address: str | None) -> tuple[Any, bool]:
    try:
        import ray
    except ImportError:
        raise EngineSetupError(
            "--engine ray needs Ray, which is not installed",
            fix="pip install -r requirements-ray.txt (or use --engine local)",
        ) from None
    # Ray's notices would break into the batch command's progress bar; errors still show.
    logging.getLogger("ray").setLevel(logging.ERROR)
    if ray.is_initialized():
        return ray, False
    package = Path(__file__).resolve().parents[1]
    try:
        if address:
            # The cluster's nodes get this version of the `tagger` package with the job;
            # what it imports (ONNX Runtime, tokenizers, spaCy) must be installed there.
            ray.init(
                address=address,
                log_to_driver=False,
                logging_level=logging.ERROR,
                runtime_env={"py_modules": [package]},
            )
        else:
            # Loopback only: a local instance needs no network and offers nothing on one.
            path = os.pathsep.join(
                filter(None, [str(package.parent), os.environ.get("PYTHONPATH")])
            )
            ray.init(
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                _node_ip_address="127.0.0.1",
                runtime_env={"env_vars": {"PYTHONPATH": path}},
            )
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise EngineSetupError(
            f"cannot connect to the Ray cluster at {address} ({error})"
            if address
            else f"cannot start a local Ray instance ({error})",
            fix="check --address (ray status on the head node prints it), or use --engine local",
        ) from None
    return ray, True


def run_ray(sources: Sequence[InputSource], collector: Collector, settings: EngineSettings) -> None:
    """Tag on Ray Data: reading tasks, then a pool of tagging actors, streamed."""
    if not sources:
        return
    ray, started = _start_ray(settings.address)
    try:
        import ray.data

        logging.getLogger("ray.data").setLevel(logging.ERROR)  # configured on import
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the batch command draws its own
        context.print_on_execution_start = False
        gpus = ray.cluster_resources().get("GPU", 0)
        items = [{"path": s.path, "kind": s.kind, "name": s.name} for s in sources]
        # Reading reserves no CPU: the tagging actors may hold every CPU there is (two
        # actors on two cores), and reads that waited for one would never run (seen: a
        # run that hung with both actors idle). Parsing costs little next to the model.
        rows = ray.data.from_items(items, override_num_blocks=len(items)).flat_map(
            rows_of_source_item, num_cpus=0
        )
        tagged = rows.map_batches(
            settings.tagger_class,
            fn_constructor_kwargs={"model": settings.model, "threads": settings.threads or 1},
            batch_size=settings.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=settings.workers),
            num_cpus=settings.threads or 1,
            num_gpus=1 if gpus else None,
        )
        for batch in tagged.iter_batches(batch_size=None, batch_format="numpy"):
            collector.add(batch)
    finally:
        if started:
            ray.shutdown()


# The engines, by the name `--engine` takes.
ENGINES: dict[str, Engine] = {"local": run_local, "ray": run_ray}
