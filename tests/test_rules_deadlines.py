"""Deadlines: the durations of the scheduled jobs come from rules/deadlines.yaml, and the
rules say which deadline an object has reached."""
from __future__ import annotations

import datetime as dt

import pytest

from backoffice import clock, facts, rules_engine
from backoffice.models import CandidatureState, FormationState
from tests.factories import create_candidate, create_candidature, create_formation, create_session

NOW = dt.datetime(2027, 3, 10, 9, 0, tzinfo=clock.PARIS)  # a Wednesday
DAY = dt.timedelta(days=1)


def reached(obj):
    return [v.rule_id for v in rules_engine.check("deadlines", obj, at=NOW)]


@pytest.mark.parametrize("state, field, age, expected", [
    (CandidatureState.BROUILLON, "updated_at", 14, []),
    (CandidatureState.BROUILLON, "updated_at", 15, ["brouillon_a_supprimer"]),
    (CandidatureState.EN_ATTENTE_VALIDATION, "submitted_at", 11, []),
    (CandidatureState.EN_ATTENTE_VALIDATION, "submitted_at", 12, ["relance_validation_niveau1"]),
    (CandidatureState.EN_ATTENTE_VALIDATION, "submitted_at", 15, ["validation_niveau1_expiree"]),
    (CandidatureState.EN_ATTENTE_AVIS, "submitted_at", 40, []),
])
def test_candidature_deadlines(db, state, field, age, expected):
    candidature = create_candidature(state=state)
    db.session.flush()
    setattr(candidature, field, NOW - age * DAY)
    if field == "updated_at":
        candidature.updated_at = NOW - age * DAY
    assert reached(candidature) == expected


@pytest.mark.parametrize("days_after, expected", [(0, []), (1, ["avis_non_transmis"])])
def test_avis_not_given_after_the_late_entry_date(db, days_after, expected):
    session = create_session(date_entree_tardive=NOW.date() - days_after * DAY)
    candidature = create_candidature(session=session, state=CandidatureState.EN_ATTENTE_AVIS)
    assert reached(candidature) == expected


@pytest.mark.parametrize("submitted, expected", [
    (dt.datetime(2027, 3, 4, 9, 0, tzinfo=clock.PARIS), []),                      # 4 working days
    (dt.datetime(2027, 3, 3, 9, 0, tzinfo=clock.PARIS), ["relance_moderation"]),  # 5
])
def test_moderation_reminder_after_five_working_days(db, submitted, expected):
    formation = create_formation(state=FormationState.EN_ATTENTE_MODERATION, submitted_at=submitted)
    assert reached(formation) == expected


@pytest.mark.parametrize("last_activity, expected", [
    (dt.datetime(2025, 3, 11, 9, 0, tzinfo=clock.PARIS), []),
    (dt.datetime(2025, 3, 10, 9, 0, tzinfo=clock.PARIS), ["donnees_a_purger"]),
])
def test_retention_two_years(db, last_activity, expected):
    candidate = create_candidate(last_activity_at=last_activity)
    assert reached(candidate) == expected


def test_working_days_between():
    wednesday = dt.date(2027, 3, 10)
    assert facts.working_days_between(dt.date(2027, 3, 3), wednesday) == 5
    assert facts.working_days_between(dt.date(2027, 3, 5), dt.date(2027, 3, 8)) == 1
    assert facts.working_days_between(wednesday, wednesday) == 0
