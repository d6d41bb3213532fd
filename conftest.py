"""Settings for every test and every docstring example: backend, quiet logs, the tiny model.

pytest collects the docstring examples of the project's packages (``--doctest-modules``,
``testpaths`` in pyproject.toml), so this file sits at the root, where those examples see
it; ``tests/conftest.py`` only applies under ``tests/``.

An example may use ``tiny_model_dir``, the folder of a tiny trained model (trained once per
session, and only if an example or a test asks for it), and ``bc5cdr_dir``, the real
BC5CDR-disease folder (the example skips, saying how to provide it, where there is none).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem

# The store fixtures (`database` over SQLite and PostgreSQL, `postgres_database`).
from tests.databases import database, pg_server, postgres_database  # noqa: F401

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Not collected, even when named on the command line (pyproject.toml's testpaths leave
# them out anyway): their import runs something or needs what the test environment lacks.
collect_ignore = [
    "benchmarks",  # peer_hf.py needs the peer environment (.venv-bench: transformers, torch)
    "streamlit_app.py",  # importing it runs the whole app
    "curation/migrations/env.py",  # Alembic's script: runs migrations when imported
]

# Names an example may use without importing them; each is built on first use.
LAZY_DOCTEST_FIXTURES = ("tiny_model_dir", "bc5cdr_dir")


@pytest.fixture(scope="session", autouse=True)
def no_stray_workers() -> None:
    """An app run never starts a real training worker unless its test asks for one.

    A test that wants one sets ``TAGGER_START_WORKER`` itself (``tests/app_fakes.py``
    clears it and records the starts instead). Without this, an app script still running
    after its test (an AppTest run that outlived it) read the restored environment, took
    the repository's own ``data/`` and ``models/`` and started a worker that trained a
    first model in the background for the rest of the suite (seen 2026-12-02).
    """
    os.environ["TAGGER_START_WORKER"] = "0"


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ONNX graphs derived during tests go to a temporary cache, not the user's."""
    folder = tmp_path_factory.mktemp("tagger-cache")
    os.environ["TAGGER_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT fine-tuned for a few steps, saved as a complete model folder."""
    from tests.tiny import train_tiny_model

    return train_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def bc5cdr_dir() -> Path:
    """The real BC5CDR-disease folder, found the way training finds it.

    That is $BC5CDR_DIR if set (CI points it at the workplace's shared copy), else
    data/bc5cdr-disease (where `make data` downloads it). A test skips when that folder
    does not exist, and fails when it exists without all three splits.
    """
    from training.data import DEFAULT_DATA_DIR, ENV_VAR, DataError, resolve_data_dir

    try:
        return resolve_data_dir()
    except DataError as error:
        chosen = Path(os.environ.get(ENV_VAR) or DEFAULT_DATA_DIR)
        if chosen.is_dir():
            raise
        pytest.skip(f"needs the real BC5CDR-disease data: {error}")


@pytest.fixture(autouse=True)
def doctest_fixtures(request: pytest.FixtureRequest, doctest_namespace: dict[str, object]) -> None:
    """Put the fixtures a docstring example names (see LAZY_DOCTEST_FIXTURES) in its namespace.

    Only examples that name one build it, so a run without such an example trains nothing.
    """
    if not isinstance(request.node, DoctestItem):
        return
    sources = [example.source for example in request.node.dtest.examples]
    for name in LAZY_DOCTEST_FIXTURES:
        if any(name in source for source in sources):
            doctest_namespace[name] = request.getfixturevalue(name)
