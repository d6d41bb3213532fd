"""A batch tagger whose Ray actor dies once, for the fault-tolerance tests.

Ray workers import it by name, so it lives in a module of its own (not in a test file).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tagger.batch.tagging import DocumentTagger

KILL_MARKER_ENV = "TAGGER_TEST_KILL_MARKER"


class TaggerKilledOnce(DocumentTagger):
    """Kills its own worker process on the first batch while the marker file exists.

    The marker is removed first, so the restarted actor tags the retried batch normally;
    a second marker file records that the kill happened.
    """

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        marker = Path(os.environ[KILL_MARKER_ENV])
        try:
            marker.unlink()
        except FileNotFoundError:
            return super().__call__(batch)
        marker.with_suffix(".killed").write_text(str(os.getpid()))
        os._exit(1)
