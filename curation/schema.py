"""Every table of the curation database, on one ``MetaData``: Alembic's target.

One database holds everything a curation team shares: the corrections, the training
jobs and their loss curves, the workers seen, the model versions and the pointer to
the one in service. The embedded default is one SQLite file; PostgreSQL runs the same
tables. A change to a table here needs a migration in ``curation/migrations/versions``
(``tests/test_migrations.py`` fails when the two disagree).

The column layouts are those the tagger has written since its first release, so an
existing installation's files open unchanged (see :mod:`curation.migrate`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database (SQLite drops time zones otherwise)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone; pass an aware datetime (UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_JOB_STATUSES = ("queued", "running")
_STATUS_LIST = ", ".join(f"'{status}'" for status in JOB_STATUSES)
_ACTIVE_LIST = ", ".join(f"'{status}'" for status in ACTIVE_JOB_STATUSES)

corrections_table = Table(
    "corrections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sentence_key", String(32), nullable=False),
    Column("source", Text, nullable=False),
    Column("sentence_index", Integer, nullable=False),
    Column("words", Text, nullable=False),  # JSON list of strings
    Column("labels", Text, nullable=False),  # JSON list, valid IOB2
    Column("predicted", Text, nullable=False),  # JSON list
    Column("model_version", Text, nullable=False),
    Column("annotator", Text, nullable=False),
    # Fixed-width UTC text (YYYY-MM-DDTHH:MM:SS.ffffffZ): compares correctly as text.
    Column("created_at", Text, nullable=False),
    Index("corrections_by_sentence", "sentence_key", "id"),
    Index("corrections_by_time", "created_at"),
    sqlite_autoincrement=True,  # ids of deleted rows never return
)

jobs_table = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    # 1 while queued or running, NULL after: unique, so at most one active job exists.
    Column("active", Integer, unique=True, nullable=True),
    Column("options", JSON, nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("heartbeat_at", UtcDateTime),
    Column("worker", String(200)),
    Column("device", String(200)),
    Column("progress", JSON),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("error", Text),
    Column("message", Text),
    Column("log_file", Text),
    Column("model_version", String(64)),
    Column("correction_ids", JSON),
    CheckConstraint(f"status IN ({_STATUS_LIST})", name="jobs_known_status"),
    CheckConstraint(
        f"(status IN ({_ACTIVE_LIST}) AND active = 1) "
        f"OR (status NOT IN ({_ACTIVE_LIST}) AND active IS NULL)",
        name="jobs_active_matches_status",
    ),
    sqlite_autoincrement=True,  # ids of deleted jobs never come back
)

job_losses_table = Table(
    "job_losses",
    metadata,
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("epoch", Integer, nullable=False),
    Column("loss", Float, nullable=False),
)

workers_table = Table(
    "workers",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("device", String(200), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
)

model_versions_table = Table(
    "model_versions",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("parent", String(64)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("folder", Text, nullable=False),  # relative to the registry folder, POSIX
    Column("job_id", Integer),
    Column("decision", String(16), nullable=False),  # promoted, candidate, adopted
    Column("note", Text, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("summary", JSON, nullable=False),
    Column("encoder_source", Text, nullable=False),
    # sha256 of model.weights.h5 at registration (migration 0002); NULL for versions
    # registered before, filled in on their first verification (Registry.verify).
    Column("weights_sha256", String(64)),
)

serving_table = Table(
    "serving",
    metadata,
    Column("slot", Integer, primary_key=True),
    Column("version", String(64), ForeignKey("model_versions.version"), nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    CheckConstraint("slot = 1", name="serving_single_row"),
)

serving_events_table = Table(
    "serving_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version", String(64), nullable=False),
    Column("previous", String(64)),
    Column("at", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    sqlite_autoincrement=True,
)

# -- the review queue (migration 0003) ------------------------------------------------

REVIEW_STATUSES = ("unreviewed", "reviewed", "skipped", "flagged")
_REVIEW_STATUS_LIST = ", ".join(f"'{status}'" for status in REVIEW_STATUSES)

collections_table = Table(
    "collections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,
)

collection_documents_table = Table(
    "collection_documents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "collection_id",
        Integer,
        ForeignKey("collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("external_id", String(200), nullable=False),
    Column("title", Text),
    Column("text", Text),  # .txt and JSONL documents: the abstract, offsets index it
    Column("words", Text),  # BIO documents: JSON list of sentences, each a list of words
    Column("source_file", Text, nullable=False),
    Column("source_line", Integer, nullable=False),
    Column("imported_by", String(200), nullable=False),
    Column("imported_at", UtcDateTime, nullable=False),
    # The model's labels: NULL until the worker tags the document.
    Column("model_version", String(64)),
    Column("tagged_at", UtcDateTime),
    Column("sentences", Text),  # JSON: words, offsets, labels, scores per sentence
    Column("word_count", Integer),
    Column("uncertainty", Float),  # expected word errors (curation.collections)
    Column("has_spans", Boolean),
    Column("tag_error", Text),  # why tagging with model_version failed, if it did
    Column("status", String(16), nullable=False, default="unreviewed"),
    Column("reviewer", String(200)),
    Column("reviewed_at", UtcDateTime),
    Column("reviewed_labels", Text),  # JSON: the labels the reviewer stored, per sentence
    Column("flag_note", Text),
    Column("claimed_by", String(200)),
    Column("claimed_at", UtcDateTime),
    Column("pending_marks", Text),  # JSON: spans marked everywhere, applied when served
    CheckConstraint(f"status IN ({_REVIEW_STATUS_LIST})", name="documents_known_status"),
    Index("documents_by_external_id", "collection_id", "external_id", unique=True),
    Index("documents_queue", "collection_id", "status", "uncertainty"),
    Index("documents_to_tag", "status", "model_version", "id"),
    Index("documents_by_claim", "claimed_by", "collection_id"),
    sqlite_autoincrement=True,
)

review_events_table = Table(
    "review_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "document_id",
        Integer,
        ForeignKey("collection_documents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "collection_id",
        Integer,
        ForeignKey("collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("curator", String(200), nullable=False),
    Column("action", String(16), nullable=False),  # served, accepted, saved, skipped, ...
    Column("at", UtcDateTime, nullable=False),
    Index("review_events_by_curator", "curator", "collection_id", "id"),
    Index("review_events_by_document", "document_id"),
    sqlite_autoincrement=True,
)
