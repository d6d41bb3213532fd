"""The long-lived objects behind the pages: the model in service and the corrections store.

The model is loaded once per model version and shared by every session
(``st.cache_resource`` keyed on the folder and its ``model.json``), so a new version
written into the folder is picked up on the next request without a restart. Tests
replace :func:`build_tagger` (``monkeypatch.setattr(services, "build_tagger", ...)``)
to serve a fake model.

Example (inside a page)::

    status = services.serving_model(settings)
    if status.tagger is None:
        st.warning(status.problem)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from app.settings import AppSettings
from training.corrections import CorrectionsStore

if TYPE_CHECKING:
    from tagger import Tagger

MODEL_METADATA_FILE = "model.json"


def build_tagger(model_dir: Path) -> Tagger:
    """Load the model folder; the one place the app constructs a tagger."""
    # Imported here: TensorFlow takes seconds to import, and the app must start (and
    # browse corrections) even where no model exists yet.
    from tagger import Tagger

    return Tagger.load(model_dir)


@dataclass(frozen=True)
class ModelStatus:
    """The model in service, or why there is none (``problem`` says what to do)."""

    tagger: Tagger | None
    problem: str | None = None

    @property
    def version(self) -> str:
        return self.tagger.version if self.tagger is not None else "none"


def model_fingerprint(model_dir: Path) -> str | None:
    """A digest of the folder's ``model.json``: a new version means a new digest."""
    metadata = model_dir / MODEL_METADATA_FILE
    try:
        return hashlib.sha256(metadata.read_bytes()).hexdigest()
    except OSError:
        return None


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def _load_tagger(model_dir: str, fingerprint: str) -> Tagger:
    # `fingerprint` is only a cache key: the same folder with a new model.json is a
    # new entry, and max_entries lets the previous version go.
    del fingerprint
    return build_tagger(Path(model_dir))


def serving_model(settings: AppSettings) -> ModelStatus:
    """The tagger for ``settings.model_dir``, loading it on first use."""
    model_dir = settings.model_dir
    fingerprint = model_fingerprint(model_dir)
    if fingerprint is None:
        return ModelStatus(
            None,
            f"No model is available yet: {model_dir}/{MODEL_METADATA_FILE} does not exist. "
            "Train one with `make model` (or point TAGGER_MODEL_DIR at a model folder); "
            "saved corrections stay browsable meanwhile.",
        )
    try:
        return ModelStatus(_load_tagger(str(model_dir.resolve()), fingerprint))
    except Exception as error:  # any load failure must leave the app usable
        return ModelStatus(
            None,
            f"The model in {model_dir} could not be loaded ({type(error).__name__}: {error}). "
            "Retrain it with `make model` or point TAGGER_MODEL_DIR at another model folder.",
        )


def model_trained_at(metadata: dict[str, Any]) -> datetime | None:
    """When the model was saved (``created`` in ``model.json``), as an aware datetime."""
    value = metadata.get("created")
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@st.cache_resource(show_spinner=False)
def _open_store(data_dir: str) -> CorrectionsStore:
    return CorrectionsStore.in_folder(data_dir)


def corrections_store(settings: AppSettings) -> CorrectionsStore:
    """The corrections store in the app's data folder, shared by all sessions."""
    return _open_store(str(settings.data_dir.resolve()))
