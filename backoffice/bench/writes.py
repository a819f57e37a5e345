"""The ``writes`` group of the benchmark: a candidature submitted end to end through the
Flask test client, the publication check of a formation with 6 sessions, and every
scheduled job (``jobs.SCHEDULE``) on its due rows.

Nothing here changes the measured database for the other groups: the submissions are
deleted after their case (``cleanup``), the jobs run in a transaction that is rolled back
(``rolled_back``: their commits only release savepoints), their due rows made due by
running them a month after the demo data's instant (``JOBS_AT``), as if they had not
run for a month.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import re
import secrets

from sqlalchemy import delete, exists, func, insert, orm, select, update

from backoffice import clock, demo, jobs, search
from backoffice.bench import Case, Context
from backoffice.extensions import db
from backoffice.models import (LIVE_CANDIDATURE_STATES, Candidate, Candidature,
                               CandidatureState, Channel, Dispositif, FollowUpStep, Formation,
                               FormationState, Membership, OutboundMessage, Session,
                               SessionState, TransitionLog, User)
from backoffice.services import catalogue

GROUP = "Écritures et tâches planifiées"
AT = clock.parse_instant("2026-11-23T10:30")  # the instant of the demo data
JOBS_AT = AT + dt.timedelta(days=31)  # a month of due rows for every job
JOB_REPEAT = 2  # measures of each job (after its warm-up run): a run handles thousands of rows
PRESCRIBER = "prescripteur2@demo.fr"  # level 2: « soumettre » straight to the OF
FIELDS = {"action": "valider", "consentement": "y",
          "parcours_anterieur": "Deux ans d'expérience en magasin.",
          "raisons_choix": "Projet validé en entretien."}


@contextlib.contextmanager
def rolled_back():
    """Everything ``db.session`` does inside, commits included, is rolled back at the end:
    the session works on one connection in a transaction that is never committed (its
    commits release savepoints)."""
    connection = db.engine.connect()
    outer = connection.begin()
    original = db.session
    db.session = orm.scoped_session(orm.sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint"))
    try:
        yield connection
    finally:
        db.session.remove()
        db.session = original
        outer.rollback()
        connection.close()


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


# -- the submission -------------------------------------------------------------------------
def _pairs(count: int) -> list[tuple[int, int]]:
    """(open session, candidate without a live candidature) pairs, each used once."""
    today = clock.today()
    sessions = list(db.session.scalars(
        select(Session.id).join(Formation, Formation.id == Session.formation_id)
        .where(Session.state == SessionState.ACTIVE, Session.ouverte_candidature.is_(True),
               Session.date_fin >= today,
               Formation.state.in_(search.SEARCHABLE_FORMATION_STATES),
               Formation.dispositif != Dispositif.HSP,
               Formation.modalite_apprentissage.is_not(True))  # no cursus year to choose
        .order_by(Session.id.desc()).limit(count)))
    candidates = list(db.session.scalars(
        select(Candidate.id).where(
            Candidate.anonymised_at.is_(None),
            ~exists().where(Candidature.candidate_id == Candidate.id,
                            Candidature.state.in_(LIVE_CANDIDATURE_STATES)))
        .order_by(Candidate.id.desc()).limit(count)))
    return list(zip(sessions * (count // max(1, len(sessions)) + 1), candidates))


class Submissions:
    """Submissions through the test client as the demo prescriber (project) and the same
    rows written directly (peer); ``cleanup`` deletes them all."""

    def __init__(self, context: Context, count: int):
        # A second application, as a web worker: a request pushes its own application
        # context (and session) only when the current one is of another application.
        from backoffice import create_app

        self.app = create_app({"SQLALCHEMY_DATABASE_URI":
                               context.app.config["SQLALCHEMY_DATABASE_URI"]})
        self.candidatures = []
        self.prescriber_id, self.structure_id = db.session.execute(
            select(User.id, Membership.structure_id).join(Membership).where(
                User.email == PRESCRIBER).limit(1)).one()
        self.pairs, self.peer_pairs = _pairs(count), _pairs(2 * count)[count:]
        self.activity = dict(db.session.execute(
            select(Candidate.id, Candidate.last_activity_at).where(
                Candidate.id.in_([c for _, c in self.pairs]))).all())
        self.client = self.app.test_client()
        page = self.client.get("/connexion")
        self.client.post("/connexion", data={"email": PRESCRIBER, "password": demo.DEMO_PASSWORD,
                                             "csrf_token": _csrf(page.text)})

    def project(self) -> None:
        session_id, candidate_id = self.pairs.pop()
        url = f"/prescription/sessions/{session_id}/candidats/{candidate_id}/candidature"
        page = self.client.get(url)
        response = self.client.post(url, data={**FIELDS, "csrf_token": _csrf(page.text)})
        if response.status_code != 302:
            errors = re.findall(r"(?:invalid-feedback|alert-danger)[^>]*>([^<]+)", response.text)
            raise RuntimeError(f"candidature refusée ({response.status_code}) sur {url} : {errors}")
        self.candidatures.append(int(response.headers["Location"].rsplit("/", 1)[1]))

    def peer(self) -> None:
        """One INSERT of the candidature and one of its e-mail, committed."""
        session_id, candidate_id = self.peer_pairs.pop()
        with self.app.app_context():
            now = clock.now()
            candidature_id = db.session.execute(insert(Candidature).values(
                reference=f"{now:%y}{secrets.randbelow(10**10):010d}",
                candidate_id=candidate_id, session_id=session_id,
                prescriber_user_id=self.prescriber_id,
                prescriber_structure_id=self.structure_id,
                state=CandidatureState.EN_ATTENTE_AVIS, submitted_at=now, validated_at=now,
                etape_suivi=FollowUpStep.PRISE_EN_CHARGE, consentement=True,
                parcours_anterieur=FIELDS["parcours_anterieur"],
                raisons_choix=FIELDS["raisons_choix"], created_at=now, updated_at=now)
                .returning(Candidature.id)).scalar_one()
            db.session.execute(insert(OutboundMessage).values(
                channel=Channel.EMAIL, recipient="of@demo.fr", subject="Candidature",
                body_text="Nouvelle candidature", related_type="candidature",
                related_id=candidature_id, next_attempt_at=now, created_at=now))
            db.session.commit()
            self.candidatures.append(candidature_id)

    def cleanup(self) -> None:
        ids = self.candidatures
        with self.app.app_context():
            db.session.execute(delete(OutboundMessage).where(
                OutboundMessage.related_type == "candidature",
                OutboundMessage.related_id.in_(ids)))
            db.session.execute(delete(TransitionLog).where(
                TransitionLog.object_type == "candidature", TransitionLog.object_id.in_(ids)))
            db.session.execute(delete(Candidature).where(Candidature.id.in_(ids)))
            for candidate_id, at in self.activity.items():
                db.session.execute(update(Candidate).where(Candidate.id == candidate_id)
                                   .values(last_activity_at=at))
            db.session.commit()
            db.session.remove()
            db.engine.dispose()  # the second application's connections, closed now


# -- the publication check ---------------------------------------------------------------
def _formation_with_sessions(count: int) -> int | None:
    return db.session.scalar(
        select(Session.formation_id).group_by(Session.formation_id)
        .having(func.count(Session.id) == count).order_by(Session.formation_id).limit(1))


def _publication_check(formation_id: int):
    def check():
        formation = db.session.get(Formation, formation_id)
        catalogue.publication_check(formation)
        db.session.rollback()  # the next call loads it again, as a page would
    return check


# -- the scheduled jobs ---------------------------------------------------------------------
def _peer_updates():
    """The naive peers of five jobs: one plain UPDATE of the same due rows (no log, no
    e-mail, no batches, no notice), rolled back."""
    today = clock.to_local(JOBS_AT).date()
    late = select(Session.id).where(Session.date_entree_tardive < today)
    live_session = select(Session.id).where(
        Session.formation_id == Formation.id, Session.state == SessionState.ACTIVE,
        Session.date_fin >= today)
    any_session = select(Session.id).where(Session.formation_id == Formation.id)
    latest = (select(func.max(Candidature.updated_at))
              .where(Candidature.candidate_id == Candidate.id).scalar_subquery())
    return {
        "expiration_validation_niveau_1": update(Candidature).where(
            Candidature.state == CandidatureState.EN_ATTENTE_VALIDATION,
            Candidature.submitted_at <= JOBS_AT - jobs.deadline("validation_niveau_1"))
        .values(state=CandidatureState.ANNULEE),
        "archivage_formations": update(Formation).where(
            Formation.state.in_([FormationState.VALIDEE, FormationState.MODIFIEE]),
            exists(any_session), ~exists(live_session))
        .values(state=FormationState.ARCHIVEE),
        "purge_rgpd": update(Candidate).where(
            Candidate.anonymised_at.is_(None),
            func.coalesce(latest, Candidate.last_activity_at, Candidate.updated_at)
            <= JOBS_AT - jobs.deadline("conservation_donnees"))
        .values(nom="ANONYME", prenom="Candidat", email=None, telephone=None,
                anonymised_at=JOBS_AT),
        "expiration_brouillons": update(Candidature).where(
            Candidature.state == CandidatureState.BROUILLON,
            Candidature.updated_at <= JOBS_AT - jobs.deadline("expiration_brouillon"))
        .values(state=CandidatureState.CORBEILLE),
        "avis_non_transmis": update(Candidature).where(
            Candidature.state == CandidatureState.EN_ATTENTE_AVIS,
            Candidature.session_id.in_(late))
        .values(state=CandidatureState.AVIS_NON_TRANSMIS),
    }


def _job_case(job, peer_update) -> Case:
    case = Case(GROUP, f"tâche {job.name}", project=None, repeat=JOB_REPEAT)

    def project():
        with rolled_back():
            result = job.func(at=JOBS_AT, batch_size=500, dry_run=False)
        case.rows = result.seen
    case.project = project
    if peer_update is not None:
        def peer():
            with rolled_back():
                db.session.execute(peer_update.execution_options(synchronize_session=False))
        case.peer, case.peer_name = peer, "un UPDATE des mêmes lignes"
    return case


def cases(context: Context) -> list[Case]:
    clock.set_now(AT)
    submissions = Submissions(context, context.repeat + 1)
    found = [Case(GROUP, "dépôt d'une candidature (formulaire, POST, règles, courriels)",
                  project=submissions.project, peer=submissions.peer, target_ms=30,
                  peer_name="un INSERT de la candidature et un du courriel",
                  cleanup=submissions.cleanup)]
    formation_id = _formation_with_sessions(6)
    if formation_id is not None:
        found.append(Case(GROUP, "contrôle de publication d'une formation à 6 sessions",
                          project=_publication_check(formation_id), target_ms=50))
    peers = _peer_updates()
    found.extend(_job_case(job, peers.get(job.name)) for job in jobs.SCHEDULE)
    db.session.rollback()  # no transaction left open while the cases write
    return found
