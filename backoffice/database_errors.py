"""The database lost mid-request: a French 503, and one retry where it is safe.

* A connection dropped under a request (server restart, connections terminated, failover),
  a transaction refused by PostgreSQL for a serialization failure or a deadlock, or SQLite
  locked beyond its busy timeout by another writer raises
  ``OperationalError``/``InterfaceError``. ``is_transient`` recognises them; the error
  handler rolls back, answers « Service momentanément indisponible » (503, with
  ``Retry-After``) and marks the request.
* ``RetryOnce`` (WSGI middleware) runs a marked GET or HEAD request once more: those are
  idempotent, and SQLAlchemy has already thrown the dead connection away, so the second
  run takes a fresh one (``pool_pre_ping`` checks it at checkout). A POST is never run
  twice: its user sees the 503 page and submits again, and nothing half-written stayed
  (one transaction per user action, rolled back).
"""
from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

MARK = "backoffice.database_lost"
SAFE_METHODS = ("GET", "HEAD")
# SQLSTATE of the refusals worth a retry: serialization failure, deadlock detected.
RETRYABLE_SQLSTATES = {"40001", "40P01"}


def is_transient(error: Exception) -> bool:
    """Whether ``error`` is a lost connection or a refusal that a new attempt may pass."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated or isinstance(error, InterfaceError):
        return True
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in RETRYABLE_SQLSTATES or (sqlstate or "").startswith("08"):
        return True  # 08xxx: connection exception
    # SQLite: another writer held the database beyond the busy timeout.
    return isinstance(error, OperationalError) and "database is locked" in str(error.orig)


def mark(environ: dict) -> None:
    environ[MARK] = True


class RetryOnce:
    """Runs a GET or HEAD request a second time when the first run lost the database."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") not in SAFE_METHODS:
            return self.app(environ, start_response)
        captured: list = []

        def capture(status, headers, exc_info=None):
            captured[:] = [status, headers, exc_info]
            return lambda data: None  # Flask never uses write()

        body = self.app(environ, capture)
        if environ.pop(MARK, False):
            if hasattr(body, "close"):
                body.close()
            log.warning("database lost during %s %s: request run again",
                        environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            return self.app(environ, start_response)
        start_response(*captured)
        return body
