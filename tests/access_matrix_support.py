"""The world of the access-control matrix (tests/test_access_matrix.py): two structures
X and Y of each kind, one logged-in client per role, and the objects of X that the URLs
name.

Every role is a real account logged in through the login form (``conftest.login``), so the
matrix follows whatever login asks (a second factor for staff included). Each client reads
its CSRF token from a page, so that a refused POST is refused by the permission check,
not by CSRF.
"""
from __future__ import annotations

import datetime as dt
import json

from backoffice import clock
from backoffice.extensions import db
from backoffice.models import (JobRun, JobRunStatus, MfaRecoveryCode, OutboundMessage,
                               PersonalDataAccess, RateLimit, RuleSetVersion, StaffRole,
                               StructureKind, Token, TokenPurpose, TransitionLog, UserSession,
                               UserState)
from tests import factories
from tests.conftest import csrf_token, login

OF_PROFILES = {"ofc": "gestionnaire_of_catalogue", "ofp": "gestionnaire_of_preinscription",
               "ofg": "gestionnaire_of_general"}
PRESCRIBER_LEVELS = {"n1": "prescripteur_n1", "n2": "prescripteur_n2",
                     "n3": "prescripteur_n3"}

# The columns of the matrix, in the order of the expectation strings.
ROLES = ("anon",
         "ofc_X", "ofp_X", "ofg_X", "ofc_Y", "ofp_Y", "ofg_Y",
         "n1_X", "n2_X", "n3_X", "n1_Y", "n2_Y", "n3_Y",
         "ref_X", "ref_Y",
         "mod", "rules", "admin")


def build_world() -> tuple[dict[str, object], dict[str, int | str]]:
    """Create the users of every role and the objects of X; return (users by role, URL
    placeholders)."""
    users: dict[str, object] = {}
    ids: dict[str, int | str] = {}
    for side in ("X", "Y"):
        of = factories.create_structure(raison_sociale=f"Organisme {side}")
        prescriber = factories.create_structure(raison_sociale=f"Agence {side}",
                                                kind=StructureKind.PRESCRIPTEUR,
                                                prescriber_type="france_travail")
        for code, profile in OF_PROFILES.items():
            users[f"{code}_{side}"] = factories.create_member(of, profile_of=profile)
        for code, profile in PRESCRIBER_LEVELS.items():
            users[f"{code}_{side}"] = factories.create_prescriber(profile, prescriber)
        users[f"ref_{side}"] = factories.create_referent(of)
        # The general OF manager is the habilitation manager (« gestionnaire ») of its SIRET.
        factories.create_habilitation(users[f"ofg_{side}"], of.siret, role="gestionnaire")
        if side == "X":
            of_x, prescriber_x = of, prescriber
    users["mod"] = factories.create_staff(StaffRole.MODERATEUR)
    users["rules"] = factories.create_staff(StaffRole.RESPONSABLE_REGLES)
    users["admin"] = factories.create_staff(StaffRole.ADMIN)

    # The objects of X.
    formation = factories.create_formation(structure=of_x, state="validee")
    session = factories.create_published_session(
        formation, adresse="1 rue du Port", commune=factories.create_commune())
    entry_point = factories.create_entry_point(session=session)
    candidate = factories.create_candidate(created_by_structure_id=prescriber_x.id)
    candidature = factories.create_candidature(
        session=session, candidate=candidate, prescriber_structure=prescriber_x,
        prescriber_user=users["n2_X"])
    draft = factories.create_candidature(
        session=session, candidate=factories.create_candidate(), state="brouillon",
        submitted_at=None, prescriber_structure=prescriber_x, prescriber_user=users["n2_X"])
    member = factories.create_member(of_x, profile_of="gestionnaire_of_catalogue")
    detachable = factories.create_member(of_x, profile_of="gestionnaire_of_catalogue")
    # Allowed POSTs that end an object (archive, delete, cancel) get one of their own, so
    # that the rows after them still find X's formation and session.
    spare_formation = factories.create_formation(structure=of_x, state="validee")
    spare_session = factories.create_published_session(spare_formation)
    spare_entry_point = factories.create_entry_point(
        session=session, date_entree=clock.today() + dt.timedelta(days=50))
    newcomer = factories.create_user(state=UserState.EN_ATTENTE_VALIDATION)
    account_request = factories.create_account_request(newcomer, of_x)
    affiliation_request = factories.create_affiliation_request(factories.create_user(), of_x)
    habilitation = factories.create_habilitation(factories.create_user(), of_x.siret,
                                                 role="declarant", state="demandee")
    delegation = factories.create_delegation(users["ofg_X"], of_x.siret)
    # Already decided: a refusal must not tell their state to whoever may not act on them.
    refused_habilitation = factories.create_habilitation(
        factories.create_user(), of_x.siret, role="declarant", state="refusee")
    revoked_delegation = factories.create_delegation(users["ofg_X"], of_x.siret,
                                                     state="revoquee")
    # A staff account's habilitation: admins' business, hidden from moderators.
    staff_habilitation = factories.create_habilitation(users["rules"], of_x.siret,
                                                       role="declarant", state="demandee")
    referencing_request = factories.create_referencing_request(users["n1_X"])
    import_run = JobRun(job="import_catalogue", run_for=clock.now(), started_at=clock.now(),
                        status=JobRunStatus.SUCCES, dry_run=False, summary=json.dumps(
                            {"structure_id": of_x.id, "user_id": users["ofc_X"].id,
                             "fichier": "catalogue.csv", "traites": 0, "total": 0}))
    token = Token(purpose=TokenPurpose.REINITIALISATION, token_hash="0" * 64,
                  user=member, expires_at=clock.now() + dt.timedelta(hours=1))
    message = OutboundMessage(recipient=member.email, subject="Réinitialisation",
                              body_text="Lien masqué", related_type="user",
                              related_id=member.id)
    log = TransitionLog(object_type="candidature", object_id=candidature.id,
                        transition="valider", from_state="en_attente_validation",
                        to_state="en_attente_avis", actor_id=users["n2_X"].id)
    version = RuleSetVersion(ruleset="deadlines", version=1, content="rules: []\n")
    rate_limit = RateLimit(scope="connexion_compte", key=member.email, count=1,
                           window_start=clock.now())
    # A session of X's member (not of a role's client: closing it must not log one out).
    user_session = UserSession(user=member, key_hash="1" * 64)
    recovery_code = MfaRecoveryCode(user=users["admin"], code_hash="2" * 64)
    data_access = PersonalDataAccess(actor=users["admin"], actor_role=StaffRole.ADMIN,
                                     candidate_id=candidate.id, what="fiche",
                                     location="/admin/candidate/details/")
    tryout_run = JobRun(job="essai_regles", run_for=clock.now(), started_at=clock.now(),
                        status=JobRunStatus.SUCCES, dry_run=True,
                        summary=json.dumps({"jeu": "deadlines", "traites": 0, "total": 0}))
    db.session.add_all([import_run, tryout_run, token, message, log, version, rate_limit,
                        user_session, recovery_code, data_access])
    db.session.flush()
    ids.update(
        structure=of_x.id, formation=formation.id, session=session.id,
        entry_point=entry_point.id, candidate=candidate.id, candidature=candidature.id, draft=draft.id,
        membership=member.memberships[0].id, detachable=detachable.memberships[0].id,
        spare_formation=spare_formation.id, spare_session=spare_session.id,
        spare_entry_point=spare_entry_point.id, user=member.id, staff_user=users["admin"].id,
        account_request=account_request.id, affiliation=affiliation_request.id,
        habilitation=habilitation.id, staff_habilitation=staff_habilitation.id,
        delegation=delegation.id,
        refused_habilitation=refused_habilitation.id, revoked_delegation=revoked_delegation.id,
        referencing=referencing_request.id, import_run=import_run.id, tryout_run=tryout_run.id,
        commune=session.commune_id, certification=formation.certification_id,
        token=token.id, message=message.id, transition_log=log.id,
        ruleset_version=version.id, rate_limit=rate_limit.id, user_session=user_session.id,
        recovery_code=recovery_code.id, data_access=data_access.id, jeu="deadlines",
        siret=of_x.siret, today=dt.date.today().isoformat())
    db.session.commit()
    return users, ids


def fresh_context(app, call, *args, **kwargs):
    """One request in an application context of its own: ``g`` (where Flask-WTF keeps the
    CSRF token and ``current_membership`` its cache) must not leak from one client to the
    next, as it would under the test's own context."""
    with app.app_context():
        response = call(*args, **kwargs)
        response.get_data()  # read (and so buffer) the body, then close a streamed file
        response.close()
        return response


def logged_in_clients(app, users) -> dict[str, tuple[object, str]]:
    """One test client per role, logged in, with a CSRF token read from a page."""
    clients = {}
    anonymous = app.test_client()
    page = fresh_context(app, anonymous.get, "/connexion")
    clients["anon"] = (anonymous, csrf_token(page.text))
    for role, user in users.items():
        client = app.test_client()
        response = fresh_context(app, login, client, user)
        assert response.status_code == 302, f"{role} could not log in"
        page = fresh_context(app, client.get, "/mon-compte")
        assert page.status_code == 200, f"{role}: /mon-compte answered {page.status_code}"
        clients[role] = (client, csrf_token(page.text))
    return clients
