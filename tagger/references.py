"""Model references: a model folder, a registry version id, or ``current``.

The registry's folder layout is declared here, once, because it is the one part of the
registry that a reader without the database needs (``python -m tagger``, an app server
that only serves)::

    <registry>/versions/<version>/   one complete model folder per version
    <registry>/current               the id of the version in service, one line

``<registry>`` is ``$TAGGER_REGISTRY_DIR``, default ``models``. The curation layer's
registry (``curation.registry``) writes this layout; :func:`resolve_model` reads it.

Example:

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "versions" / "v1").mkdir(parents=True)
>>> _ = (root / "versions" / "v1" / "model.json").write_text("{}")
>>> _ = (root / "current").write_text("v1\\n")
>>> resolve_model("current", registry_dir=root) == root / "versions" / "v1"
True
>>> resolve_model("v1", registry_dir=root) == root / "versions" / "v1"
True
>>> resolve_model(None, registry_dir=root) == root / "versions" / "v1"
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tagger.errors import TaggerError

REGISTRY_DIR_ENV = "TAGGER_REGISTRY_DIR"
DEFAULT_REGISTRY_DIR = Path("models")
# A model folder outside the registry (`make model` writes it): served while the registry
# is empty, and adopted by the worker as the first version.
MODEL_DIR_ENV = "TAGGER_MODEL_DIR"
DEFAULT_MODEL_DIR = Path("models") / "default"
VERSIONS_DIR = "versions"
POINTER_FILE = "current"
CURRENT = "current"
METADATA_FILE = "model.json"  # a model folder's metadata (tagger.model_folder)

ModelReference = str | os.PathLike[str]


def registry_dir(
    folder: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The registry folder: ``folder``, else ``$TAGGER_REGISTRY_DIR``, else ``models``."""
    if folder is not None:
        return Path(folder)
    env = os.environ if environ is None else environ
    return Path(env.get(REGISTRY_DIR_ENV, "").strip() or DEFAULT_REGISTRY_DIR)


def model_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder of ``$TAGGER_MODEL_DIR``, default ``models/default``."""
    env = os.environ if environ is None else environ
    return Path(env.get(MODEL_DIR_ENV, "").strip() or DEFAULT_MODEL_DIR)


def read_pointer_file(root: str | os.PathLike[str]) -> str | None:
    """The version named in ``<root>/current``, or None when there is none."""
    try:
        version = (Path(root) / POINTER_FILE).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return version or None


def version_folder(root: str | os.PathLike[str], version: str) -> Path:
    return Path(root) / VERSIONS_DIR / version


def resolve_model(
    reference: ModelReference | None, *, registry_dir: str | os.PathLike[str] | None = None
) -> Path:
    """The model folder that ``reference`` names.

    Args:
        reference: a model folder (a path holding ``model.json``), a version id in the
            registry, ``current`` (the version in service), or None for ``current``. A
            folder wins over a version of the same name; an existing folder without
            ``model.json`` is returned as it is, so that loading it names what is missing.
        registry_dir: the registry folder; default ``$TAGGER_REGISTRY_DIR`` or ``models``.

    Raises:
        TaggerError: nothing matches; the message says what was looked for and the fix.
    """
    root = _registry_root(registry_dir)
    text = CURRENT if reference is None else os.fspath(reference)
    if text == CURRENT:
        version = read_pointer_file(root)
        if version is None:
            raise TaggerError(
                f"no model is in service: {root / POINTER_FILE} does not exist yet",
                fix="pass --model with a model folder (`make model` trains one into "
                "models/default), wait for the first training job (the app's Training page "
                f"shows it), or set {REGISTRY_DIR_ENV} to the registry folder the worker "
                "writes",
            )
        return _checked(version_folder(root, version), f"version {version!r} (in service)")
    path = Path(text)
    if (path / METADATA_FILE).is_file():
        return path
    could_be_version = _could_be_version(text)
    if could_be_version:
        candidate = version_folder(root, text)
        if candidate.is_dir():
            return _checked(candidate, f"version {text!r}")
    if path.is_dir():
        return path  # an incomplete model folder: loading it names the missing files
    known = _known_versions(root)
    listed = f"; versions in {root / VERSIONS_DIR}: {', '.join(known)}" if known else ""
    if could_be_version:
        what = f"no model {text!r}: no folder {path} and no version {text!r} in the registry "
        what += f"{root}{listed}"
    else:
        what = f"no model folder {path}"
    raise TaggerError(
        what,
        fix="pass --model with a model folder (train one with `python -m training.train "
        f"--out {text}`), a version id, or `current` for the version in service; set "
        f"{REGISTRY_DIR_ENV} if the registry is elsewhere",
    )


def _could_be_version(text: str) -> bool:
    return bool(text) and Path(text).name == text and text not in (".", "..")


def _registry_root(folder: str | os.PathLike[str] | None) -> Path:
    return registry_dir(folder)


def _checked(folder: Path, what: str) -> Path:
    if not (folder / METADATA_FILE).is_file():
        raise TaggerError(
            f"{what} has no complete model folder at {folder} (no {METADATA_FILE})",
            fix="promote or roll back to another version on the app's Training page, or "
            "retrain",
        )
    return folder


def _known_versions(root: Path, limit: int = 5) -> list[str]:
    try:
        names = sorted(
            (entry.name for entry in (root / VERSIONS_DIR).iterdir() if entry.is_dir()),
            reverse=True,
        )
    except OSError:
        return []
    visible = [name for name in names if not name.startswith(".")]
    return visible[:limit] + (["…"] if len(visible) > limit else [])
