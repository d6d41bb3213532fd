"""The model a service serves, and how it follows the registry's version in service.

A model folder or a version id is a :class:`ServedModel`: it never changes. ``current``
(or no ``--model``) is a :class:`RegistryModel`: every ``poll_interval_s`` it reads the
registry's pointer file (``<registry>/current``, one short line), and when the version
named there changes it loads that version on a background thread, then swaps it in
whole. Batches already running keep the tagger they started with; a version that fails
to load leaves the old one serving, logs why, and says so in ``problem`` (which
``GET /health`` shows) until a later version loads. A failed version is not retried
until the pointer names another one.

Example:

>>> from tagger.tagger import Tagger
>>> served = ServedModel(Tagger.load(tiny_model_dir))
>>> served.follows_registry, served.problem
(False, None)
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tagger.errors import TaggerError
from tagger.references import (
    CURRENT,
    POINTER_FILE,
    ModelReference,
    read_pointer_file,
    registry_dir,
    resolve_model,
)

if TYPE_CHECKING:
    from tagger.tagger import Tagger

logger = logging.getLogger(__name__)
LoadFolder = Callable[[Path], "Tagger"]
DEFAULT_POLL_INTERVAL_S = 1.0


def load_folder_default(folder: Path) -> Tagger:
    """``Tagger.load(folder)`` with the default runtime and precision.

    Args:
        folder: a model folder.
    """
    from tagger.tagger import Tagger

    return Tagger.load(folder)


class ServedModel:
    """One loaded model, served as it is until the service stops.

    Args:
        tagger: the loaded model.

    Attributes:
        tagger: the tagger requests use now; replaced whole, never changed in place.
        problem: None, or why the service serves another version than the one asked for.
    """

    follows_registry = False

    def __init__(self, tagger: Tagger) -> None:
        self.tagger = tagger
        self.problem: str | None = None

    async def watch(self) -> None:
        """Follow the registry for the app's lifetime; a fixed model has nothing to follow."""


class RegistryModel(ServedModel):
    """The registry's version in service, swapped for the next one the registry serves.

    Loads the version in service when built (so a missing one fails before the service
    starts); :meth:`watch`, run as a task by the app, follows it from then on.

    Args:
        registry: the registry folder (``<registry>/current``, ``<registry>/versions/``).
        load_folder: loads one version's model folder; called on a background thread.
        poll_interval_s: how often the pointer file is read.

    Raises:
        TaggerError: no version is in service, or it cannot be loaded.
    """

    follows_registry = True

    def __init__(
        self,
        registry: Path,
        load_folder: LoadFolder = load_folder_default,
        *,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    ) -> None:
        self.registry = registry
        self._load_folder = load_folder
        self._poll_interval_s = poll_interval_s
        self.pointer, tagger = self._load_in_service()
        super().__init__(tagger)

    def _load_in_service(self) -> tuple[str | None, Tagger]:
        # The pointer is read before the folder is resolved: were it to change between
        # the two, the next check sees a change and loads again, never misses one.
        pointer = read_pointer_file(self.registry)
        return pointer, self._load_folder(resolve_model(CURRENT, registry_dir=self.registry))

    async def watch(self) -> None:
        """Check the pointer file every ``poll_interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(self._poll_interval_s)
            try:
                await self.check()
            except Exception:  # a bug here must not stop the following for good
                logger.exception("checking the registry %s failed", self.registry)

    async def check(self) -> None:
        """Swap in the version in service if the pointer file names another one."""
        try:
            pointer = await asyncio.to_thread(read_pointer_file, self.registry)
        except OSError as error:
            self._keep_old(f"{self.registry / POINTER_FILE} cannot be read ({error})")
            return
        if pointer == self.pointer:
            return
        self.pointer = pointer
        if pointer is None:
            self._keep_old(f"{self.registry / POINTER_FILE} names no version in service")
            return
        old = self.tagger.version
        try:
            _, tagger = await asyncio.to_thread(self._load_in_service)
        except Exception as error:
            if not isinstance(error, TaggerError):  # a bug: keep its traceback
                logger.exception("loading version %s failed", pointer)
            self._keep_old(f"version {pointer} is in service but could not be loaded: {error}")
            return
        self.tagger = tagger
        self.problem = None
        logger.info(
            "now serving version %s, the registry's version in service (was %s)",
            tagger.version,
            old,
        )

    def _keep_old(self, reason: str) -> None:
        self.problem = (
            f"{reason.rstrip('.')}; still serving version {self.tagger.version}, loaded before"
        )
        logger.warning("%s", self.problem)


def open_served_model(
    reference: ModelReference | None,
    load_folder: LoadFolder = load_folder_default,
    *,
    registry: str | os.PathLike[str] | None = None,
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
) -> ServedModel:
    """The model ``--model`` names: followed if it is ``current`` or None, else fixed.

    Args:
        reference: a model folder, a version id, ``current``, or None for ``current``.
        load_folder: loads a model folder (the command line's runtime and precision).
        registry: the registry folder; default ``$TAGGER_REGISTRY_DIR`` or ``models``.
        poll_interval_s: how often a followed registry's pointer file is read.

    Raises:
        TaggerError: the model is missing or cannot be loaded.
    """
    root = registry_dir(registry)
    if reference is None or os.fspath(reference) == CURRENT:
        return RegistryModel(root, load_folder, poll_interval_s=poll_interval_s)
    return ServedModel(load_folder(resolve_model(reference, registry_dir=root)))
