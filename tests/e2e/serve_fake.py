"""Run the app's Streamlit server on the fake tagger, for the browser test.

Usage: ``python tests/e2e/serve_fake.py PORT`` from the repository root, with
``TAGGER_MODEL_DIR`` pointing at a folder made by ``write_fake_model_folder``.
Streamlit runs in this process, so the patched ``build_tagger`` is what the app uses.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def main(port: int) -> None:
    sys.path.insert(0, str(REPO_ROOT))
    from streamlit.web import cli

    from app import services
    from tests.app_fakes import FakeTagger

    services.build_tagger = FakeTagger.load
    sys.argv = [
        "streamlit",
        "run",
        str(REPO_ROOT / "streamlit_app.py"),
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--global.developmentMode=false",
    ]
    cli.main()


if __name__ == "__main__":
    main(int(sys.argv[1]))
