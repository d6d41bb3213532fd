"""A stand-in tagger for the app's tests: the real ``Tagger`` interface, no model.

It marks words from a small disease lexicon (confident) and words with disease-like
suffixes (unsure), using the real sentence and word splitting (``tagger.text``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tagger.spans import TaggedSentence
from tagger.text import split_text

CONFIDENT = frozenset(
    {
        "cardiomyopathy",
        "leukemia",
        "hypertension",
        "arrhythmia",
        "fever",
        "seizures",
        "hepatitis",
        "nephrotoxicity",
        "cardiotoxicity",
        "obesity",
        "failure",
        "injury",
    }
)
CONTINUES = frozenset({"failure", "injury", "disease", "syndrome", "dysfunction"})
UNSURE = frozenset({"dysfunction", "malignancies", "relapse", "neuropathy"})
UNSURE_SUFFIXES = ("itis", "emia", "osis", "oma")
FAKE_VERSION = "fake-1"


def _word_score(word: str) -> float:
    lower = word.lower()
    if lower in CONFIDENT:
        return 0.95
    if lower in UNSURE or (lower.endswith(UNSURE_SUFFIXES) and len(lower) > 5):
        return 0.45
    return 0.0


def fake_labels(words: Sequence[str]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    labels: list[str] = []
    scores: list[float] = []
    for word in words:
        score = _word_score(word)
        inside = bool(labels) and labels[-1] != "O" and word.lower() in CONTINUES
        if inside:
            labels.append("I-Disease")
            scores.append(max(score, 0.9))
        elif score:
            labels.append("B-Disease")
            scores.append(score)
        else:
            labels.append("O")
            scores.append(0.99)
    return tuple(labels), tuple(scores)


class FakeTagger:
    """Same public surface as ``tagger.Tagger``; counts calls so tests can see caching."""

    def __init__(self, version: str = FAKE_VERSION) -> None:
        self.version = version
        self.device = "CPU (fake)"
        self.serving_note: str | None = None
        self.metadata: dict[str, Any] = {"version": version, "created": "2025-01-01T00:00:00+00:00"}
        self.calls = 0

    @classmethod
    def load(cls, model_dir: str | Path) -> FakeTagger:
        metadata = json.loads((Path(model_dir) / "model.json").read_text())
        return cls(metadata.get("version", FAKE_VERSION))

    def tag_words(
        self,
        sentences: Sequence[Sequence[str]],
        *,
        batch_size: int = 64,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[tuple[tuple[str, ...], tuple[float, ...]]]:
        self.calls += 1
        results = []
        for done, words in enumerate(sentences, start=1):
            results.append(fake_labels(words))
            if progress is not None and (done % batch_size == 0 or done == len(sentences)):
                progress(done, len(sentences))
        return results

    def analyze(self, text: str) -> list[TaggedSentence]:
        self.calls += 1
        tagged = []
        for sentence in split_text(text):
            labels, scores = fake_labels(sentence.words)
            tagged.append(
                TaggedSentence(
                    sentence.words, sentence.offsets, sentence.start, sentence.end, labels, scores
                )
            )
        return tagged


def write_fake_model_folder(folder: Path, version: str = FAKE_VERSION) -> Path:
    """A folder that passes the app's "is there a model" check, for the fake."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps({"version": version}))
    return folder


REPO_ROOT = Path(__file__).resolve().parent.parent
_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def shown(markdown: str) -> str:
    """Markdown from the app as the curator reads it: without ``render.md``'s backslashes."""
    return _MARKDOWN_ESCAPE.sub(r"\1", markdown)


APP_SCRIPT = REPO_ROOT / "streamlit_app.py"


class WorkerStarts:
    """Stands in for ``app.services.start_worker``: records the calls, spawns nothing."""

    def __init__(self) -> None:
        self.calls: list[Path] = []

    def __call__(self, settings: Any) -> int | None:
        self.calls.append(settings.data_dir)
        return None


def isolate_app(tmp_path: Path, monkeypatch: Any) -> WorkerStarts:
    """Point the app's data, registry and database at ``tmp_path``; never spawn a worker."""
    from app import services

    monkeypatch.setenv("TAGGER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TAGGER_REGISTRY_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("TAGGER_DB_URL", raising=False)
    monkeypatch.delenv("TAGGER_START_WORKER", raising=False)
    starts = WorkerStarts()
    monkeypatch.setattr(services, "start_worker", starts)
    return starts


def make_app(
    tmp_path: Path,
    monkeypatch: Any,
    *,
    with_model: bool = True,
    factory: Callable[[Path], Any] | None = None,
    env: dict[str, str] | None = None,
) -> Any:
    """An AppTest of the whole app on a fake model and a fresh data folder.

    ``factory`` replaces ``app.services.build_tagger`` (default: a new FakeTagger);
    ``env`` adds settings. The registry and the database are in ``tmp_path`` and no
    worker process is ever started (:func:`isolate_app`). The annotator is preset to
    ``tester``; the first page is Tag text.
    """
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from app import services

    model_dir = tmp_path / "model"
    if with_model:
        write_fake_model_folder(model_dir)
    monkeypatch.setenv("TAGGER_MODEL_DIR", str(model_dir))
    isolate_app(tmp_path, monkeypatch)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(services, "build_tagger", factory or FakeTagger.load)
    st.cache_resource.clear()
    app = AppTest.from_file(str(APP_SCRIPT), default_timeout=180)
    app.session_state["annotator"] = "tester"
    return app


class ScriptedEditor:
    """Stands in for ``app.span_editor.span_editor``, which needs a browser.

    Records what each run mounted (item key and sentences) and returns the event
    queued with :meth:`send` on the next run only, as the real component delivers a
    trigger once. ``monkeypatch.setattr("app.span_editor.span_editor", editor)``: page
    scripts import it on every run, so they pick up the stand-in.
    """

    def __init__(self) -> None:
        self.mounted: list[tuple[str, tuple[Any, ...]]] = []
        self._pending: (
            tuple[str, Sequence[Sequence[str]] | None, str, Sequence[Sequence[str]]] | None
        ) = None

    def send(
        self,
        action: str,
        labels: Sequence[Sequence[str]] | None = None,
        *,
        note: str = "",
        mark_everywhere: Sequence[Sequence[str]] = (),
    ) -> None:
        """Queue what the curator does next; ``labels`` default to what is mounted."""
        self._pending = (action, labels, note, mark_everywhere)

    def __call__(self, item_key: str, sentences: Sequence[Any], *, key: str, **_: Any) -> Any:
        from app.span_editor import EditorEvent

        self.mounted.append((item_key, tuple(sentences)))
        if self._pending is None:
            return None
        action, labels, note, marks = self._pending
        self._pending = None
        chosen = labels if labels is not None else [s.labels for s in sentences]
        return EditorEvent(
            action=action,  # type: ignore[arg-type]
            item_key=item_key,
            labels=tuple(tuple(row) for row in chosen),
            note=note,
            mark_everywhere=tuple(tuple(words) for words in marks),
            actions=1,
        )

    @property
    def item_key(self) -> str:
        return self.mounted[-1][0]

    @property
    def sentences(self) -> tuple[Any, ...]:
        return self.mounted[-1][1]
