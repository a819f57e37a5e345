"""The task queue (backoffice/tasks.py): long work is a queued ``job_run`` row that a
runner process executes, with a heartbeat. A runner killed with kill -9 — a scheduled
job run by ``backoffice jobs run`` or a CSV import run by ``backoffice worker`` — is
detected once its heartbeat is older than the limit: the job is shown « Interrompue »
and the next run does its work; the import is resumed by another runner after the lines
already committed, every line imported exactly once. « Lancer maintenant » returns with
the run « En attente » and nothing done. Two runners never run one task twice.

The runners run in subprocesses on the database under test (a SQLite file, or
PostgreSQL with TEST_DATABASE_URL); they are slowed down only through the real
``TASK_BATCH_PAUSE_SECONDS`` setting, so that the kill lands between two batches."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from backoffice import clock, scheduler, tasks
from backoffice.models import (Candidature, Formation, JobRun, JobRunStatus, OfProfile,
                               StaffRole, TransitionLog)
from backoffice.services import catalogue as service
from tests.conftest import csrf_token, login
from tests.factories import (create_candidature, create_certification, create_member,
                             create_staff, create_structure)

DAY = dt.timedelta(days=1)
HEADER = ("intitule;code_certifinfo;modalite_formation_continue;modalite_contrat_pro;"
          "modalite_apprentissage")


def _cli(database_url: str, tmp_path, *args: str, **settings) -> subprocess.Popen:
    """``backoffice <args>`` in a process of its own, on the database under test."""
    env = {**os.environ, "DATABASE_URL": database_url, "BACKOFFICE_INSTANCE": str(tmp_path),
           **{key: str(value) for key, value in settings.items()}}
    return subprocess.Popen([sys.executable, "-c", "from backoffice.cli import main; main()",
                             *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_for(db, condition, process: subprocess.Popen, what: str, timeout: float = 120):
    """Poll the database (a connection of its own) until ``condition(connection)``."""
    deadline = time.monotonic() + timeout
    while True:
        with db.engine.connect() as connection:
            value = condition(connection)
        if value:
            return value
        if process.poll() is not None:
            pytest.fail(f"{what} : le processus s'est arrêté ({process.stdout.read()})")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} : pas atteint")
        time.sleep(0.2)


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()


def _run(db, run_id: int) -> JobRun:
    db.session.commit()  # a fresh read: runners write in other sessions
    return db.session.get(JobRun, run_id)


def _drafts(db, state: str) -> int:
    return db.session.scalar(select(func.count()).select_from(Candidature).where(
        Candidature.state == state))


@pytest.fixture
def admin(client, db):
    user = create_staff(StaffRole.ADMIN)
    db.session.commit()
    login(client, user)
    return user


@pytest.fixture
def old_drafts(db):
    with clock.frozen(clock.now() - 20 * DAY):
        for _ in range(5):
            create_candidature(state="brouillon", consentement=False)
    db.session.commit()


def test_a_job_killed_with_kill_9_is_interrupted_and_the_next_run_does_its_work(
        client, db, admin, old_drafts, database_url, tmp_path):
    process = _cli(database_url, tmp_path, "jobs", "run", "expiration_brouillons",
                   "--batch-size", "2", TASK_BATCH_PAUSE_SECONDS=120, TASK_HEARTBEAT_SECONDS=1)
    try:
        # killed after its first batch (committed), while it pauses before the second
        _wait_for(db, lambda c: c.scalar(select(func.count()).select_from(Candidature).where(
            Candidature.state == "corbeille")) == 2, process, "premier lot")
    finally:
        _kill(process)
    db.session.commit()  # a fresh read
    run = db.session.scalars(select(JobRun)).one()
    assert (run.job, run.status, run.runner.endswith(f":{process.pid}")) == (
        "expiration_brouillons", "en_cours", True)

    last_beat = run.heartbeat_at
    limit = dt.timedelta(seconds=client.application.config["TASK_INTERRUPTED_AFTER_SECONDS"])
    with clock.frozen(last_beat + limit - dt.timedelta(seconds=1)):
        tasks.sweep()  # within the limit: still running
    assert _run(db, run.id).status == "en_cours"
    with clock.frozen(last_beat + limit + dt.timedelta(seconds=1)):
        assert tasks.sweep() == 1
    run = _run(db, run.id)
    assert run.status == JobRunStatus.INTERROMPUE and run.ended_at is not None
    assert run.error.startswith(f"Interrompue : le processus qui l'exécutait ({run.runner}) "
                                "ne donne plus signe de vie depuis le ")
    db.session.commit()
    page = client.get("/admin/taches/").text
    assert ">Interrompue</span>" in page and "ne donne plus signe de vie" in page

    finished = scheduler.run_job("expiration_brouillons", batch_size=2)
    assert (finished.status, finished.rows_changed) == ("succes", 3)
    assert (_drafts(db, "corbeille"), _drafts(db, "brouillon")) == (5, 0)
    assert db.session.scalar(select(func.count()).select_from(TransitionLog)) == 5


def test_run_now_queues_the_job_and_a_runner_does_it(client, db, admin, old_drafts):
    page = client.get("/admin/taches/")
    response = client.post("/admin/taches/lancer/", data={
        "job": "expiration_brouillons", "csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).text
    assert ("Brouillons de candidature à la corbeille : mise en file, elle démarre dans "
            "quelques secondes.") in page
    assert ">En attente</span>" in page and "data-rafraichir" in page
    db.session.commit()  # the test client shares this session: end its read snapshot
    run = db.session.scalars(select(JobRun)).one()
    assert (run.status, run.requested_by_id) == ("en_attente", admin.id)
    assert _drafts(db, "brouillon") == 5  # nothing done in the request

    assert tasks.run_pending(client.application) == 1  # what a runner process does
    run = _run(db, run.id)
    assert (run.status, run.rows_changed, run.attempts) == ("succes", 5, 1)
    assert _drafts(db, "corbeille") == 5
    db.session.commit()
    page = client.get("/admin/taches/").text
    assert ">Succès</span>" in page and "data-rafraichir" not in page


def test_two_runners_never_run_one_task_twice(app, db, database_url, tmp_path):
    # Dry runs: the runners' only writes are their claims and results (on SQLite a job's
    # own read-then-write transaction may meet « database is locked » under contention).
    ids = [tasks.enqueue("expiration_liens", dry_run=True) for _ in range(30)]
    runners = [_cli(database_url, tmp_path, "worker", "--once") for _ in range(2)]
    outputs = []
    for runner in runners:
        output, _ = runner.communicate(timeout=300)
        assert runner.returncode == 0, output
        outputs.append(output)
    executed = [int(out.strip().splitlines()[-1].split()[0]) for out in outputs]
    assert sum(executed) == 30, outputs
    runs = db.session.scalars(select(JobRun).where(JobRun.id.in_(ids))).all()
    assert {(run.status, run.attempts, run.error) for run in runs} == {("succes", 1, None)}
    assert len({run.runner for run in runs}) <= 2


def test_an_import_survives_a_runner_killed_mid_import(
        client, db, database_url, tmp_path, monkeypatch):
    structure = create_structure()
    user = create_member(structure, profile_of=OfProfile.GENERAL)
    create_certification(code_certifinfo="54321", intitule="CAP Boulanger")
    db.session.commit()
    login(client, user)
    monkeypatch.setattr(service, "IMPORT_BACKGROUND_THRESHOLD", 3)
    titles = [f"Boulanger {n:03d}" for n in range(1, 61)]
    titles[25] = titles[24]  # lines 26 and 27 (either side of the kill) are one formation
    content = "\n".join([HEADER] + [f"{t};54321;oui;non;non" for t in titles]) + "\n"
    page = client.get("/catalogue/import")
    response = client.post("/catalogue/import", data={
        "csrf_token": csrf_token(page.text),
        "fichier": (io.BytesIO(content.encode()), "gros.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 302  # at once: the request imports nothing
    db.session.commit()
    run = db.session.scalars(select(JobRun)).one()
    assert (run.job, run.status) == (service.IMPORT_JOB, "en_attente")
    assert response.headers["Location"].endswith(f"/catalogue/import/{run.id}")

    worker = _cli(database_url, tmp_path, "worker", TASK_BATCH_PAUSE_SECONDS=120,
                  TASK_HEARTBEAT_SECONDS=1)
    try:  # killed after the first 25 lines (committed with their progress)
        _wait_for(db, lambda c: json.loads(c.scalar(select(JobRun.summary)))["traites"] == 25,
                  worker, "25 lignes importées")
    finally:
        _kill(worker)
    db.session.commit()  # a fresh read
    assert db.session.scalar(select(func.count()).select_from(Formation)) == 25
    status = client.get(f"/catalogue/import/{run.id}/etat").get_json()
    assert (status["statut"], status["traites"], status["total"]) == ("en_cours", 25, 60)

    # Past the limit, another runner finds it interrupted, takes it over and finishes it.
    last_beat = _run(db, run.id).heartbeat_at
    db.session.commit()
    clock.set_now(last_beat + dt.timedelta(
        seconds=client.application.config["TASK_INTERRUPTED_AFTER_SECONDS"] + 1))
    assert tasks.run_pending(client.application) == 1
    run = _run(db, run.id)
    assert (run.status, run.attempts, run.payload) == ("succes", 2, None)
    assert "Reprise par un autre processus (tentative 2 sur 3)" in run.error
    imported = dict(db.session.execute(select(Formation.intitule, func.count())
                                       .group_by(Formation.intitule)).all())
    assert imported == dict.fromkeys(titles, 1)  # every line exactly once
    state = json.loads(run.summary)
    assert (state["traites"], state["total"], state["reprise"]) == (60, 60, 25)
    db.session.commit()
    page = client.get(f"/catalogue/import/{run.id}").text
    assert "Import repris après une interruption : les 25 premières lignes" in page
    assert "60 importées, 0 en erreur" in page  # the report covers every line
    assert "<td>2</td>" in page and "<td>61</td>" in page  # lines keep their numbers
    report = service.ImportReport.from_dict(state["rapport"])
    assert [line.outcome for line in report.lines[24:26]] == ["créée", "mise à jour"]


def test_an_import_whose_runner_keeps_dying_fails_after_three_attempts(client, db):
    """Each time a runner claims it and dies (no heartbeat): queued again, then « Échec »;
    an « tout ou rien » import starts again from its first line."""
    structure = create_structure()
    user = create_member(structure, profile_of=OfProfile.GENERAL)
    db.session.commit()
    state = {"structure_id": structure.id, "user_id": user.id, "fichier": "f.csv",
             "tout_ou_rien": True, "traites": 0, "total": 300}
    run_id = tasks.enqueue(service.IMPORT_JOB, summary=json.dumps(state), payload=b"x")
    limit = client.application.config["TASK_INTERRUPTED_AFTER_SECONDS"]
    start = clock.now()
    for attempt in range(1, 4):
        with clock.frozen(start + dt.timedelta(seconds=attempt * 10 * limit)):
            assert tasks.claim() == run_id
        with clock.frozen(start + dt.timedelta(seconds=(attempt * 10 + 2) * limit)):
            tasks.sweep()
        run = _run(db, run_id)
        assert run.attempts == attempt
        if attempt < 3:
            assert (run.status, run.payload) == ("en_attente", b"x")
            assert f"tentative {attempt + 1} sur 3" in run.error
    assert (run.status, run.payload) == ("echec", None)
    assert "Abandonnée après 3 tentatives." in run.error
    assert tasks.claim() is None
