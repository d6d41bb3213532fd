"""The app's settings, read from environment variables with safe defaults.

=========================  ==================  ==========================================
Variable                   Default             Meaning
=========================  ==================  ==========================================
``TAGGER_MODEL_DIR``       ``models/default``  model folder served while the registry is
                                               empty (the worker adopts it as version 1)
``TAGGER_DATA_DIR``        ``data``            app data: corrections, jobs database, logs
``TAGGER_REGISTRY_DIR``    ``models``          model versions (``versions/<id>``)
``TAGGER_DB_URL``          (none)              database for corrections, jobs and
                                               registry, e.g. PostgreSQL; none: SQLite
                                               files in the data folder
``TAGGER_START_WORKER``    ``1``               ``0``: never start a training worker from
                                               the app (it runs elsewhere)
``TAGGER_MAX_UPLOAD_MB``   ``20``              largest BIO upload, in megabytes
``TAGGER_MAX_TEXT_CHARS``  ``100000``          longest pasted text, in characters
``TAGGER_LOW_CONFIDENCE``  ``0.6``             mentions scored below this are flagged
=========================  ==================  ==========================================

Example:

>>> settings = AppSettings.from_env({"TAGGER_MAX_UPLOAD_MB": "5"})
>>> settings.max_upload_mb, settings.max_upload_bytes
(5, 5242880)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from curation.database import DATA_DIR_ENV, DB_URL_ENV, DEFAULT_DATA_DIR
from tagger.errors import TaggerError
from tagger.references import DEFAULT_MODEL_DIR, DEFAULT_REGISTRY_DIR, model_dir, registry_dir

T = TypeVar("T")


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class SettingsError(TaggerError, ValueError):
    """An environment variable with a value the app cannot use."""


def parse_switch(raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS | FALSE_WORDS:
        return word in TRUE_WORDS
    raise ValueError(raw)


def _read(
    environ: Mapping[str, str],
    name: str,
    default: T,
    parse: Callable[[str], T],
    valid: Callable[[T], bool],
    expected: str,
) -> T:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise SettingsError(
            f"{name}={raw!r} is not {expected}. Set it to, for example, {name}={default} "
            f"or unset it to use the default ({default})."
        )
    return value


@dataclass(frozen=True)
class AppSettings:
    """Where the model and data live and how much input the app accepts."""

    model_dir: Path = DEFAULT_MODEL_DIR
    data_dir: Path = DEFAULT_DATA_DIR
    registry_dir: Path = DEFAULT_REGISTRY_DIR
    db_url: str | None = None
    start_worker: bool = True
    max_upload_mb: int = 20
    max_text_chars: int = 100_000
    low_confidence: float = 0.6

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppSettings:
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            model_dir=model_dir(env),
            data_dir=Path(env.get(DATA_DIR_ENV, "").strip() or DEFAULT_DATA_DIR),
            registry_dir=registry_dir(environ=env),
            db_url=env.get(DB_URL_ENV, "").strip() or None,
            start_worker=_read(
                env,
                "TAGGER_START_WORKER",
                defaults.start_worker,
                parse_switch,
                lambda _: True,
                "a switch (1 or 0)",
            ),
            max_upload_mb=_read(
                env,
                "TAGGER_MAX_UPLOAD_MB",
                defaults.max_upload_mb,
                int,
                lambda v: 0 < v <= 1024,
                "a whole number of megabytes between 1 and 1024",
            ),
            max_text_chars=_read(
                env,
                "TAGGER_MAX_TEXT_CHARS",
                defaults.max_text_chars,
                int,
                lambda v: v >= 1000,
                "a whole number of characters, at least 1000",
            ),
            low_confidence=_read(
                env,
                "TAGGER_LOW_CONFIDENCE",
                defaults.low_confidence,
                float,
                lambda v: 0.0 <= v <= 1.0,
                "a number between 0 and 1",
            ),
        )
