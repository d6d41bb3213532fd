"""The model registry: immutable model versions and the one pointer to the version in service.

Keras-free: the worker writes a version's folder (``tagger.model_folder``) into
:meth:`Registry.reserve_folder`'s place and registers it here; the app only reads.

On disk, under the registry folder (``$TAGGER_REGISTRY_DIR``, default ``models``; the
layout is declared in :mod:`tagger.references`)::

    versions/<version>/     one complete model folder per version, never changed again
    current                 the serving version's id, one line (for file-only readers)

In the database, ``model_versions`` holds each version's metrics, training data summary
(base sentences, corrections used and their ids), parent and promotion note;
``serving`` is the pointer (one row); ``serving_events`` is its history (who served
what, when and why), which :meth:`Registry.rollback` walks back.

Rules:

- A version folder is written under a hidden staging name and renamed into place
  only when complete (:func:`tagger.model_folder.save_model_folder`); only then is its
  row inserted. A crash before the rename leaves a hidden ``.partial-`` folder and no
  row; a crash after it leaves a folder without a row. Neither is a version: the app
  lists versions from the database and :meth:`Registry.sweep` removes both.
- Every version's weights hash (sha256 of ``model.weights.h5``) is recorded when it is
  registered. :meth:`Registry.promote`, :meth:`Registry.rollback` and the app's hot swap
  call :meth:`Registry.verify` first: the folder must read, its weights must fit its
  ``model.json`` (checked without Keras) and match the recorded hash, or the version
  is refused (:class:`DamagedVersionError`) and the one in service stays. A version
  registered before hashes were recorded gets its hash on its first verification.
- Folders and files are created with the modes a plain ``mkdir``/``open`` gets under
  the process umask (not ``mkdtemp``'s 0o700), so an app server running as another
  user can read a shared registry.
- The pointer changes in one transaction (compare-and-set for automatic promotion, so
  a curator's promotion during a training run is never silently overridden), then
  the ``current`` file is replaced with ``os.replace``.
- :class:`curation.promotion.PromotionPolicy` decides whether a new version goes
  into service; the worker measures both models on the same dev sentences first.

Example:

>>> import tempfile
>>> from curation.database import Database
>>> folder = tempfile.mkdtemp()
>>> registry = Registry(Database.open(data_dir=folder), f"{folder}/models")
>>> registry.serving_version() is None
True
>>> registry.reserve_folder("v1").relative_to(registry.root).as_posix()
'versions/v1'
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from curation.database import Database, utc_now
from curation.promotion import PromotionDecision, PromotionPolicy
from curation.schema import model_versions_table, serving_events_table, serving_table
from tagger.errors import TaggerError
from tagger.model_folder import (
    WEIGHTS_FILE,
    ModelFolderError,
    file_sha256,
    make_shared_tempdir,
    new_version_id,
    read_metadata,
    share_tree,
    shared_file_mode,
    verify_model_folder,
)
from tagger.references import (
    METADATA_FILE,
    POINTER_FILE,
    VERSIONS_DIR,
    read_pointer_file,
    registry_dir,
    version_folder,
)

SWEEP_MIN_AGE_S = 3600.0
# A preliminary version's summary (worker/preliminary.py writes them): ``True``, and
# where in its job it was taken.
PRELIMINARY_KEY = "preliminary"
PRELIMINARY_POINT_KEY = "preliminary_point"
FIRST_MODEL_STAGE = "first-model"  # a preliminary point's ``stage``: the quick first model
logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class RegistryError(TaggerError, RuntimeError):
    """A registry operation that cannot be done; the message names the fix."""


class VersionNotFoundError(RegistryError, LookupError):
    """No registered version has the id asked for."""


class DamagedVersionError(RegistryError, ModelFolderError):
    """A registered version whose folder is damaged: it is not put into service."""

    def __init__(self, version: str, folder: Path, damage: str) -> None:
        self.version = version
        self.damage = damage
        super().__init__(
            f"version {version} is damaged: {damage}",
            where=str(folder),
            fix="retrain, or promote another version; the version in service stays",
        )


_SERVING_SLOT = 1


# ---------------------------------------------------------------------------
# Versions
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelVersion:
    """One registered model version (a row of ``model_versions``)."""

    version: str
    parent: str | None
    created_at: datetime
    folder: Path
    job_id: int | None
    decision: str
    note: str
    metrics: dict[str, Any]
    summary: dict[str, Any]
    encoder_source: str
    serving: bool = False
    weights_sha256: str | None = None  # None: registered before hashes were recorded

    def f1(self, split: str) -> float | None:
        value = self.metrics.get(split, {}).get("f1")
        return None if value is None else float(value)

    @property
    def dev_f1(self) -> float | None:
        return self.f1("dev")

    @property
    def test_f1(self) -> float | None:
        return self.f1("test")

    @property
    def correction_ids(self) -> tuple[int, ...]:
        return tuple(self.summary.get("correction_ids", ()))

    @property
    def corrections_used(self) -> int:
        return int(self.summary.get("corrections_used", len(self.correction_ids)))

    @property
    def preliminary(self) -> bool:
        """Served while its (first) training job went on; the job's final version replaces it."""
        return self.summary.get(PRELIMINARY_KEY) is True

    @property
    def preliminary_point(self) -> dict[str, Any]:
        """Where in its job a preliminary version was taken: ``epoch``, ``step``,
        ``epoch_end`` and ``dev_f1`` (empty for any other version)."""
        return dict(self.summary.get(PRELIMINARY_POINT_KEY) or {}) if self.preliminary else {}

    def preliminary_note(self, *, training_continues: bool = True) -> str | None:
        """What the app says of a preliminary version in service; None for any other.

        ``training_continues``: whether its job is still running (the app knows).

        >>> point = {"epoch": 1, "epoch_end": True, "dev_f1": 70.12}
        >>> summary = {"preliminary": True, "preliminary_point": point}
        >>> version = ModelVersion("v1", None, utc_now(), Path("v1"), 3, "promoted", "", {},
        ...                        summary, encoder_source="MiniLM")
        >>> version.preliminary_note()
        'preliminary (epoch 1, devel F1 70.1) — training continues'
        >>> version.preliminary_note(training_continues=False)
        'preliminary (epoch 1, devel F1 70.1) — training stopped early: retrain to finish it'
        >>> first = {**point, "stage": FIRST_MODEL_STAGE}
        >>> replace(version, summary={**summary, "preliminary_point": first}).preliminary_note()
        'preliminary (quick first model, devel F1 70.1) — training continues'
        >>> replace(version, summary={}).preliminary_note() is None
        True
        """
        if not self.preliminary:
            return None
        point = self.preliminary_point
        if point.get("stage") == FIRST_MODEL_STAGE:
            where = ["quick first model"]
        else:
            where = [f"epoch {point['epoch']}"] if point.get("epoch") else []
            if point.get("step") and not point.get("epoch_end"):
                where.append(f"step {point['step']}")
        dev_f1 = point.get("dev_f1")
        where.append("devel F1 " + ("n/a" if dev_f1 is None else f"{float(dev_f1):.1f}"))
        after = (
            "training continues"
            if training_continues
            else "training stopped early: retrain to finish it"
        )
        return f"preliminary ({', '.join(where)}) — {after}"


@dataclass(frozen=True)
class ServingEvent:
    version: str
    previous: str | None
    at: datetime
    reason: str
    actor: str


@dataclass(frozen=True)
class Registration:
    """What :meth:`Registry.add_version` registered and whether it went into service."""

    version: ModelVersion
    promoted: bool
    note: str


@dataclass
class Registry:
    """Model versions under ``root`` and their rows in ``database``."""

    database: Database
    root: Path
    policy: PromotionPolicy = field(default_factory=PromotionPolicy)
    clock: Clock = utc_now

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    @classmethod
    def open(
        cls,
        root: str | Path | None = None,
        *,
        db_url: str | None = None,
        data_dir: str | Path | None = None,
        policy: PromotionPolicy | None = None,
    ) -> Registry:
        """The registry in ``root`` (default ``$TAGGER_REGISTRY_DIR`` or ``models``)."""
        return cls(
            Database.open(db_url, data_dir=data_dir),
            registry_dir(root),
            policy or PromotionPolicy.from_env(),
        )

    @property
    def versions_dir(self) -> Path:
        return self.root / VERSIONS_DIR

    @property
    def pointer_file(self) -> Path:
        return self.root / POINTER_FILE

    def folder_of(self, version: str) -> Path:
        return version_folder(self.root, version)

    # -- reading -------------------------------------------------------------------------

    def serving_version(self) -> str | None:
        """The version in service: one indexed one-row read, cheap enough for every request."""
        query = select(serving_table.c.version).where(serving_table.c.slot == _SERVING_SLOT)
        with self.database.read() as connection:
            return connection.execute(query).scalar()

    def serving(self) -> ModelVersion | None:
        version = self.serving_version()
        return None if version is None else self.get(version)

    def serving_folder(self) -> Path | None:
        version = self.serving_version()
        return None if version is None else self.folder_of(version)

    def get(self, version: str) -> ModelVersion:
        with self.database.read() as connection:
            return self._get(connection, version)

    def _get(self, connection: Connection, version: str) -> ModelVersion:
        row = connection.execute(
            select(model_versions_table).where(model_versions_table.c.version == version)
        ).first()
        if row is None:
            raise VersionNotFoundError(
                f"no model version {version!r} in the registry ({self.database.display_url}); "
                "pick one from Registry.versions()"
            )
        return self._version_from_row(row._mapping, self._serving_in(connection))

    def versions(self) -> list[ModelVersion]:
        """Every registered version, newest first, with ``serving`` set on the one in service."""
        query = select(model_versions_table).order_by(
            model_versions_table.c.created_at.desc(), model_versions_table.c.version.desc()
        )
        with self.database.read() as connection:
            serving = self._serving_in(connection)
            rows = [row._mapping for row in connection.execute(query)]
        return [self._version_from_row(row, serving) for row in rows]

    def serving_history(self, *, limit: int = 50) -> list[ServingEvent]:
        """Pointer changes, newest first."""
        query = select(serving_events_table).order_by(serving_events_table.c.id.desc()).limit(limit)
        with self.database.read() as connection:
            return [
                ServingEvent(row.version, row.previous, row.at, row.reason, row.actor)
                for row in connection.execute(query)
            ]

    @staticmethod
    def _serving_in(connection: Connection) -> str | None:
        return connection.execute(
            select(serving_table.c.version).where(serving_table.c.slot == _SERVING_SLOT)
        ).scalar()

    def _version_from_row(self, row: RowMapping, serving: str | None) -> ModelVersion:
        return ModelVersion(
            version=row["version"],
            parent=row["parent"],
            created_at=row["created_at"],
            folder=self.root / row["folder"],
            job_id=row["job_id"],
            decision=row["decision"],
            note=row["note"],
            metrics=dict(row["metrics"] or {}),
            summary=dict(row["summary"] or {}),
            encoder_source=row["encoder_source"],
            serving=row["version"] == serving,
            weights_sha256=row["weights_sha256"],
        )

    # -- adding versions ---------------------------------------------------------------------

    def reserve_folder(self, version: str | None = None) -> Path:
        """Where to write a new version's folder (``versions/<version>``, not there yet).

        Write it there atomically (``tagger.model_folder.save_model_folder`` does),
        then :meth:`register_folder` it; a folder never registered is swept away.
        """
        return self._fresh_folder(version or new_version_id())

    def register_folder(
        self,
        folder: str | Path,
        *,
        summary: dict[str, Any] | None = None,
        decision: PromotionDecision,
        expected_serving: str | None,
        job_id: int | None = None,
    ) -> Registration:
        """Register a complete folder already at ``versions/<version>``.

        An incomplete or corrupt folder raises :class:`tagger.model_folder.ModelFolderError`
        and is not registered.
        """
        folder = Path(folder)
        if folder.resolve().parent != self.versions_dir.resolve():
            raise RegistryError(
                f"{folder} is not inside {self.versions_dir}; use Registry.adopt() to copy "
                "a model folder from elsewhere into the registry"
            )
        return self._register_written(
            folder, summary or {}, decision, expected_serving, job_id, decision_name=None
        )

    def adopt(self, folder: str | Path, *, actor: str = "worker") -> Registration:
        """Copy an existing model folder (e.g. ``make model``'s) into the registry.

        It goes into service when nothing is; it keeps its version id when it has one.
        """
        source = Path(folder)
        source_metadata = read_metadata(source)  # refuses an incomplete folder
        version = source_metadata.version or new_version_id()
        target = self._fresh_folder(version)
        staging = make_shared_tempdir(self.versions_dir, prefix=f".{version}.partial-")
        try:
            # Plain copies, then the umask's modes: copy2 would keep the source's (often
            # mkdtemp's 0o700), which another user's app server cannot read.
            shutil.copytree(source, staging, dirs_exist_ok=True, copy_function=shutil.copyfile)
            share_tree(staging)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        decision = PromotionDecision(
            self.serving_version() is None, f"adopted from {source} by {actor}"
        )
        data = source_metadata.data.get("training_data", {})
        return self._register_written(target, data, decision, None, None, decision_name="adopted")

    def _fresh_folder(self, version: str) -> Path:
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        target = self.folder_of(version)
        if target.exists():
            raise RegistryError(
                f"{target} already exists: versions are immutable. Give the new model "
                "another version id (leave no version id to get a fresh one)"
            )
        return target

    def _register_written(
        self,
        folder: Path,
        summary: dict[str, Any],
        decision: PromotionDecision,
        expected_serving: str | None,
        job_id: int | None,
        *,
        decision_name: str | None,
    ) -> Registration:
        try:
            # Complete, readable and its weights fit model.json, or ModelFolderError.
            written = verify_model_folder(folder)
            if written.version != folder.name:
                raise RegistryError(
                    f"{folder / METADATA_FILE} says version {written.version!r} but the folder "
                    f"is named {folder.name!r}; a version folder is named after its version"
                )
            row = {
                "version": written.version,
                "parent": written.parent,
                "created_at": self.clock(),
                "folder": folder.relative_to(self.root).as_posix(),
                "job_id": job_id,
                "decision": "candidate",
                "note": decision.reason,
                "metrics": written.metrics,
                "summary": summary,
                "encoder_source": written.encoder_source,
                "weights_sha256": file_sha256(folder / WEIGHTS_FILE),
            }
            with self.database.write() as connection:
                # The row first: the serving pointer refers to it (a foreign key).
                connection.execute(insert(model_versions_table).values(row))
                promoted = decision.promote and self._set_serving(
                    connection,
                    written.version,
                    reason=decision.reason,
                    actor="policy",
                    expected=expected_serving,
                    check_expected=True,
                )
                note = decision.reason
                if decision.promote and not promoted:
                    note = (
                        f"{decision.reason}; but the version in service changed while it "
                        "trained, so it stays a candidate: promote it by hand if you prefer it"
                    )
                connection.execute(
                    update(model_versions_table)
                    .where(model_versions_table.c.version == written.version)
                    .values(
                        decision=decision_name or ("promoted" if promoted else "candidate"),
                        note=note,
                    )
                )
        except BaseException:
            # Never registered, so never a version: remove the folder rather than leave
            # an orphan that looks like one.
            if not self._is_registered(folder.name):
                shutil.rmtree(folder, ignore_errors=True)
            raise
        if promoted:
            self.sync_pointer_file()
        return Registration(self.get(written.version), promoted, note)

    def _is_registered(self, version: str) -> bool:
        try:
            self.get(version)
        except VersionNotFoundError:
            return False
        except Exception:  # the database itself failed: assume the worst, keep the folder
            return True
        return True

    # -- the pointer ---------------------------------------------------------------------------

    def verify(self, version: str) -> ModelVersion:
        """``version`` if its folder may be served; else :class:`DamagedVersionError`.

        Keras-free and cheap (a hash of the weights and an h5py read of their shapes):
        ``model.json`` reads, the vocabulary and the weights fit it, and the weights'
        sha256 is the one recorded at registration. A version registered before hashes
        were recorded has none: its hash is computed and stored now, once it passes.
        """
        target = self.get(version)
        try:
            verify_model_folder(target.folder)
            digest = file_sha256(target.folder / WEIGHTS_FILE)
        except ModelFolderError as error:
            raise DamagedVersionError(version, target.folder, error.what) from None
        except OSError as error:
            damage = f"{WEIGHTS_FILE} cannot be read ({error.strerror or error})"
            raise DamagedVersionError(version, target.folder, damage) from None
        if target.weights_sha256 is None:
            self._record_hash(version, digest)
            return replace(target, weights_sha256=digest)
        if digest != target.weights_sha256:
            damage = (
                f"{WEIGHTS_FILE} changed since it was registered (its sha256 is "
                f"{digest[:12]}…, the registry recorded {target.weights_sha256[:12]}…)"
            )
            raise DamagedVersionError(version, target.folder, damage)
        return target

    def _record_hash(self, version: str, digest: str) -> None:
        """A version from before migration 0002: its first verification records its hash."""
        try:
            with self.database.write() as connection:
                connection.execute(
                    update(model_versions_table)
                    .where(model_versions_table.c.version == version)
                    .where(model_versions_table.c.weights_sha256.is_(None))
                    .values(weights_sha256=digest)
                )
        except Exception:  # a read-only database user: verify again next time
            logger.warning("could not record the weights hash of version %s", version)
            return
        logger.info("recorded the weights hash of version %s on its first verification", version)

    def promote(self, version: str, *, actor: str = "curator", reason: str = "") -> ModelVersion:
        """Serve ``version`` from the next request on (any registered version that
        :meth:`verify` passes; a damaged one raises and the one in service stays)."""
        self.verify(version)
        with self.database.write() as connection:
            self._set_serving(
                connection, version, reason=reason or f"promoted by {actor}", actor=actor
            )
        self.sync_pointer_file()
        return self.get(version)

    def rollback(self, *, actor: str = "curator") -> ModelVersion:
        """Serve again the version that served before the current one."""
        history = self.serving_history(limit=1)
        if not history or history[0].previous is None:
            raise RegistryError(
                "there is no earlier version in service to roll back to; "
                "promote a specific version instead"
            )
        previous = history[0].previous
        return self.promote(
            previous, actor=actor, reason=f"rolled back from {history[0].version} by {actor}"
        )

    def _set_serving(
        self,
        connection: Connection,
        version: str,
        *,
        reason: str,
        actor: str,
        expected: str | None = None,
        check_expected: bool = False,
    ) -> bool:
        current = connection.execute(
            select(serving_table.c.version)
            .where(serving_table.c.slot == _SERVING_SLOT)
            .with_for_update()
        ).scalar()
        if check_expected and current != expected:
            return False
        values = {"version": version, "changed_at": self.clock(), "reason": reason}
        if current is None:
            connection.execute(insert(serving_table).values(slot=_SERVING_SLOT, **values))
        else:
            connection.execute(
                update(serving_table).where(serving_table.c.slot == _SERVING_SLOT).values(values)
            )
        connection.execute(
            insert(serving_events_table).values(
                version=version, previous=current, at=self.clock(), reason=reason, actor=actor
            )
        )
        return True

    def sync_pointer_file(self) -> str | None:
        """Make ``current`` name the serving version (after a crash it may lag behind)."""
        version = self.serving_version()
        if version is None:
            return None
        if read_pointer_file(self.root) != version:
            self.root.mkdir(parents=True, exist_ok=True)
            _write_shared(self.pointer_file, f"{version}\n".encode())
        return version

    # -- housekeeping ------------------------------------------------------------------------------

    def sweep(self, *, min_age_s: float = SWEEP_MIN_AGE_S) -> list[Path]:
        """Delete half-written and unregistered folders older than ``min_age_s``.

        The age guard keeps a sweep from removing a folder another worker is still
        writing or about to register.
        """
        if not self.versions_dir.is_dir():
            return []
        registered = {version.folder.name for version in self.versions()}
        now = time.time()
        removed: list[Path] = []
        for entry in sorted(self.versions_dir.iterdir()):
            if entry.name in registered or not entry.is_dir():
                continue
            if now - entry.stat().st_mtime < min_age_s:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        return removed


def _write_shared(path: Path, payload: bytes) -> None:
    """Replace ``path`` atomically with a file of the umask's mode (readable by the group)."""
    descriptor, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(staging, shared_file_mode())
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def serving_folder_from_files(root: str | Path) -> Path | None:
    """``<root>/versions/<current>`` when the pointer file names a complete folder."""
    version = read_pointer_file(root)
    if version is None:
        return None
    folder = version_folder(root, version)
    return folder if (folder / METADATA_FILE).is_file() else None
