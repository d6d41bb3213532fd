"""The sample abstracts shipped in ``assets/`` (``sample_*.txt``), for a quick try.

Example:

>>> samples = load_samples()
>>> len(samples) >= 3 and all(text.strip() for text in samples.values())
True
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def sample_title(path: Path) -> str:
    """``sample_liver_injury.txt`` → ``Liver injury``."""
    return path.stem.removeprefix("sample_").replace("_", " ").capitalize()


def load_samples(folder: Path = ASSETS) -> dict[str, str]:
    """Title → text of every sample abstract, sorted by title."""
    files = sorted(folder.glob("sample_*.txt"), key=sample_title)
    return {sample_title(path): path.read_text(encoding="utf-8").strip() for path in files}
