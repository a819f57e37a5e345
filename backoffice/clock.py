"""The one clock of the application.

Every piece of code asks ``now()`` for the current instant; nothing else reads the
system time. Instants are timezone-aware UTC; ``to_local`` converts them to
Europe/Paris for display. Tests and the CLI (``--at``) set the clock with
``set_now`` or the ``frozen`` context manager.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
PARIS = ZoneInfo("Europe/Paris")

_fixed: dt.datetime | None = None
# A scheduled job runs "for" an instant: inside its thread only, now() is that instant.
_job_instant: contextvars.ContextVar[dt.datetime | None] = contextvars.ContextVar(
    "job_instant", default=None)


def _as_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("l'instant doit porter un fuseau horaire (UTC ou Europe/Paris)")
    return value.astimezone(UTC)


def now() -> dt.datetime:
    """The current instant, timezone-aware, in UTC."""
    job_instant = _job_instant.get()
    if job_instant is not None:
        return job_instant
    if _fixed is not None:
        return _fixed
    return dt.datetime.now(UTC)


def lease_now() -> dt.datetime:
    """The instant for leases (``OutboundMessage.claimed_until``): the real time, or the
    clock a test fixed with ``set_now``, but never the instant a job runs *for*: a job may
    run for a fixed instant while its work takes minutes, and a lease must expire in time
    as it passes."""
    if _fixed is not None:
        return _fixed
    return dt.datetime.now(UTC)


def today() -> dt.date:
    """Today's date in Europe/Paris (the date users see)."""
    return now().astimezone(PARIS).date()


def set_now(value: dt.datetime | None) -> None:
    """Fix the clock at ``value`` (aware datetime); ``None`` lets it run again."""
    global _fixed
    _fixed = None if value is None else _as_utc(value)


@contextlib.contextmanager
def frozen(value: dt.datetime) -> Iterator[dt.datetime]:
    previous = _fixed
    set_now(value)
    try:
        yield now()
    finally:
        set_now(previous)


@contextlib.contextmanager
def running_at(value: dt.datetime) -> Iterator[dt.datetime]:
    """``now()`` is ``value`` in the current thread (or task) only: used by scheduled jobs,
    which may run beside web requests in the same process."""
    token = _job_instant.set(_as_utc(value))
    try:
        yield _job_instant.get()
    finally:
        _job_instant.reset(token)


def parse_instant(text: str) -> dt.datetime:
    """Parse an ISO date-time; without an offset it is read as Europe/Paris time."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=PARIS)
    return value.astimezone(UTC)


def to_local(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(PARIS)


def format_local(value: dt.datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    local = to_local(value)
    return "" if local is None else local.strftime(fmt)
