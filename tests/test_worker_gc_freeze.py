"""A web worker freezes the objects it loads at start (``Config.GC_FREEZE_AT_START``), so
that the garbage collector's full passes do not walk the application again on every
collection; the test configuration does not (hundreds of applications in one process)."""
from __future__ import annotations

import gc

from backoffice import create_app
from backoffice.config import TestingConfig


def test_a_worker_application_freezes_what_it_loaded_and_the_tests_do_not(database_url):
    gc.unfreeze()
    try:
        create_app(TestingConfig)
        assert gc.get_freeze_count() == 0
        app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "GC_FREEZE_AT_START": True})
        assert gc.get_freeze_count() > 10_000
        assert gc.is_tracked(app.config) and not app.testing
    finally:
        gc.unfreeze()
