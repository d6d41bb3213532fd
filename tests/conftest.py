"""Test settings under tests/: the repository root.

The backend, quiet logs, the ONNX cache and the `tiny_model_dir` and `bc5cdr_dir` fixtures
are in the root conftest.py, which the docstring examples of the packages see too.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
