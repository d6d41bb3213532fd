"""The database fixtures, in one place: every store test runs on SQLite and on PostgreSQL.

A test module that takes ``database`` imports it (``from tests.databases import
database, pg_server  # noqa: F401``); it is then run once per backend:

- ``sqlite``: the embedded default, one file in the test's temporary folder;
- ``postgresql``: a fresh database on a throwaway local server (:mod:`tests.pg_server`,
  started once per session). Where no server can be started, those cases skip and
  say why.

Both come migrated, as :meth:`curation.database.Database.open` leaves every database.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from curation.database import Database
from tests.pg_server import PgServer, PgUnavailable, start_server

BACKENDS = ("sqlite", "postgresql")
_database_names = (f"tagger_test_{n}" for n in itertools.count())


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | PgUnavailable]:
    """The session's PostgreSQL server, or the reason there is none (tests then skip)."""
    try:
        server = start_server()
    except PgUnavailable as reason:
        yield reason
        return
    yield server
    server.stop()


def postgres_url(pg_server: PgServer | PgUnavailable) -> str:
    if isinstance(pg_server, PgUnavailable):
        pytest.skip(f"no PostgreSQL server could be started: {pg_server}")
    return pg_server.create_database(next(_database_names))


@pytest.fixture(params=BACKENDS)
def database(
    request: pytest.FixtureRequest, tmp_path: Path, pg_server: PgServer | PgUnavailable
) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tagger.sqlite3'}"
    else:
        url = postgres_url(pg_server)
    database = Database.open(url)
    assert database.dialect == request.param
    yield database
    database.dispose()


@pytest.fixture
def postgres_database(pg_server: PgServer | PgUnavailable) -> Iterator[Database]:
    """PostgreSQL only, for the checks that only it can make (row locks, processes)."""
    database = Database.open(postgres_url(pg_server))
    yield database
    database.dispose()
