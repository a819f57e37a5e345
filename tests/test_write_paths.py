"""The write paths at scale (issue 13): the SQL statements of a candidature submission
and of the scheduled jobs stay few — a constant per request or per batch, whatever the
number of recipients or due rows — and the benchmark's ``writes`` group runs. Counted,
never timed."""
from __future__ import annotations

import datetime as dt
import io

from flask import g
from sqlalchemy import func, select

from backoffice import bench, clock, demo, rules_engine, scheduler
from backoffice.bench import QueryCounter
from backoffice.extensions import db
from backoffice.models import (Candidate, Candidature, CandidatureState, Formation,
                               OutboundMessage, Session, StaffRole, StructureKind, TransitionLog)
from tests import factories as f
from tests.conftest import csrf_token, login

MONDAY_10 = dt.datetime(2026, 3, 9, 10, 0, tzinfo=clock.PARIS)
# GET of the form and POST « Valider » of a level-2 prescriber, e-mails to the OF's two
# managers and to the candidate (BEGIN included): 40 statements on SQLite before issue 13.
SUBMISSION_STATEMENTS = 28


def _as_a_new_request() -> None:
    """What a real request starts with: no identity map, nothing cached in ``g`` (the
    test client reuses the test's application context)."""
    db.session.remove()
    for key in ("_login_user", "membership", "user_session"):
        g.pop(key, None)


def test_a_submission_issues_a_bounded_number_of_statements(app, client, monkeypatch):
    # As in production, the active rule versions are re-read every few seconds, not at
    # every evaluation (the test configuration's default).
    monkeypatch.setitem(app.config, "RULES_VERSION_CHECK_SECONDS", 3600)
    for name in ("candidature_limits", "cursus_eligibility"):
        rules_engine.invalidate(name)
        rules_engine.current(name)
    with clock.frozen(MONDAY_10):
        of = f.create_structure(raison_sociale="Organisme formateur")
        managers = [f.create_of_manager(of).email,
                    f.create_of_manager(of, "gestionnaire_of_general").email]
        session = f.create_published_session(f.create_formation(
            structure=of, state="validee", dispositif="conventionne_region"))
        candidate = f.create_candidate(email="candidate@example.org")
        prescriber = f.create_prescriber("prescripteur_n2")
        db.session.commit()
        session_id, candidate_id = session.id, candidate.id
        login(client, prescriber)
        url = f"/prescription/sessions/{session_id}/candidats/{candidate_id}/candidature"
        with QueryCounter(db.engine) as counter:
            _as_a_new_request()
            page = client.get(url)
            _as_a_new_request()
            response = client.post(url, data={
                "csrf_token": csrf_token(page.text), "action": "valider",
                "consentement": "y", "envoi_recapitulatif": "y",
                "parcours_anterieur": "Deux ans en magasin.", "raisons_choix": "Projet validé."})
        assert response.status_code == 302
        candidature = db.session.scalar(select(Candidature))
        assert candidature.state == CandidatureState.EN_ATTENTE_AVIS
        assert sorted(db.session.scalars(select(OutboundMessage.recipient))) == sorted(
            managers + ["candidate@example.org"])
        assert counter.count <= SUBMISSION_STATEMENTS, counter.count


def _statements_of_job(name: str, at) -> tuple[int, int]:
    with QueryCounter(db.engine) as counter:
        run = scheduler.run_job(name, at=at, batch_size=500)
    assert run.status == "succes", run.error
    return run.rows_changed, counter.count


def test_a_job_issues_the_same_statements_for_3_or_60_due_rows():
    """Draft expiry (no side effect) and « avis non transmis » (an e-mail to each
    prescriber and the log of each row): one batch costs the same statements whatever its
    size, and every row gets its log and its e-mail."""
    counts = {}
    for rows in (3, 60):
        with clock.frozen(MONDAY_10 - dt.timedelta(days=40)):
            late = f.create_published_session(date_entree_tardive=(
                MONDAY_10 - dt.timedelta(days=1)).date())
            for _ in range(rows):
                f.create_candidature(state="brouillon", consentement=False)
                f.create_candidature(session=late)
        db.session.commit()
        with clock.frozen(MONDAY_10):
            counts[rows] = (_statements_of_job("expiration_brouillons", MONDAY_10),
                            _statements_of_job("avis_non_transmis", MONDAY_10))
        assert counts[rows][0][0] == counts[rows][1][0] == rows
        assert db.session.scalar(select(func.count()).select_from(TransitionLog)) == 2 * rows
        assert db.session.scalar(select(func.count()).select_from(OutboundMessage)) == rows
        for model in (TransitionLog, OutboundMessage, Candidature, Session):
            db.session.execute(model.__table__.delete())
        db.session.commit()
    assert counts[60][0][1] == counts[3][0][1]
    assert counts[60][1][1] == counts[3][1][1]


def test_the_writes_group_of_the_benchmark_runs_and_leaves_the_data_as_it_was(app):
    with clock.frozen(clock.parse_instant("2026-11-23T10:30")):  # the benchmark's instant
        demo.generate(scale=0.01, seed=20261122, echo=lambda _line: None)
    db.session.commit()
    before = [db.session.scalar(select(func.count()).select_from(model))
              for model in (Candidature, OutboundMessage, TransitionLog)]
    out = io.StringIO()
    figures = bench.run(bench.Context(app=app, scale=0.01, database=db.engine.dialect.name,
                                      repeat=2), only="writes",
                        out=lambda text: print(text, file=out))
    text = out.getvalue()
    assert "### Écritures et tâches planifiées" in text
    assert "dépôt d'une candidature" in text and "tâche expiration_brouillons" in text
    assert all(len(figure.project) >= 1 for figure in figures)
    db.session.remove()
    assert [db.session.scalar(select(func.count()).select_from(model))
            for model in (Candidature, OutboundMessage, TransitionLog)] == before


def _due_rows_of_every_kind(rows: int) -> None:
    """``rows`` due rows for each of the reminders, the level-1 expiry and the purge, at
    MONDAY_10 (a level-3 validator in the authors' structure; a notice and an
    anonymisation for each candidate)."""
    structure = f.create_structure(kind=StructureKind.PRESCRIPTEUR,
                                   prescriber_type="france_travail")
    author = f.create_member(structure, profile_prescripteur="prescripteur_n1")
    f.create_member(structure, profile_prescripteur="prescripteur_n3")
    for _ in range(rows):
        f.create_formation(state="en_attente_moderation",
                           submitted_at=MONDAY_10 - dt.timedelta(days=10))
        for days in (13, 16):  # reminded, then reminded and expired
            with clock.frozen(MONDAY_10 - dt.timedelta(days=days)):
                f.create_candidature(state="en_attente_validation", prescriber_user=author,
                                     prescriber_structure=structure, submitted_at=clock.now())
        for days in (2 * 365 + 5, 2 * 365 - 10):  # anonymised; noticed
            with clock.frozen(MONDAY_10 - dt.timedelta(days=days)):
                f.create_candidate(email=f"candidat{_}-{days}@exemple.fr")
    db.session.commit()


def test_reminders_expiry_and_purge_issue_the_same_statements_for_3_or_60_due_rows():
    """The reminders, the level-1 expiry (an e-mail to each author) and the RGPD purge
    (a notice, then the anonymisation) read what their e-mails need as plain rows, per
    batch: the same statements whatever the batch's size, and every row handled."""
    jobs = ("rappel_moderation", "rappel_validation_niveau_1",
            "expiration_validation_niveau_1", "purge_rgpd")
    counts = {}
    f.create_staff(StaffRole.MODERATEUR)
    for rows in (3, 60):
        with clock.frozen(MONDAY_10):
            _due_rows_of_every_kind(rows)
            counts[rows] = {name: _statements_of_job(name, MONDAY_10) for name in jobs}
        changed = {name: changed for name, (changed, _) in counts[rows].items()}
        assert changed == {"rappel_moderation": rows, "rappel_validation_niveau_1": 2 * rows,
                           "expiration_validation_niveau_1": rows, "purge_rgpd": rows}
        # A reminder per formation and per candidature, an e-mail per expiry, a notice.
        assert db.session.scalar(select(func.count()).select_from(OutboundMessage)) == 5 * rows
        for model in (TransitionLog, OutboundMessage, Candidature, Candidate, Formation):
            db.session.execute(model.__table__.delete())
        db.session.commit()
    assert {name: count for name, (_, count) in counts[60].items()} == \
        {name: count for name, (_, count) in counts[3].items()}


def test_a_batch_renders_its_e_mails_once_per_template_and_loads_no_object(monkeypatch):
    """Within a batch, the e-mails of one template differ only by a few printed values:
    each template is rendered a constant number of times per batch (a stencil, checked
    once), not once per message, and what they print is read as plain rows, not as
    objects of the ORM (3 or 60 due rows: the same renderings, no object loaded)."""
    import jinja2
    from sqlalchemy import event

    renders, loads = {"n": 0}, {"n": 0}
    real_render = jinja2.Template.render

    def counting_render(self, *args, **kwargs):
        renders["n"] += 1
        return real_render(self, *args, **kwargs)

    def count_load(*_args):
        loads["n"] += 1

    monkeypatch.setattr(jinja2.Template, "render", counting_render)
    jobs = ("rappel_moderation", "rappel_validation_niveau_1",
            "expiration_validation_niveau_1", "purge_rgpd")
    f.create_staff(StaffRole.MODERATEUR)
    counts = {}
    models = (Candidature, Candidate, Formation, Session)
    for model in models:
        event.listen(model, "load", count_load)
    try:
        for rows in (3, 60):
            with clock.frozen(MONDAY_10):
                _due_rows_of_every_kind(rows)
                renders["n"] = loads["n"] = 0
                for name in jobs:
                    assert scheduler.run_job(name, at=MONDAY_10, batch_size=500).status == "succes"
            counts[rows] = (renders["n"], loads["n"])
            for model in (TransitionLog, OutboundMessage, Candidature, Candidate, Formation):
                db.session.execute(model.__table__.delete())
            db.session.commit()
    finally:
        for model in models:
            event.remove(model, "load", count_load)
    assert counts[60] == counts[3]
    assert counts[3][1] == 0
