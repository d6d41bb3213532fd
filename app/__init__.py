"""The curator's Streamlit app: tag text, inspect BIO files, correct and save sentences.

One module per page (``page_*.py``, run by ``st.navigation`` from ``streamlit_app.py``)
and shared helpers: settings, the served model and the corrections store
(``services``), session state (``state``), HTML rendering with escaping
(``render``), input checks (``inputs``), word-label edits (``editing``) and
file-versus-model scores (``evaluation``). The app calls only the ``tagger`` and
``training`` APIs.

Run it with ``streamlit run streamlit_app.py`` (or ``make run``).
"""
