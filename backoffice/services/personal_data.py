"""The RGPD access log: every read of a candidate's personal data by a staff member is
written as a ``PersonalDataAccess`` row (who, role, when, which candidate, what, where).

``record_access`` takes plain data and only adds the row; the caller commits (for a page
that only reads, right away, so that the trace stays even if the page then fails).
``is_traced(user)`` says whose reads are logged: staff accounts (admin, moderateur,
responsable_regles), on the admin screens and on the front pages they may reach.
"""
from __future__ import annotations

import datetime as dt

from backoffice import clock
from backoffice.extensions import db
from backoffice.models import PersonalDataAccess, User


def is_traced(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "staff_role", None))


def record_access(*, actor: User, candidate_id: int | None, what: str, location: str,
                  at: dt.datetime | None = None) -> PersonalDataAccess:
    row = PersonalDataAccess(actor_id=actor.id, actor_role=actor.staff_role,
                             candidate_id=candidate_id, what=what[:100],
                             location=location[:500], at=at or clock.now())
    db.session.add(row)
    db.session.flush()
    return row
