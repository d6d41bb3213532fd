"""``python -m worker``: see :mod:`worker.loop`."""

from worker.loop import main

raise SystemExit(main())
