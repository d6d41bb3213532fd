"""The curation layer: corrections, jobs, the model registry and worker liveness.

Keras-free and ``training``-free: the app imports this package and ``tagger`` only.
Everything lives in one database (:mod:`curation.database`: SQLite by default,
PostgreSQL through ``TAGGER_DB_URL``), migrated on open by Alembic
(:mod:`curation.migrate`). :class:`Curation` is the API the app uses.

=====================  ==========================================================
module                 what
=====================  ==========================================================
``database``           the engine, transactions, URL and data-folder settings
``schema``             every table (Alembic's target metadata)
``migrate``            schema upgrades and the two-file layout's import
``corrections``        corrected sentences, validated, with their history
``collections``        collections of imported documents, and their tagging
``review``             the review queue over a collection's documents
``exports``            BIO, JSONL with offsets and spaCy DocBin exports
``jobs``               the training job queue and a job's options and progress
``adaptation``         adapting the encoder to a collection's text: options, results
``registry``           model versions and the pointer to the one in service
``promotion``          when a new version goes into service on its own
``workers``            worker liveness: lock file, roster, heartbeats
``service``            :class:`Curation`, the small API over all of them
=====================  ==========================================================
"""

from __future__ import annotations

from curation.adaptation import JOB_KIND_ADAPT, AdaptedEncoder, AdaptJobOptions
from curation.collections import (
    UNCERTAINTY_NAME,
    CollectionError,
    CollectionNotFoundError,
    CollectionStore,
    CollectionSummary,
    ImportProblem,
    ImportReport,
    PredictedSentence,
    TaggingProgress,
)
from curation.corrections import (
    Correction,
    CorrectionFilter,
    CorrectionNotFoundError,
    CorrectionsStore,
    InvalidCorrectionError,
    NewCorrection,
    SaveResult,
    file_source,
    text_source,
)
from curation.database import Database, DatabaseError
from curation.jobs import Job, JobNotFoundError, JobQueue, JobStatus, Progress, TrainJobOptions
from curation.promotion import PromotionDecision, PromotionPolicy
from curation.registry import (
    DamagedVersionError,
    ModelVersion,
    Registry,
    RegistryError,
    ServingEvent,
)
from curation.review import (
    ItemNotFoundError,
    ReviewConflictError,
    ReviewError,
    ReviewFilter,
    ReviewItem,
    ReviewProgress,
    ReviewQueue,
    ReviewSentence,
)
from curation.service import CorrectionChanges, Curation, RetrainAvailability

__all__ = [
    "JOB_KIND_ADAPT",
    "UNCERTAINTY_NAME",
    "AdaptJobOptions",
    "AdaptedEncoder",
    "CollectionError",
    "CollectionNotFoundError",
    "CollectionStore",
    "CollectionSummary",
    "Correction",
    "CorrectionChanges",
    "CorrectionFilter",
    "CorrectionNotFoundError",
    "CorrectionsStore",
    "Curation",
    "DamagedVersionError",
    "Database",
    "DatabaseError",
    "ImportProblem",
    "ImportReport",
    "InvalidCorrectionError",
    "ItemNotFoundError",
    "Job",
    "JobNotFoundError",
    "JobQueue",
    "JobStatus",
    "ModelVersion",
    "NewCorrection",
    "PredictedSentence",
    "Progress",
    "PromotionDecision",
    "PromotionPolicy",
    "Registry",
    "RegistryError",
    "RetrainAvailability",
    "ReviewConflictError",
    "ReviewError",
    "ReviewFilter",
    "ReviewItem",
    "ReviewProgress",
    "ReviewQueue",
    "ReviewSentence",
    "SaveResult",
    "ServingEvent",
    "TaggingProgress",
    "TrainJobOptions",
    "file_source",
    "text_source",
]
