"""The curator's Streamlit app: tag text, inspect BIO files, correct, save and retrain.

One module per page (``page_*.py``, run by ``st.navigation`` from ``streamlit_app.py``)
and shared helpers: settings, the served model, the stores and the training worker
(``services``), the Training page's tables (``training_view``), session state
(``state``), HTML rendering with escaping (``render``), input checks (``inputs``),
word-label edits (``editing``) and file-versus-model scores (``evaluation``). The app
calls only the ``tagger`` and ``training`` APIs.

Run it with ``streamlit run streamlit_app.py`` (or ``make run``).
"""
