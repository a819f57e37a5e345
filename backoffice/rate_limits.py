"""Rate limits shared by every worker and process: counters in the database.

A ``Limit`` allows ``attempts`` per ``window`` for each key of its ``scope`` (an account, a
client address, an e-mail recipient). ``hit(limit, key)`` counts one attempt and answers
how long to wait when it is beyond the limit (None: go on). The count is one atomic
statement — ``INSERT … ON CONFLICT (scope, key) DO UPDATE … RETURNING`` (PostgreSQL, and
SQLite ≥ 3.35) — so parallel attempts in any number of processes each get their own
number: there is no read-then-write race and no unique-key violation on the first attempt.
Callers count *before* doing the guarded work (checking a password, queuing an e-mail) and
commit at once, so that an attempt beyond the limit never reaches that work.

The window is fixed: it starts at the first attempt and, once it has ended, the next
attempt starts a new one at 1 (the counters decay by themselves). Attempts beyond the limit
are counted too but do not move the window: waiting always ends. ``reset`` forgets a key
(a successful login); ``purge`` deletes the rows of ended windows (a daily job).

Why not Flask-Limiter: its counters live in memory unless a shared store (Redis,
Memcached, MongoDB) is deployed; this application has only its database, and a limit kept
per worker is what let 30 parallel logins through.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, delete, literal
from sqlalchemy.dialects import postgresql, sqlite

from backoffice import clock
from backoffice.extensions import db
from backoffice.models import RateLimit
from backoffice.models.base import UTCDateTime


@dataclass(frozen=True)
class Limit:
    scope: str              # e.g. "connexion_compte"
    attempts: int           # allowed per window
    window: dt.timedelta


def _key(key: str | None) -> str:
    return (key or "").strip().lower()[:254]


def hit(limit: Limit, key: str | None, *, at: dt.datetime | None = None) -> dt.timedelta | None:
    """Count one attempt for ``key``; None when it is within the limit, otherwise how long
    until the window ends. The caller commits (at once, before the guarded work)."""
    now = at or clock.now()
    table = RateLimit.__table__
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert
    ended = table.c.window_start <= now - limit.window
    statement = insert(table).values(scope=limit.scope, key=_key(key), count=1,
                                     window_start=now)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.scope, table.c.key],
        set_={"count": case((ended, 1), else_=table.c.count + 1),
              "window_start": case((ended, literal(now, UTCDateTime())),
                                   else_=table.c.window_start)},
    ).returning(table.c.count, table.c.window_start)
    count, window_start = db.session.execute(statement).one()
    if count <= limit.attempts:
        return None
    return max(window_start + limit.window - now, dt.timedelta(seconds=1))


def reset(limit: Limit, key: str | None) -> None:
    db.session.execute(delete(RateLimit).where(RateLimit.scope == limit.scope,
                                               RateLimit.key == _key(key)))


PURGE_AFTER = dt.timedelta(days=1)  # longer than every window


def purge(*, at: dt.datetime) -> int:
    """Delete the counters whose window started before ``at - PURGE_AFTER``; how many."""
    result = db.session.execute(delete(RateLimit).where(RateLimit.window_start < at - PURGE_AFTER))
    return result.rowcount or 0
