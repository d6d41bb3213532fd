"""One batch run: check the inputs, skip the complete ones, tag the rest, report.

Example (``tiny_model_dir`` stands for a model folder such as ``models/default``):

>>> import pathlib, tempfile, pandas
>>> work = pathlib.Path(tempfile.mkdtemp())
>>> _ = (work / "a.jsonl").write_text(
...     '{"id": 1, "title": "Seizures.", "text": "Cocaine-induced seizures."}\\n{"id": 2}\\n')
>>> report = run_batch([work / "a.jsonl"], work / "out", model=tiny_model_dir, progress=False)
>>> report.documents, report.problems, report.skipped
(1, 1, [])
>>> list(pandas.read_parquet(work / "out").columns)[:4]
['input', 'document_id', 'start', 'end']
>>> run_batch([work / "a.jsonl"], work / "out", model=tiny_model_dir, progress=False).skipped
['a.jsonl']
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tagger.batch.engines import ENGINES, EngineSettings
from tagger.batch.output import Collector, InputResult, OutputFolder
from tagger.batch.sources import InputSource, discover_inputs, estimate_documents
from tagger.batch.tagging import DocumentTagger
from tagger.errors import TaggerError
from tagger.model_folder import read_metadata
from tagger.references import ModelReference, resolve_model


class BatchRunError(TaggerError, RuntimeError):
    """A run that ended without writing every input; what is written stays."""


@dataclass
class BatchReport:
    """What a run did: inputs tagged and skipped, documents, words, spans, bad records."""

    model_version: str
    engine: str
    tagged: list[InputResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problems: int = 0
    errors_file: Path | None = None
    seconds: float = 0.0

    @property
    def documents(self) -> int:
        return sum(result.documents for result in self.tagged)

    @property
    def words(self) -> int:
        return sum(result.words for result in self.tagged)

    @property
    def spans(self) -> int:
        return sum(result.spans for result in self.tagged)


def run_batch(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    model: ModelReference | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int = 1,
    batch_size: int = 32,
    threads: int | None = None,
    progress: bool = True,
    tagger_class: type[DocumentTagger] = DocumentTagger,
) -> BatchReport:
    """Tag every input not already complete in ``out``; see ``python -m tagger.batch``.

    Args:
        inputs: JSONL, PubMed XML (``.xml``, ``.xml.gz``), ``.txt`` files (one document
            per line) and folders of ``.txt`` files (one abstract each).
        out: the output folder (``tagger.batch.output``).
        model: a model folder, a version id or ``current`` (None: the version in service).
        engine: a key of ``tagger.batch.engines.ENGINES``.
        address: the Ray cluster for ``engine="ray"`` (None: a local instance).
        workers: tagging actors on Ray.
        batch_size: documents per batch.
        threads: windows each tagger runs at once.
        progress: draw a progress bar (documents/s and ETA) on stderr.
        tagger_class: what tags a batch of rows.
    """
    if engine not in ENGINES:
        raise TaggerError(
            f"the engine {engine!r} is unknown", fix=f"use --engine {' or --engine '.join(ENGINES)}"
        )
    if workers < 1 or batch_size < 1:
        raise TaggerError("--workers and --batch-size must be 1 or more", fix="give a count")
    if address and engine != "ray":
        raise TaggerError("--address is a Ray cluster's", fix="add --engine ray, or drop --address")
    sources = discover_inputs(inputs)
    folder = resolve_model(model)
    version = read_metadata(folder).version
    output = OutputFolder(Path(out), version)
    pending: list[InputSource] = [s for s in sources if not output.is_complete(s)]
    report = BatchReport(version, engine, skipped=[s.name for s in sources if s not in pending])
    started = time.perf_counter()
    from tqdm import tqdm

    total = sum(estimate_documents(source) for source in pending)
    with tqdm(total=total, unit="doc", disable=not progress, desc="tagging", smoothing=0.1) as bar:
        collector = Collector(output, pending, on_documents=bar.update)
        settings = EngineSettings(str(folder), batch_size, workers, threads, address, tagger_class)
        ENGINES[engine](pending, collector, settings)
        bar.total = bar.n  # the estimate counted lines; the bar ends at what was tagged
    report.tagged = collector.results
    report.seconds = time.perf_counter() - started
    report.problems, report.errors_file = output.write_errors_file(sources)
    unfinished = collector.unfinished()
    if unfinished:
        raise BatchRunError(
            f"{len(unfinished)} input(s) were not completed: {', '.join(unfinished)}",
            fix="run the same command again; the complete inputs are skipped",
        )
    return report
