"""CSV import of a large file: a queued task (run here by ``tasks.run_pending``, as a
runner process would) records its progress in a JobRun that the page polls; small files
keep the synchronous path."""
from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from sqlalchemy import func, select

from backoffice import clock, tasks
from backoffice.models import Formation, JobRun, JobRunStatus, OfProfile
from backoffice.services import catalogue as service
from tests.conftest import csrf_token, login
from tests.factories import (create_certification, create_commune, create_member,
                             create_structure)

NOW = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.timezone.utc)
HEADER = ("intitule;code_certifinfo;modalite_formation_continue;modalite_contrat_pro;"
          "modalite_apprentissage")


@pytest.fixture(autouse=True)
def frozen_clock():
    with clock.frozen(NOW):
        yield


@pytest.fixture
def structure(db):
    return create_structure()


@pytest.fixture
def user(db, structure):
    user = create_member(structure, profile_of=OfProfile.GENERAL)
    create_certification(code_certifinfo="54321", intitule="CAP Boulanger")
    create_commune(nom="Périgueux", code_postal="24000")
    db.session.commit()
    return user


@pytest.fixture
def logged(client, user):
    login(client, user)
    return client


@pytest.fixture
def background(monkeypatch):
    """Lower the threshold, recording each progress state the page could have seen."""
    monkeypatch.setattr(service, "IMPORT_BACKGROUND_THRESHOLD", 3)
    monkeypatch.setattr(service, "IMPORT_PROGRESS_EVERY", 2)
    seen = []
    original_import = service.import_csv

    def recording_import(*args, progress=None, **kwargs):
        if progress is None:  # the synchronous path
            return original_import(*args, **kwargs)

        def spy(done, total):
            progress(done, total)
            with service.db.engine.connect() as connection:
                summary = connection.execute(select(JobRun.summary)).scalar_one()
            seen.append(json.loads(summary)["traites"])
        return original_import(*args, progress=spy, **kwargs)

    monkeypatch.setattr(service, "import_csv", recording_import)
    return {"seen": seen}


def _file(*intitules: str) -> bytes:
    lines = [HEADER] + [f"{intitule};54321;oui;non;non" for intitule in intitules]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _upload(client, content: bytes, *, run_queue: bool = True, **extra):
    """Post the file as the import page does; then a runner executes the queue."""
    page = client.get("/catalogue/import")
    response = client.post("/catalogue/import", data={
        "csrf_token": csrf_token(page.text), "fichier": (io.BytesIO(content), "gros.csv"),
        **extra}, content_type="multipart/form-data")
    if run_queue:
        tasks.run_pending(client.application)
    return response


def _run(db) -> JobRun:
    db.session.expire_all()
    return db.session.scalar(select(JobRun))


def _formations(db) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Formation))


def test_small_file_stays_synchronous(logged, db, background):
    response = _upload(logged, _file("Boulanger", "Pâtissier"))
    assert response.status_code == 200
    assert "2 importées, 0 en erreur" in response.text
    assert db.session.scalar(select(func.count()).select_from(JobRun)) == 0


def test_large_file_runs_in_background_with_progress(logged, db, background, structure):
    content = _file("Boulanger", "Pâtissier", "Chocolatier", "Glacier")
    response = _upload(logged, content)
    assert response.status_code == 302
    run = _run(db)
    assert response.headers["Location"].endswith(f"/catalogue/import/{run.id}")
    # committed every two lines, then at the last one
    assert background["seen"] == [0, 2, 2, 4]
    assert (run.job, run.dry_run, run.status) == ("import_catalogue", False,
                                                  JobRunStatus.SUCCES)
    state = json.loads(run.summary)
    assert (state["traites"], state["total"], state["structure_id"]) == (4, 4, structure.id)
    assert run.rows_changed == 4
    assert _formations(db) == 4

    status = logged.get(f"/catalogue/import/{run.id}/etat").get_json()
    assert status["statut"] == "succes" and status["termine"]
    assert (status["traites"], status["total"], status["pourcentage"]) == (4, 4, 100)
    page = logged.get(f"/catalogue/import/{run.id}").text
    assert "4 importées, 0 en erreur" in page
    assert "progress-bar" not in page


def test_progress_page_while_waiting_for_a_runner(logged, db, user, structure, monkeypatch):
    monkeypatch.setattr(service, "IMPORT_BACKGROUND_THRESHOLD", 1)
    response = _upload(logged, _file("Boulanger", "Pâtissier"), run_queue=False)
    run = _run(db)
    assert response.headers["Location"].endswith(f"/catalogue/import/{run.id}")
    assert run.status == JobRunStatus.EN_ATTENTE and _formations(db) == 0
    page = logged.get(f"/catalogue/import/{run.id}").text
    assert 'class="progress-bar' in page
    assert f'data-etat-url="/catalogue/import/{run.id}/etat"' in page
    assert "l'import démarre dans quelques secondes" in page
    assert "0</span> / 2 lignes" in page
    status = logged.get(f"/catalogue/import/{run.id}/etat").get_json()
    assert status == {"statut": "en_attente", "termine": False, "traites": 0, "total": 2,
                      "pourcentage": 0, "tout_ou_rien": False, "erreur": None}
    db.session.commit()  # the test client shares this session: end its read snapshot
    tasks.run_pending(logged.application)
    status = logged.get(f"/catalogue/import/{run.id}/etat").get_json()
    assert status["statut"] == "succes" and status["termine"]
    assert _formations(db) == 2
    assert _run(db).payload is None  # the file is not kept once imported


def test_large_file_with_bad_lines_and_all_or_nothing(logged, db, background):
    content = _file("Boulanger", "Pâtissier", "Chocolatier") + b"Glacier;99999;oui;non;non\n"
    _upload(logged, content, tout_ou_rien="1")
    run = _run(db)
    assert background["seen"] == [0, 0, 0, 0]  # one transaction: progress only at the end
    page = logged.get(f"/catalogue/import/{run.id}").text
    assert "aucune ligne n'a été importée" in page
    assert "Code Certif Info inconnu : 99999." in page
    assert _formations(db) == 0

    db.session.execute(JobRun.__table__.delete())
    db.session.commit()
    background["seen"].clear()
    _upload(logged, content)
    run = _run(db)
    page = logged.get(f"/catalogue/import/{run.id}").text
    assert "3 importées, 1 en erreur" in page
    assert _formations(db) == 3


def test_bad_header_is_refused_before_any_job(logged, db, background):
    response = _upload(logged, b"colonne_inconnue;intitule\n" + b"x;y\n" * 10)
    assert "Colonne(s) inconnue(s) : colonne_inconnue." in response.text
    assert db.session.scalar(select(func.count()).select_from(JobRun)) == 0


def test_unexpected_failure_ends_the_job(logged, db, background, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(service, "import_csv", broken)
    _upload(logged, _file("A", "B", "C", "D"))
    run = _run(db)
    assert run.status == JobRunStatus.ECHEC and run.ended_at is not None
    page = logged.get(f"/catalogue/import/{run.id}").text
    assert "Import impossible" in page and "interrompu" in page


def test_only_the_importing_structure_reads_the_progress(logged, db, background):
    _upload(logged, _file("A", "B", "C", "D"))
    run = _run(db)
    mine = json.loads(run.summary)
    other_structure = create_structure()
    db.session.flush()
    theirs = JobRun(job=service.IMPORT_JOB, run_for=NOW, started_at=NOW,
                    status=JobRunStatus.SUCCES,
                    summary=json.dumps({**mine, "structure_id": other_structure.id}))
    not_an_import = JobRun(job="essai_regles", run_for=NOW, started_at=NOW,
                           status=JobRunStatus.SUCCES, summary=run.summary)
    db.session.add_all([theirs, not_an_import])
    db.session.commit()
    assert logged.get(f"/catalogue/import/{run.id}/etat").status_code == 200
    for other in (theirs, not_an_import):
        assert logged.get(f"/catalogue/import/{other.id}").status_code == 404
        assert logged.get(f"/catalogue/import/{other.id}/etat").status_code == 404
    assert logged.get("/catalogue/import/999999/etat").status_code == 404
