"""Scheduled jobs: each on crafted data at fixed instants, run twice; an interrupted run
finished by the next one; one scheduler process only."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from backoffice import clock, scheduler, workflow
from backoffice.models import (Candidate, Candidature, Delegation, Formation,
                               JobRun, OutboundMessage, StaffRole, StructureKind, Token,
                               TransitionLog)
from tests.factories import (create_candidate, create_candidature, create_formation,
                             create_member, create_session, create_staff, create_structure,
                             create_user)

NOW = dt.datetime(2027, 3, 10, 9, 0, tzinfo=clock.PARIS)  # a Wednesday
DAY = dt.timedelta(days=1)


@pytest.fixture
def at_now():
    with clock.frozen(NOW):
        yield NOW


def _count(db, model, *conditions) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def _twice(name: str, at=NOW, **kwargs) -> tuple[JobRun, JobRun]:
    first = scheduler.run_job(name, at=at, **kwargs)
    second = scheduler.run_job(name, at=at, **kwargs)
    assert first.status == second.status == "succes", (first.error, second.error)
    return first, second


def _prescriber_world():
    structure = create_structure(kind=StructureKind.PRESCRIPTEUR, prescriber_type="france_travail")
    author = create_member(structure, profile_prescripteur="prescripteur_n1")
    validator = create_member(structure, profile_prescripteur="prescripteur_n3")
    return structure, author, validator


def test_drafts_untouched_for_15_days_go_to_the_bin(db, at_now):
    structure, author, _ = _prescriber_world()
    with clock.frozen(NOW - 16 * DAY):
        old = create_candidature(state="brouillon", consentement=False, prescriber_user=author,
                                 prescriber_structure=structure)
    with clock.frozen(NOW - 14 * DAY):
        recent = create_candidature(state="brouillon", consentement=False,
                                    prescriber_user=author, prescriber_structure=structure)
    db.session.commit()
    first, second = _twice("expiration_brouillons")
    assert (first.rows_changed, second.rows_changed) == (1, 0)
    assert first.summary == "1 brouillon placé à la corbeille"
    db.session.expire_all()
    assert (db.session.get(Candidature, old.id).state, db.session.get(Candidature, recent.id).state) \
        == ("corbeille", "brouillon")
    log = db.session.scalar(select(TransitionLog))
    assert (log.transition, log.actor_id, log.at) == ("expirer_brouillon", None, NOW)


def test_level1_candidature_reminded_then_expired(db, at_now):
    structure, author, validator = _prescriber_world()
    with clock.frozen(NOW - 13 * DAY):
        reminded = create_candidature(state="en_attente_validation", prescriber_user=author,
                                      prescriber_structure=structure, submitted_at=clock.now())
    with clock.frozen(NOW - 16 * DAY):
        expired = create_candidature(state="en_attente_validation", prescriber_user=author,
                                     prescriber_structure=structure, submitted_at=clock.now())
    db.session.commit()
    first, second = _twice("rappel_validation_niveau_1")
    assert (first.rows_changed, second.rows_changed) == (2, 0)  # both are past the reminder
    assert {m.recipient for m in db.session.scalars(select(OutboundMessage))} == {validator.email}
    first, second = _twice("expiration_validation_niveau_1")
    assert (first.rows_changed, second.rows_changed) == (1, 0)
    db.session.expire_all()
    assert db.session.get(Candidature, expired.id).state == "annulee"
    assert db.session.get(Candidature, reminded.id).state == "en_attente_validation"


def test_no_avis_after_late_entry_date(db, at_now):
    late = create_session(date_entree_tardive=NOW.date() - DAY)
    open_ = create_session(date_entree_tardive=NOW.date())
    waiting_late = create_candidature(session=late)
    waiting_open = create_candidature(session=open_)
    db.session.commit()
    first, second = _twice("avis_non_transmis")
    assert (first.rows_changed, second.rows_changed) == (1, 0)
    db.session.expire_all()
    assert db.session.get(Candidature, waiting_late.id).state == "avis_non_transmis"
    assert db.session.get(Candidature, waiting_open.id).state == "en_attente_avis"


def test_formations_whose_sessions_all_ended_are_archived(db, at_now):
    ended = create_formation(state="validee")
    create_session(formation=ended, date_debut=NOW.date() - 300 * DAY, date_fin=NOW.date() - DAY)
    running = create_formation(state="validee")
    create_session(formation=running, date_debut=NOW.date() - 300 * DAY, date_fin=NOW.date() - DAY)
    create_session(formation=running, date_debut=NOW.date() - 10 * DAY, date_fin=NOW.date())
    db.session.commit()
    first, second = _twice("archivage_formations")
    assert (first.rows_changed, second.rows_changed) == (1, 0)
    assert [f.state for f in db.session.scalars(select(Formation).order_by(Formation.id))] == \
        ["archivee", "validee"]


def test_moderation_reminder_after_5_working_days(db, at_now):
    moderator = create_staff(StaffRole.MODERATEUR)
    # Wednesday 10 March: 5 working days before is Wednesday 3 March.
    waiting = create_formation(state="en_attente_moderation",
                               submitted_at=NOW - 7 * DAY)
    create_formation(state="en_attente_moderation", submitted_at=NOW - 6 * DAY)
    db.session.commit()
    first, second = _twice("rappel_moderation")
    assert (first.rows_seen, first.rows_changed, second.rows_changed) == (1, 1, 0)
    message = db.session.scalar(select(OutboundMessage))
    assert message.recipient == moderator.email and waiting.reference in message.body_text


def test_delegation_ends_after_its_end_date_through_the_cli(app, db):
    gestionnaire = create_user()
    ending = Delegation(granted_by=gestionnaire, siret_etablissement="44306184100047",
                        siret_tiers="44306184100047", email_tiers="tiers@cabinet.fr",
                        role="declarant", state="active", end_date=dt.date(2027, 3, 9))
    lasting = Delegation(granted_by=gestionnaire, siret_etablissement="44306184100047",
                         siret_tiers="44306184100047", email_tiers="autre@cabinet.fr",
                         role="declarant", state="active", end_date=dt.date(2027, 3, 10))
    db.session.add_all([ending, lasting])
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["jobs", "run", "fin_delegations", "--at", "2027-03-10T00:05"])
    clock.set_now(None)
    assert result.exit_code == 0, result.output
    assert "1 délégation terminée" in result.output
    db.session.expire_all()
    assert (db.session.get(Delegation, ending.id).state,
            db.session.get(Delegation, lasting.id).state) == ("expiree", "active")
    assert {m.recipient for m in db.session.scalars(select(OutboundMessage))} == \
        {"tiers@cabinet.fr", gestionnaire.email}


def test_dry_run_changes_nothing(app, db):
    with clock.frozen(NOW - 20 * DAY):
        create_candidature(state="brouillon", consentement=False)
    db.session.commit()
    result = app.test_cli_runner().invoke(args=[
        "jobs", "run", "expiration_brouillons", "--dry-run", "--at", NOW.isoformat()])
    clock.set_now(None)
    assert "À blanc : 1 brouillon placé à la corbeille" in result.output
    assert _count(db, Candidature, Candidature.state == "brouillon") == 1
    assert _count(db, TransitionLog) == 0


def test_expired_and_used_links_are_deleted(db, at_now):
    user = create_user()
    for lifetime, used in ((-DAY, None), (DAY, NOW), (DAY, None)):
        token, _ = Token.issue(purpose="reinitialisation", lifetime=lifetime, user=user)
        token.used_at = used
        db.session.add(token)
    db.session.commit()
    first, second = _twice("expiration_liens")
    assert (first.rows_changed, second.rows_changed) == (2, 0)
    assert _count(db, Token) == 1


def test_login_sessions_older_than_the_history_are_deleted(db, at_now):
    """« Sessions de connexion » keeps 90 days: older rows go, recent ones stay."""
    from backoffice.models import UserSession

    user = create_user()
    for age, key in ((91 * DAY, "a" * 64), (89 * DAY, "b" * 64), (DAY, "c" * 64)):
        db.session.add(UserSession(user=user, key_hash=key, created_at=NOW - age,
                                   last_seen_at=NOW - age))
    db.session.commit()
    first, second = _twice("purge_sessions")
    assert (first.rows_changed, second.rows_changed) == (1, 0)
    assert _count(db, UserSession) == 2


def test_retention_purge_notices_then_anonymises(db, at_now):
    with clock.frozen(NOW - 2 * 365 * DAY - 5 * DAY):
        old = create_candidate(email="ancien@exemple.fr", nom="Dupont-Léger",
                               identifiant_france_travail="7654321B")
        old.nir = "184127512345678"
        create_candidature(candidate=old, state="non_retenue", parcours_anterieur="CAP cuisine")
    with clock.frozen(NOW - 2 * 365 * DAY + 10 * DAY):
        soon = create_candidate(email="bientot@exemple.fr")
    with clock.frozen(NOW - 100 * DAY):
        create_candidate(email="recent@exemple.fr")
    db.session.commit()
    first, second = _twice("purge_rgpd")
    assert (first.rows_changed, second.rows_changed) == (1, 0)
    db.session.expire_all()
    purged = db.session.get(Candidate, old.id)
    assert (purged.nom, purged.email, purged.nir, purged.identifiant_france_travail) == \
        ("ANONYME", None, None, None)
    assert purged.anonymised_at == NOW
    assert db.session.scalar(select(Candidature.parcours_anterieur)) is None
    notices = [m.recipient for m in db.session.scalars(select(OutboundMessage))]
    assert notices == [soon.email]


def test_interrupted_run_is_finished_by_the_next_one(db, at_now, monkeypatch):
    """Killed in the middle (after a first batch), the job leaves whole batches only;
    the next run finishes the work, and nothing is done twice."""
    with clock.frozen(NOW - 20 * DAY):
        for _ in range(5):
            create_candidature(state="brouillon", consentement=False)
    db.session.commit()
    real_fire, calls = workflow.fire_many, {"n": 0}

    def crashing_fire(*args, **kwargs):  # the job fires one batch at a time
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("processus tué")
        return real_fire(*args, **kwargs)

    monkeypatch.setattr(workflow, "fire_many", crashing_fire)
    crashed = scheduler.run_job("expiration_brouillons", at=NOW, batch_size=2)
    assert crashed.status == "echec" and "processus tué" in crashed.error
    assert _count(db, Candidature, Candidature.state == "corbeille") == 2
    monkeypatch.setattr(workflow, "fire_many", real_fire)
    finished = scheduler.run_job("expiration_brouillons", at=NOW, batch_size=2)
    assert (finished.status, finished.rows_changed) == ("succes", 3)
    assert _count(db, Candidature, Candidature.state == "corbeille") == 5
    assert _count(db, TransitionLog) == 5


def test_every_job_runs_on_an_empty_database(db, at_now):
    for name in scheduler.jobs():
        run = scheduler.run_job(name, at=NOW)
        assert run.status == "succes", (name, run.error)


def test_unknown_job_is_a_french_error(app):
    result = app.test_cli_runner().invoke(args=["jobs", "run", "inventee"])
    assert result.exit_code != 0 and "Tâche inconnue « inventee »" in result.output


def test_jobs_list_shows_every_job(app):
    result = app.test_cli_runner().invoke(args=["jobs", "list"])
    for name in scheduler.jobs():
        assert name in result.output


# -- one runner ----------------------------------------------------------------------------------
def test_only_one_lock_holder(app):
    first, second = scheduler.SchedulerLock(app), scheduler.SchedulerLock(app)
    assert first.acquire()
    try:
        assert not second.acquire()
    finally:
        first.release()
    assert second.acquire()
    second.release()


def test_two_scheduler_processes_only_one_runs(app, database_url, tmp_path):
    """Two ``backoffice scheduler`` processes started at once: one runs, the other stops."""
    env = {**os.environ, "DATABASE_URL": database_url, "BACKOFFICE_INSTANCE": str(tmp_path)}
    command = [sys.executable, "-c", "from backoffice.cli import main; main()", "scheduler"]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and all(p.poll() is None for p in processes):
            time.sleep(0.2)
        stopped = [p for p in processes if p.poll() is not None]
        assert len(stopped) == 1, "one scheduler should have stopped"
        assert stopped[0].returncode == 3
        assert "Un autre planificateur tourne déjà" in stopped[0].stdout.read()
        time.sleep(1)
        running = [p for p in processes if p.poll() is None]
        assert len(running) == 1
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
            process.stdout.close()
