"""The app process never imports TensorFlow, Keras or ``training``.

The app runs under AppTest in a fresh Python process on the real tiny model served by
ONNX Runtime (its graphs derived beforehand, as the worker does after training): it
tags a text, queues a retrain with the Retrain button, promotes another version and
rolls back, tagging after each switch. Then the process's ``sys.modules`` must hold no
``tensorflow``, ``keras`` or ``training`` module (nor the worker's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from curation import Curation
from curation.promotion import PromotionDecision
from tagger.runtimes import DEFAULT_PRECISIONS, ensure_onnx_graph
from tests.conftest import REPO_ROOT
from tests.worker_helpers import clone_version

APP_SESSION = r"""
import json, sys
from streamlit.testing.v1 import AppTest

def labels(elements):
    return " ".join(str(element.value) for element in elements)

def tag(app, text):
    app.switch_page("app/page_tag.py").run()
    app.text_area(key="tag_text").input(text)
    app.button[0].click().run()
    assert not app.exception, app.exception
    return labels(app.caption)

app = AppTest.from_file("streamlit_app.py", default_timeout=240)
app.session_state["annotator"] = "tester"
app.run()
assert not app.exception, app.exception
first = tag(app, "Patients developed seizures after cocaine.")

app.switch_page("app/page_training.py").run()
retrain = next(b for b in app.button if b.label == "Retrain")
assert not retrain.disabled, retrain.help
retrain.click().run()
assert not app.exception, app.exception
assert "Queued job" in labels(app.success), labels(app.success)

next(b for b in app.button if b.key == "promote_v2").click().run()
assert not app.exception, app.exception
promoted = tag(app, "No hepatitis was seen with heparin treatment.")

app.switch_page("app/page_training.py").run()
next(b for b in app.button if b.label.startswith("Roll back")).click().run()
assert not app.exception, app.exception
rolled_back = tag(app, "Lithium induced renal failure in two patients.")

heavy = sorted(
    name for name in sys.modules
    if name.split(".")[0] in ("tensorflow", "keras", "training", "worker", "torch", "jax")
)
print(json.dumps({"first": first, "promoted": promoted, "rolled_back": rolled_back,
                  "heavy": heavy}))
"""


def test_the_app_never_imports_tensorflow_keras_or_training(
    tiny_model_dir: Path, tmp_path: Path, onnx_cache: Path
) -> None:
    curation = Curation.open(data_dir=tmp_path / "data", registry_dir=tmp_path / "models")
    for version in ("v1", "v2"):
        folder = clone_version(tiny_model_dir, curation.registry.versions_dir, version)
        curation.registry.register_folder(
            folder,
            decision=PromotionDecision(version == "v1", "test"),
            expected_serving=curation.registry.serving_version(),
        )
        ensure_onnx_graph(folder, version, DEFAULT_PRECISIONS["onnx"])
    curation.corrections.save(
        words=["seizures", "."],
        labels=["B-Disease", "O"],
        predicted=["O", "O"],
        source="text:1",
        sentence_index=0,
        model_version="v1",
        annotator="tester",
    )
    env = {
        **os.environ,
        "TAGGER_DATA_DIR": str(tmp_path / "data"),
        "TAGGER_REGISTRY_DIR": str(tmp_path / "models"),
        "TAGGER_MODEL_DIR": str(tmp_path / "no-model-folder"),
        "TAGGER_START_WORKER": "0",  # a worker would import TensorFlow: in its own process
        "TAGGER_CACHE_DIR": str(onnx_cache),
    }
    env.pop("TAGGER_DB_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", APP_SESSION],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "Model **v1** on **CPU" in report["first"], report
    assert "Model **v2** on **CPU" in report["promoted"], report  # hot swap, no restart
    assert "Model **v1** on **CPU" in report["rolled_back"], report
    assert report["heavy"] == []
    [job] = curation.queue.jobs()
    assert job.requested_by == "tester" and job.status == "queued"


def imported_roots(folder: Path) -> dict[str, set[str]]:
    """Every top-level package each module under ``folder`` imports (lazy imports too)."""
    import ast

    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        roots: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                roots.add(node.module.split(".")[0])
        found[str(path.relative_to(REPO_ROOT))] = roots
    return found


def test_the_curation_layer_imports_neither_keras_nor_training() -> None:
    forbidden = {"keras", "keras_hub", "tensorflow", "training", "worker", "app", "torch", "jax"}
    offenders = {
        module: sorted(roots & forbidden)
        for module, roots in imported_roots(REPO_ROOT / "curation").items()
        if roots & forbidden
    }
    assert offenders == {}


def test_the_app_imports_only_tagger_and_curation_of_ours() -> None:
    ours_elsewhere = {"training", "worker", "benchmarks", "keras", "keras_hub", "tensorflow"}
    offenders = {
        module: sorted(roots & ours_elsewhere)
        for module, roots in imported_roots(REPO_ROOT / "app").items()
        if roots & ours_elsewhere
    }
    assert offenders == {}


def test_tagger_imports_nothing_of_ours_above_it() -> None:
    above = {"training", "curation", "worker", "app", "benchmarks"}
    offenders = {
        module: sorted(roots & above)
        for module, roots in imported_roots(REPO_ROOT / "tagger").items()
        if roots & above
    }
    assert offenders == {}
