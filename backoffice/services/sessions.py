"""Server-side login sessions: a cookie is worth only what its ``UserSession`` row says.

At login a random key goes into the (signed) Flask session cookie; the database keeps its
SHA-256 only, with the times and the client. ``live(key)`` is the one check every request
goes through (``auth.load_user``): the session must exist, not be ended, not be idle for
longer than ``SESSION_IDLE_MINUTES_STAFF`` (staff) or ``SESSION_IDLE_MINUTES`` (others),
and not be older than ``SESSION_MAX_HOURS``. Ending is server-side and immediate: logout,
a password change or reset, « Fermer mes autres sessions » and the deactivation of the
account (workflow side effect ``fermer_sessions``) end the rows, so a captured cookie
replayed afterwards grants nothing.

The last activity is written at most once a minute (``TOUCH_EVERY``), not on every page.
Times come from ``clock.now()``. Services take plain data; the caller commits.
"""
from __future__ import annotations

import datetime as dt
import secrets

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from backoffice import clock, workflow
from backoffice.extensions import db
from backoffice.models import SessionEndReason, User, UserSession

TOUCH_EVERY = dt.timedelta(minutes=1)


# How long ended sessions stay in the « Sessions de connexion » history (job purge_sessions).
HISTORY = dt.timedelta(days=90)


def idle_limit(user: User) -> dt.timedelta:
    name = "SESSION_IDLE_MINUTES_STAFF" if user.is_staff else "SESSION_IDLE_MINUTES"
    return dt.timedelta(minutes=current_app.config[name])


def max_lifetime() -> dt.timedelta:
    return dt.timedelta(hours=current_app.config["SESSION_MAX_HOURS"])


def open_session(user: User, *, address: str | None, user_agent: str | None
                 ) -> tuple[UserSession, str]:
    """A new session of ``user`` and its clear key (for the cookie, never stored)."""
    key = secrets.token_urlsafe(32)
    now = clock.now()
    row = UserSession(user=user, key_hash=UserSession.hash(key), created_at=now,
                      last_seen_at=now, client_address=(address or "")[:45] or None,
                      user_agent=(user_agent or "")[:300] or None, mfa_failures=0)
    db.session.add(row)
    db.session.flush()
    return row, key


def renew_key(row: UserSession) -> str:
    """A new key for ``row`` (when the second factor passed): a cookie copied between the
    password and the code is worth nothing afterwards. Returns the clear key."""
    key = secrets.token_urlsafe(32)
    row.key_hash = UserSession.hash(key)
    return key


def _expiry(row: UserSession, now: dt.datetime) -> str | None:
    if now - row.created_at >= max_lifetime():
        return SessionEndReason.DUREE_MAXIMALE
    if now - row.last_seen_at >= idle_limit(row.user):
        return SessionEndReason.INACTIVITE
    return None


def live(key: str | None) -> tuple[UserSession | None, bool]:
    """The live session whose key is ``key`` (None when unknown, ended or expired — an
    expired one is ended now), with its last activity brought up to date at most once a
    minute. Returns ``(session, written)``: ``written`` tells the caller to commit."""
    if not key:
        return None, False
    row = db.session.scalar(select(UserSession).options(joinedload(UserSession.user)).where(
        UserSession.key_hash == UserSession.hash(key), UserSession.ended_at.is_(None)))
    if row is None:
        return None, False
    now = clock.now()
    reason = _expiry(row, now)
    if reason is not None:
        end(row, reason)
        return None, True
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        return row, True
    return row, False


def end(row: UserSession, reason: str) -> None:
    if row.ended_at is None:
        row.ended_at = clock.now()
        row.end_reason = reason


def end_all(user: User, reason: str, *, keep: UserSession | None = None) -> int:
    """End every open session of ``user`` (but ``keep``); returns how many ended."""
    if user.id is None:  # an account being created has no session yet
        return 0
    query = select(UserSession).where(UserSession.user_id == user.id,
                                      UserSession.ended_at.is_(None))
    if keep is not None:
        query = query.where(UserSession.id != keep.id)
    rows = list(db.session.scalars(query))
    for row in rows:
        end(row, reason)
    db.session.flush()
    return len(rows)


def open_sessions(user: User) -> list[UserSession]:
    """The sessions of ``user`` still usable now, most recent activity first."""
    now = clock.now()
    rows = db.session.scalars(select(UserSession).where(
        UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc()))
    return [row for row in rows if _expiry(row, now) is None]


@workflow.side_effect("fermer_sessions")
def _close_sessions_on_deactivation(user, *, transition, actor, reason, log) -> None:
    """Workflow side effect (user ``desactiver``): the account's sessions end at once."""
    end_all(user, SessionEndReason.DESACTIVATION)
