"""Words per second of the app's paths against the library's own, in one run.

What a curator waits for should run at the speed BENCHMARKS.md gives for the library.
This measures, with one loaded model and one thread count, over BC5CDR-disease test:

- ``library``: ``Tagger.tag_words`` over every test sentence (one untimed warm-up pass
  first, as the serving benchmark does), the reference every ratio divides by;
- ``inspect``: the Inspect page's calls without Streamlit: ``app.inputs.read_bio_upload``
  on the file's bytes, then ``app.tagging.tag_file`` with a progress callback (the page
  draws a bar with it), which tags and compares with the file's labels; its labels are
  checked against the library's. ``render_s`` is one run of the page in Streamlit's
  ``AppTest`` with that result already in the session (so nothing is tagged again),
  what the server does before the browser draws; ``render_all_sentences_s`` the rerun
  that lists all sentences. A browser's own drawing is not measured;
- ``tag_page``: the Tag page's calls (``app.inputs.clean_text``, then
  ``app.tagging.tag_text``) on a ~250-word abstract, the median of 20 after 3 warm-ups,
  beside ``Tagger.tag`` on the same text; ``tag_page_pasted``: abstracts pasted together
  as one text up to the page's length limit (the page takes one text; several abstracts
  pasted together are tagged as one passage), the median of 3;
- ``collections``: the test set imported as a BIO collection of ``--doc-sentences``
  sentence documents into a temporary database, then tagged by the worker's
  ``worker.collection_tagging.CollectionTagger`` step by step until nothing is left,
  database reads and writes included (``tagger_s``: the part spent in the tagger).

With ``--live``, also ``inspect_live``: the Inspect page in a real Streamlit server,
started from the repository root as ``make run`` starts it (so with its
``.streamlit/config.toml``; ``--live-watcher`` overrides the file watcher), driven by
headless Chromium: the seconds from handing it test.tsv to the scores on the screen,
what the curator waits for, and the page's own tagging seconds from its caption; the
server loads the model itself, on the same cores. ``idle_server_cpu_s_per_s`` is the
CPU the server used per second while it sat idle on that page. And ``library_end``: a
second timed library pass at the end, to show how much the machine's speed drifted.

Every path reports ``words_per_s`` and ``ratio`` (its words/s over the library's in the
same run). ``--threads N`` runs the process on N cores (ONNX Runtime uses the cores the
process may run on); the JSON records the thread count the runtime used.

Usage::

    nice -n 10 python -m benchmarks.app_paths --model models/default \\
        --data-dir $BC5CDR_DIR --threads 2 --out benchmarks/results/app_paths.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from app.state import InspectResult
    from tagger.bio import Sentence
    from tagger.tagger import Tagger

REPO = Path(__file__).resolve().parent.parent
APP_SCRIPT = REPO / "streamlit_app.py"
LATENCY_RUNS = 20
PASTED_RUNS = 3
IDLE_SECONDS = 10.0


def pin_threads(threads: int | None) -> int:
    """Restrict this process to ``threads`` of the cores it may use; the count it runs on."""
    available = sorted(os.sched_getaffinity(0))
    if threads is None:
        return len(available)
    if not 1 <= threads <= len(available):
        raise SystemExit(
            f"--threads {threads}: this process may run on {len(available)} cores; "
            f"pass a number from 1 to {len(available)}"
        )
    os.sched_setaffinity(0, available[:threads])
    return threads


def _ratio(words_per_s: float, library: float) -> float:
    return round(words_per_s / library, 3) if library > 0 else 0.0


def _rate(words: int, seconds: float) -> float:
    return round(words / max(seconds, 1e-9), 1)


def abstract_of(sentences: Sequence[Sentence], first: int, min_words: int = 250) -> tuple[str, int]:
    """Raw text of the sentences from ``first`` on, until ``min_words`` words; the text and
    how many sentences it took (0 when none are left)."""
    from tagger.text import detokenize

    words: list[str] = []
    taken = 0
    for sentence in sentences[first:]:
        words.extend(sentence.words)
        taken += 1
        if len(words) >= min_words:
            break
    return (detokenize(words)[0] if words else ""), taken


def pasted_abstracts(sentences: Sequence[Sentence], max_chars: int) -> tuple[str, int]:
    """Consecutive ~250-word abstracts joined by blank lines while within ``max_chars``;
    the text and how many abstracts it holds."""
    texts: list[str] = []
    first = 0
    length = 0
    while first < len(sentences):
        text, taken = abstract_of(sentences, first)
        if texts and length + 2 + len(text) > max_chars:
            break
        texts.append(text)
        length += len(text) + (2 if len(texts) > 1 else 0)
        first += taken
    return "\n\n".join(texts), len(texts)


def collection_file(sentences: Sequence[Sentence], doc_sentences: int) -> bytes:
    """The sentences as one BIO file, a ``-DOCSTART-`` line before every document."""
    from tagger.bio import DOCSTART, format_bio

    parts = [
        f"{DOCSTART} O\n\n" + format_bio(sentences[start : start + doc_sentences])
        for start in range(0, len(sentences), doc_sentences)
    ]
    return "".join(parts).encode("utf-8")


class TimedTagger:
    """Forwards to a tagger and adds up the seconds of its top-level tagging calls."""

    def __init__(self, tagger: Tagger) -> None:
        self.tagger = tagger
        self.seconds = 0.0
        self.calls = 0

    def _timed(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1

    def tag_words(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(self.tagger.tag_words, *args, **kwargs)

    def analyze_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(self.tagger.analyze_many, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tagger, name)


def measure_library(
    tagger: Tagger, words: Sequence[Sequence[str]], *, warm_up: bool = True
) -> dict[str, Any]:
    """``Tagger.tag_words`` over all sentences: a warm-up pass, then the timed one."""
    if warm_up:
        tagger.tag_words(words)
    started = time.perf_counter()
    predictions = tagger.tag_words(words)
    seconds = time.perf_counter() - started
    n_words = sum(len(sentence) for sentence in words)
    return {
        "what": "Tagger.tag_words over every test sentence (after one warm-up pass)",
        "seconds": round(seconds, 3),
        "words_per_s": _rate(n_words, seconds),
        "windows": len(tagger._predictor.windows_for(words)),
        "labels": [labels for labels, _ in predictions],
    }


def measure_inspect(
    tagger: Tagger, test_file: Path, library_labels: Sequence[Sequence[str]], max_bytes: int
) -> tuple[dict[str, Any], InspectResult, bytes]:
    """The Inspect page's two calls, as the page makes them, without Streamlit."""
    from app import inputs, tagging
    from app.evaluation import compare

    data = test_file.read_bytes()
    calls: list[tuple[int, int]] = []
    started = time.perf_counter()
    parsed = inputs.read_bio_upload(test_file.name, data, max_bytes=max_bytes)
    parsed_at = time.perf_counter()
    result = tagging.tag_file(
        tagger,
        parsed.sentences,
        file_name=test_file.name,
        digest=tagging.file_digest(data),
        progress=lambda done, of: calls.append((done, of)),
        notes=parsed.notes,
    )
    ended = time.perf_counter()
    compare_started = time.perf_counter()
    compare(result.gold, result.predicted)
    compare_s = time.perf_counter() - compare_started
    n_words = sum(len(sentence.words) for sentence in parsed.sentences)
    report = {
        "what": "app.inputs.read_bio_upload + app.tagging.tag_file (tagging and comparison "
        "with the file's labels), as the Inspect page calls them",
        "seconds": round(ended - started, 3),
        "words_per_s": _rate(n_words, ended - started),
        "parse_s": round(parsed_at - started, 3),
        "tag_file_s": round(ended - parsed_at, 3),
        "compare_s": round(compare_s, 3),
        "progress_calls": len(calls),
        "same_labels_as_library": [list(labels) for labels in result.predicted]
        == [list(labels) for labels in library_labels],
    }
    return report, result, data


@contextlib.contextmanager
def _environment(values: dict[str, str | None]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def measure_inspect_render(
    tagger: Tagger, result: InspectResult, data: bytes, work: Path
) -> dict[str, float]:
    """One Streamlit run of the Inspect page with ``result`` already in the session (the
    page finds it by the file's digest and tags nothing), and the rerun listing every
    sentence; in ``AppTest``, so the protobuf messages are built but no browser draws."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from app import page_inspect, services, state

    built = services.build_tagger
    services.build_tagger = lambda folder: tagger  # type: ignore[assignment,return-value]
    environment: dict[str, str | None] = {
        "TAGGER_MODEL_DIR": str(tagger.folder),
        "TAGGER_DATA_DIR": str(work / "app-data"),
        "TAGGER_REGISTRY_DIR": str(work / "app-models"),
        "TAGGER_START_WORKER": "0",
        "TAGGER_DB_URL": None,
    }
    try:
        with _environment(environment):
            st.cache_resource.clear()
            app = AppTest.from_file(str(APP_SCRIPT), default_timeout=600)
            app.session_state["annotator"] = "benchmark"
            app.run()
            app.switch_page("app/page_inspect.py").run()
            app.session_state[state.INSPECT_RESULT] = result
            app.file_uploader(key=page_inspect.UPLOAD_KEY).set_value(
                (result.file_name, data, "text/tab-separated-values")
            )
            started = time.perf_counter()
            app.run()
            render_s = time.perf_counter() - started
            _check_page(app, result)
            app.toggle(key=page_inspect.ONLY_DISAGREEING_KEY).set_value(False)
            started = time.perf_counter()
            app.run()
            render_all_s = time.perf_counter() - started
            _check_page(app, result)
    finally:
        services.build_tagger = built
        st.cache_resource.clear()
    return {"render_s": round(render_s, 3), "render_all_sentences_s": round(render_all_s, 3)}


def _check_page(app: Any, result: InspectResult) -> None:
    """The run showed ``result``'s scores, or the render time measured something else."""
    if app.exception:
        raise RuntimeError(f"the Inspect page failed in AppTest: {app.exception[0].value}")
    shown = {metric.label: metric.value for metric in app.metric}
    if shown.get("Sentences") != f"{len(result.gold):,}":
        raise RuntimeError(
            f"the Inspect page did not show the tagged file ({shown}); the render time "
            "would not be the page's"
        )


def measure_tag_page(tagger: Tagger, text: str, n_words: int, max_chars: int) -> dict[str, Any]:
    """The Tag page's calls on one abstract, against ``Tagger.tag`` on the same text."""
    from app import inputs, tagging
    from curation import text_source

    def page() -> None:
        cleaned = inputs.clean_text(text, max_chars=max_chars)
        tagging.tag_text(
            tagger, cleaned.text, source=text_source(cleaned.text), notes=cleaned.notes
        )

    def library() -> None:
        tagger.tag(text)

    medians: dict[str, float] = {}
    for name, call in (("library", library), ("page", page)):
        for _ in range(3):
            call()
        latencies = []
        for _ in range(LATENCY_RUNS):
            started = time.perf_counter()
            call()
            latencies.append(time.perf_counter() - started)
        medians[name] = statistics.median(latencies)
    return {
        "what": "app.inputs.clean_text + app.tagging.tag_text on one abstract, as the Tag "
        f"page calls them (median of {LATENCY_RUNS})",
        "abstract_words": n_words,
        "latency_ms_median": round(1000 * medians["page"], 1),
        "library_latency_ms_median": round(1000 * medians["library"], 1),
        "words_per_s": _rate(n_words, medians["page"]),
    }


def measure_pasted(tagger: Tagger, text: str, abstracts: int, max_chars: int) -> dict[str, Any]:
    """Several abstracts pasted as one text, tagged as the Tag page tags a text."""
    from app import inputs, tagging
    from curation import text_source

    cleaned = inputs.clean_text(text, max_chars=max_chars)
    seconds = []
    n_words = 0
    for _ in range(PASTED_RUNS):
        started = time.perf_counter()
        result = tagging.tag_text(
            tagger, cleaned.text, source=text_source(cleaned.text), notes=cleaned.notes
        )
        seconds.append(time.perf_counter() - started)
        n_words = sum(len(sentence.words) for sentence in result.sentences)
    median = statistics.median(seconds)
    return {
        "what": f"{abstracts} abstracts pasted as one text (at most {max_chars:,} characters) "
        f"through app.tagging.tag_text (median of {PASTED_RUNS})",
        "abstracts": abstracts,
        "characters": len(text),
        "words": n_words,
        "seconds": round(median, 3),
        "words_per_s": _rate(n_words, median),
    }


def measure_collections(
    tagger: Tagger,
    sentences: Sequence[Sentence],
    doc_sentences: int,
    work: Path,
    step_documents: int | None,
) -> dict[str, Any]:
    """The test set as a BIO collection, tagged by the worker's steps until none is left."""
    from curation import Curation
    from tagger.predict import WordPredictor
    from worker.collection_tagging import CollectionTagger

    curation = Curation.open(data_dir=work / "worker-data", registry_dir=work / "worker-models")
    curation.registry.adopt(tagger.folder, actor="benchmark")
    data = collection_file(sentences, doc_sentences)
    report = curation.collections.import_files(
        "benchmark", [("test.tsv", data)], imported_by="benchmark"
    )
    if report.problems:
        raise RuntimeError(f"the test set did not import as a collection: {report.problems[0]}")
    timed = TimedTagger(tagger)
    options: dict[str, Any] = {} if step_documents is None else {"batch_size": step_documents}
    collection_tagger = CollectionTagger(
        curation.collections,
        curation.registry,
        load_tagger=lambda folder: cast("Tagger", timed),
        **options,
    )
    steps = 0
    stored = 0
    started = time.perf_counter()
    while True:
        done = collection_tagger.step()
        if not done:
            break
        stored += done
        steps += 1
    seconds = time.perf_counter() - started
    tagged, total, _ = curation.collections.tagging_progress("benchmark")
    if tagged != total or stored != report.added:
        raise RuntimeError(f"the worker tagged {tagged} of {total} documents ({stored} stored)")
    words = [sentence.words for sentence in sentences]
    sizes = [min(doc_sentences, len(words) - s) for s in range(0, len(words), doc_sentences)]
    predictor = cast(WordPredictor, tagger._predictor)
    n_words = sum(len(sentence) for sentence in words)
    return {
        "what": f"worker CollectionTagger.step until done over the test set imported as "
        f"{report.added} documents of {doc_sentences} sentences (database included)",
        "documents": report.added,
        "doc_sentences": doc_sentences,
        "step_documents": collection_tagger.batch_size,
        "steps": steps,
        "seconds": round(seconds, 3),
        "seconds_per_step": round(seconds / max(steps, 1), 3),
        "tagger_s": round(timed.seconds, 3),
        "tagger_calls": timed.calls,
        "windows": len(predictor.windows_for(words, documents=sizes)),
        "words_per_s": _rate(n_words, seconds),
    }


def _process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) that process ``pid`` has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def live_server(
    model: Path, work: Path, watcher: str | None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The app's Streamlit server on ``model``, from the repository root; (url, process)."""
    from tests.e2e.streamlit_server import free_port, wait_until_healthy

    port = free_port()
    environment = {
        **os.environ,
        "TAGGER_MODEL_DIR": str(model.resolve()),
        "TAGGER_DATA_DIR": str(work / "live-data"),
        "TAGGER_REGISTRY_DIR": str(work / "live-models"),
        "TAGGER_START_WORKER": "0",
        "TAGGER_DB_URL": "",
        "PYTHONPATH": str(REPO),
    }
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT), "--server.headless", "true",
        "--server.port", str(port), "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    if watcher is not None:
        command += ["--server.fileWatcherType", watcher]
    log = work / "live-streamlit.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, cwd=REPO, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server, log)
        yield url, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def measure_inspect_live(
    model: Path, test_file: Path, n_words: int, work: Path, watcher: str | None
) -> dict[str, Any]:
    """The Inspect page in a real server and browser: upload, wait for the scores."""
    from tests.e2e.chromium import CHROMIUM, CHROMIUM_ARGS, missing_chromium

    missing = missing_chromium()
    if missing:
        return {"skipped": missing}
    from playwright.sync_api import sync_playwright

    warm_up = work / "warm-up.tsv"
    warm_up.write_text("Fever\tB-Disease\n.\tO\n\n", encoding="utf-8")
    upload = work / test_file.name
    upload.write_bytes(test_file.read_bytes())
    caption = re.compile(re.escape(upload.name) + r": .* mentions in the file")
    timeout_ms = 3_600_000
    with live_server(model, work, watcher) as (url, server), sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(f"{url}/inspect", wait_until="domcontentloaded")
            chooser = page.locator("input[type=file]")
            chooser.wait_for(state="attached", timeout=timeout_ms)
            chooser.set_input_files(str(warm_up))  # the server loads the model on this one
            page.get_by_text(re.compile(r"warm-up\.tsv: .* mentions in the file")).wait_for(
                timeout=timeout_ms
            )
            idle_from = _process_cpu_s(server.pid)
            time.sleep(IDLE_SECONDS)
            idle_cpu = _process_cpu_s(server.pid) - idle_from
            started = time.perf_counter()
            chooser.set_input_files(str(upload))
            shown = page.get_by_text(caption).first
            shown.wait_for(timeout=timeout_ms)
            seconds = time.perf_counter() - started
            text = shown.inner_text()
        finally:
            browser.close()
    page_seconds = re.search(r"· ([0-9.]+) s\s*$", text)
    return {
        "what": "the Inspect page in a Streamlit server (started as make run starts it) and "
        "headless Chromium: from handing it the file to the scores shown",
        "file_watcher": watcher or "the repository's .streamlit/config.toml",
        "seconds": round(seconds, 3),
        "words_per_s": _rate(n_words, seconds),
        "page_tagging_s": float(page_seconds.group(1)) if page_seconds else None,
        "page_tagging_words_per_s": (
            _rate(n_words, float(page_seconds.group(1))) if page_seconds else None
        ),
        "idle_server_cpu_s_per_s": round(idle_cpu / IDLE_SECONDS, 3),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from app.settings import AppSettings
    from tagger.bio import read_bio
    from tagger.tagger import Tagger

    threads = pin_threads(args.threads)
    test_file = args.data_dir / "test.tsv"
    sentences = read_bio(test_file)
    words = [sentence.words for sentence in sentences]
    n_words = sum(len(sentence) for sentence in words)
    settings = AppSettings.from_env({})
    tagger = Tagger.load(args.model, runtime=args.runtime, precision=args.precision)
    library = measure_library(tagger, words)
    library_labels = library.pop("labels")
    paths: dict[str, dict[str, Any]] = {"library": library}
    with tempfile.TemporaryDirectory(prefix="app-paths-") as folder:
        work = Path(folder)
        inspect, result, data = measure_inspect(
            tagger, test_file, library_labels, settings.max_upload_bytes
        )
        inspect.update(measure_inspect_render(tagger, result, data, work))
        paths["inspect"] = inspect
        text, taken = abstract_of(sentences, 0)
        paths["tag_page"] = measure_tag_page(
            tagger, text, sum(len(s.words) for s in sentences[:taken]), settings.max_text_chars
        )
        pasted, abstracts = pasted_abstracts(sentences, settings.max_text_chars)
        paths["tag_page_pasted"] = measure_pasted(
            tagger, pasted, abstracts, settings.max_text_chars
        )
        paths["collections"] = measure_collections(
            tagger, sentences, args.doc_sentences, work, args.step_documents
        )
        if args.live:
            live = measure_inspect_live(args.model, test_file, n_words, work, args.live_watcher)
            if "skipped" in live:
                print(f"inspect_live skipped: {live['skipped']}", file=sys.stderr)
            else:
                paths["inspect_live"] = live
        end = measure_library(tagger, words, warm_up=False)
        end.pop("labels")
        end["what"] = "Tagger.tag_words again, after every other path (the machine's drift)"
        paths["library_end"] = end
    reference = paths["library"]["words_per_s"]
    for path in paths.values():
        path["ratio"] = _ratio(path["words_per_s"], reference)
    runtime = tagger.runtime
    return {
        "model": str(args.model),
        "version": tagger.version,
        "data": str(test_file),
        "serving": tagger.describe_serving(),
        "threads": int(getattr(runtime, "threads", threads)),
        "cores": threads,
        "sentences": len(sentences),
        "words": n_words,
        "command": " ".join(["python -m benchmarks.app_paths", *sys.argv[1:]]),
        "paths": paths,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from tagger.runtimes import add_serving_arguments

    parser = argparse.ArgumentParser(prog="python -m benchmarks.app_paths", description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="a model folder")
    parser.add_argument("--data-dir", type=Path, required=True, help="holds test.tsv (BIO)")
    parser.add_argument("--out", type=Path, required=True, help="where the JSON goes")
    parser.add_argument("--threads", type=int, help="cores to run on (default: all allowed)")
    parser.add_argument(
        "--doc-sentences", type=int, default=10, help="sentences per collection document"
    )
    parser.add_argument(
        "--step-documents",
        type=int,
        help="documents per collection-tagging step (default: the worker's own)",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="also time the Inspect page in a Streamlit server and headless Chromium",
    )
    parser.add_argument(
        "--live-watcher",
        choices=("auto", "watchdog", "poll", "none"),
        help="the live server's --server.fileWatcherType (default: the repository's config)",
    )
    add_serving_arguments(parser)
    args = parser.parse_args(argv)
    if not (args.data_dir / "test.tsv").is_file():
        parser.error(f"{args.data_dir / 'test.tsv'} does not exist; pass the BC5CDR folder")
    if args.doc_sentences < 1:
        parser.error("--doc-sentences must be 1 or more")
    cores = os.sched_getaffinity(0)
    try:
        result = run(args)
    finally:
        os.sched_setaffinity(0, cores)  # --threads pins this process only while it measures
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    summary = ", ".join(
        f"{name} {path['words_per_s']:.0f} w/s ({path['ratio']:.2f}x)"
        for name, path in result["paths"].items()
    )
    print(f"{result['serving']}, {result['threads']} threads: {summary}")
    return result


if __name__ == "__main__":
    main()
