"""SQLite, the embedded database of development and ``make run``: how its connections are
set up so that the scheduler running inside the web process and the pages do not lock
each other out (« database is locked »).

Every connection gets foreign keys, WAL (readers never wait for the writer) and a busy
timeout (``SQLITE_BUSY_TIMEOUT_MS``: a writer waits that long for the write lock). pysqlite's
own BEGIN handling is switched off (it breaks SAVEPOINTs: a released savepoint would commit)
and the transaction is started here, by the first statement that needs it:

* a read (``SELECT``, ``PRAGMA``) before the first write runs on its own and sees the latest
  committed data — as each statement does on PostgreSQL, in READ COMMITTED;
* the first write (``INSERT``, ``UPDATE``, ``DELETE``, ``SAVEPOINT``, DDL) or a
  ``SELECT … FOR UPDATE`` first sends ``BEGIN IMMEDIATE``: the transaction takes the write
  lock at once, waiting for it up to the busy timeout, and keeps it until it ends.

Why: in WAL mode a deferred transaction that has read and then writes cannot wait for the
lock. If another connection committed since its first read (or holds the lock right then),
SQLite refuses the write at once with SQLITE_BUSY — the busy timeout does not apply. That is
the shape of most work here: a job reads a batch, sends an e-mail, then marks it sent, while a
user's page commits in between; a page reads its session, then saves. Starting every
transaction ``IMMEDIATE`` cures it too, but then a read-only page would queue behind the
writer, and a job would hold the lock through each SMTP or HTTP call (the pages waiting).
Here the lock is held from the first write to the commit only, and a ``SELECT … FOR
UPDATE`` (the row locks the services take on PostgreSQL) serialises as it does there.
"""
from __future__ import annotations

from flask import Flask
from sqlalchemy import event

PENDING = "backoffice.sqlite_begin_pending"  # on connection.info: BEGIN not sent yet
READS = ("SELECT", "PRAGMA")


def init_app(app: Flask) -> None:
    from backoffice.extensions import db

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    busy_timeout_ms = int(app.config["SQLITE_BUSY_TIMEOUT_MS"])
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()
        dbapi_connection.isolation_level = None  # pysqlite sends no BEGIN of its own

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.info[PENDING] = True

    @event.listens_for(engine, "before_cursor_execute")
    def _before_statement(connection, cursor, statement, _parameters, context, _many):
        if connection.info.get(PENDING) and needs_write_lock(statement, context):
            connection.info[PENDING] = False
            cursor.execute("BEGIN IMMEDIATE")

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(connection):
        # pysqlite's commit() and rollback() do nothing when no BEGIN was sent.
        connection.info.pop(PENDING, None)


def needs_write_lock(statement: str, context) -> bool:
    """Whether ``statement`` must run inside the transaction's write lock: anything but a
    read, and a read ``FOR UPDATE`` (the SQLite compiler drops the clause itself)."""
    if not statement.lstrip()[:6].upper().startswith(READS):
        return True
    compiled = getattr(context, "compiled", None)
    return getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is not None
