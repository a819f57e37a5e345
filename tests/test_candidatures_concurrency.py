"""Concurrent submissions and avis on PostgreSQL, with real threads released together by
a barrier: the service locks the candidate row (or the session row for a « retenue »)
before counting, so the checks are serialised and the limits hold."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from backoffice import clock
from backoffice.extensions import db
from backoffice.models import (Candidate, Candidature, CandidatureState, FormationState,
                               Membership, Session, User)
from backoffice.services import candidatures as service
from tests import factories as f

MONDAY_10 = dt.datetime(2026, 3, 9, 10, 0, tzinfo=clock.PARIS)


@pytest.fixture(autouse=True)
def monday_morning():
    # Both databases: PostgreSQL locks the rows; SQLite's first write takes the database's
    # write lock (backoffice/sqlite.py), which serialises the same checks.
    with clock.frozen(MONDAY_10):
        yield


def open_session(**overrides) -> Session:
    formation = f.create_formation(state=FormationState.VALIDEE)
    return f.create_published_session(formation, **overrides)


def run_together(app, jobs) -> list[str]:
    """Run each ``job()`` in its own thread and application context, all released at
    once; return "ok" or the French refusal for each."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[str] = [""] * len(jobs)

    def run(index, job):
        with app.app_context():
            try:
                prepare = job()
                barrier.wait()
                prepare()
                db.session.commit()
                outcomes[index] = "ok"
            except service.CandidatureError as error:
                db.session.rollback()
                outcomes[index] = error.messages[0]
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(outcomes), outcomes
    return outcomes


def submission(user_id: int, candidate_id: int, session_id: int):
    def job():
        user = db.session.get(User, user_id)
        membership = db.session.scalar(select(Membership).where(Membership.user_id == user_id))
        candidature = service.new_candidature(
            db.session.get(Candidate, candidate_id), db.session.get(Session, session_id),
            actor=user, membership=membership)

        def go():
            service.save(candidature, {"consentement": True}, actor=user, membership=membership,
                         submit=True)
        return go
    return job


def test_two_prescribers_submit_the_same_candidate_to_the_same_session(app):
    """Exactly one candidature is recorded; the other prescriber is told why."""
    first, second = f.create_prescriber("prescripteur_n2"), f.create_prescriber("prescripteur_n3")
    candidate, session = f.create_candidate(), open_session()
    db.session.commit()
    outcomes = run_together(app, [submission(first.id, candidate.id, session.id),
                                  submission(second.id, candidate.id, session.id)])
    assert sorted(outcomes)[1] == "ok"
    assert "a déjà une candidature en cours sur la session" in sorted(outcomes)[0]
    assert db.session.scalar(select(func.count(Candidature.id)).where(
        Candidature.candidate_id == candidate.id)) == 1


def test_four_parallel_submissions_for_a_candidate_with_two_pending(app):
    """A candidate with 2 candidatures waiting for an avis: of 4 simultaneous submissions
    on 4 sessions, exactly 1 is accepted (3 pending at most)."""
    candidate = f.create_candidate()
    for _ in range(2):
        f.create_candidature(candidate=candidate, session=open_session())
    prescribers = [f.create_prescriber("prescripteur_n2") for _ in range(4)]
    sessions = [open_session() for _ in range(4)]
    db.session.commit()
    outcomes = run_together(app, [submission(p.id, candidate.id, s.id)
                                  for p, s in zip(prescribers, sessions)])
    assert outcomes.count("ok") == 1, outcomes
    assert db.session.scalar(select(func.count(Candidature.id)).where(
        Candidature.candidate_id == candidate.id,
        Candidature.state == CandidatureState.EN_ATTENTE_AVIS)) == 3


def test_concurrent_retenue_avis_never_exceed_the_places(app):
    """One place left, three OF managers retain three candidatures at the same moment:
    one succeeds, the others are told the session is full."""
    session = open_session(places=2)
    f.create_candidature(session=session, state=CandidatureState.RETENUE)
    pending = [f.create_candidature(session=session) for _ in range(3)]
    of_structure = session.formation.structure
    managers = [f.create_of_manager(of_structure) for _ in range(3)]
    db.session.commit()

    def avis(user_id, candidature_id):
        def job():
            user = db.session.get(User, user_id)
            candidature = db.session.get(Candidature, candidature_id)
            candidature.session  # loaded before the others commit

            def go():
                service.give_avis(candidature, CandidatureState.RETENUE, actor=user)
            return go
        return job

    outcomes = run_together(app, [avis(m.id, c.id) for m, c in zip(managers, pending)])
    assert outcomes.count("ok") == 1, outcomes
    assert all("Plus de place" in o for o in outcomes if o != "ok")
    assert db.session.scalar(select(func.count(Candidature.id)).where(
        Candidature.session_id == session.id,
        Candidature.state == CandidatureState.RETENUE)) == 2
