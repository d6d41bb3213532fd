"""The tagger as an HTTP service: ``python -m tagger.serve --model REF --port N``.

:mod:`tagger.serve.app` has the routes (``POST /tag``, ``POST /tag-bio``, ``GET /health``)
and :func:`create_app`; :mod:`tagger.serve.batcher` tags concurrent requests together;
:mod:`tagger.serve.model_watch` follows the registry's version in service;
:mod:`tagger.serve.body` bounds and reads request bodies; :mod:`tagger.serve.__main__`
is the command line (FastAPI on uvicorn).
"""

from tagger.serve.app import ServeSettings, create_app
from tagger.serve.model_watch import RegistryModel, ServedModel, open_served_model

__all__ = ["RegistryModel", "ServeSettings", "ServedModel", "create_app", "open_served_model"]
