"""The curator's app: `streamlit run streamlit_app.py` (or `make run`).

Settings come from the environment: TAGGER_MODEL_DIR (default models/default),
TAGGER_DATA_DIR (default data), TAGGER_REGISTRY_DIR (default models), TAGGER_DB_URL
(default: SQLite in the data folder), TAGGER_START_WORKER (default 1),
TAGGER_MAX_UPLOAD_MB (default 20); see app/settings.py.
"""

from __future__ import annotations

from app.shell import main

main()
