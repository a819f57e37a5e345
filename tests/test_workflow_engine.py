"""Every state change goes through ``workflow.fire``: rights per object, guards,
transition log, side effects, conflicts."""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backoffice import workflow
from backoffice.models import (AccountRequest, Channel, Delegation, Habilitation, OutboundMessage,
                               StaffRole, StructureKind, TransitionLog, User)
from backoffice.workflow import (ConflictError, GuardFailed, PermissionDenied,
                                 TransitionNotAllowed, WorkflowDefinitionError, WorkflowError)
from tests.factories import (create_candidate, create_candidature, create_formation,
                             create_member, create_session, create_staff, create_structure,
                             create_user)


@dataclasses.dataclass
class FakeViolation:
    rule_id: str
    message: str
    severity: str = "bloquant"
    field: str | None = None


@pytest.fixture(autouse=True)
def passing_guards(monkeypatch):
    """Guards that pass, unless a test replaces them (the rule sets are tested elsewhere)."""
    for name in ("publication", "candidature_limits", "cursus_eligibility"):
        monkeypatch.setitem(workflow._guards, name, lambda obj, **kw: [])


# -- a small world -----------------------------------------------------------------------
@pytest.fixture
def world(db):
    of = create_structure(raison_sociale="Afpa Bordeaux")
    other_of = create_structure(raison_sociale="Autre OF")
    prescriber = create_structure(kind=StructureKind.PRESCRIPTEUR,
                                  prescriber_type="france_travail")
    other_prescriber = create_structure(kind=StructureKind.PRESCRIPTEUR,
                                        prescriber_type="mission_locale")
    actors = {
        "admin": create_staff(StaffRole.ADMIN),
        "moderateur": create_staff(StaffRole.MODERATEUR),
        "responsable_regles": create_staff(StaffRole.RESPONSABLE_REGLES),
        "of_catalogue": create_member(of, profile_of="gestionnaire_of_catalogue"),
        "of_general": create_member(of, profile_of="gestionnaire_of_general"),
        "of_preinscription": create_member(of, profile_of="gestionnaire_of_preinscription"),
        "autre_of_general": create_member(other_of, profile_of="gestionnaire_of_general"),
        "n1_auteur": create_member(prescriber, profile_prescripteur="prescripteur_n1"),
        "n1_collegue": create_member(prescriber, profile_prescripteur="prescripteur_n1"),
        "n2_auteur": create_member(prescriber, profile_prescripteur="prescripteur_n2"),
        "n2_collegue": create_member(prescriber, profile_prescripteur="prescripteur_n2"),
        "n3": create_member(prescriber, profile_prescripteur="prescripteur_n3"),
        "autre_n3": create_member(other_prescriber, profile_prescripteur="prescripteur_n3"),
        "referent": create_member(of, is_referent=True),
        "autre_referent": create_member(other_of, is_referent=True),
        "systeme": None,
    }
    formation = create_formation(structure=of)
    session = create_session(formation=formation)
    db.session.commit()
    return {"of": of, "prescriber": prescriber, "formation": formation, "session": session,
            **actors}


def _fire_as(world, obj, transition, who, reason="motif de test"):
    return workflow.fire(obj, transition, actor=world[who], reason=reason)


FORMATION_CASES = [
    ("brouillon", "publier", {"of_catalogue", "of_general"},
     {"of_preinscription", "autre_of_general", "moderateur", "n3", "systeme"}),
    ("en_attente_moderation", "valider", {"moderateur", "admin"},
     {"of_general", "responsable_regles", "systeme"}),
    ("modifiee", "demander_complement", {"moderateur", "admin"}, {"of_catalogue"}),
    ("validee", "archiver", {"of_general", "moderateur", "systeme"}, {"autre_of_general", "n2_auteur"}),
    ("archivee", "restaurer", {"of_catalogue", "admin"}, {"systeme", "of_preinscription"}),
]


@pytest.mark.parametrize("state, transition, allowed, refused", FORMATION_CASES)
def test_formation_transitions_by_role(db, world, state, transition, allowed, refused):
    for who in sorted(allowed | refused):
        formation = create_formation(structure=world["of"], state=state)
        if who in allowed:
            log = _fire_as(world, formation, transition, who)
            assert (log.from_state, formation.state) == (state, log.to_state), who
        else:
            with pytest.raises(PermissionDenied, match="Vous n'avez pas le droit"):
                _fire_as(world, formation, transition, who)
            assert formation.state == state
        db.session.rollback()


CANDIDATURE_CASES = [
    ("brouillon", "soumettre_pour_validation", {"n1_auteur"},
     {"n1_collegue", "n2_auteur", "n3", "of_general", "moderateur"}),
    ("brouillon", "soumettre", {"n2_auteur", "n3"},
     {"n1_auteur", "n2_collegue", "autre_n3", "admin"}),
    ("en_attente_validation", "valider", {"n3"}, {"n1_auteur", "n2_collegue", "autre_n3"}),
    ("en_attente_avis", "retenir", {"of_preinscription", "of_general"},
     {"of_catalogue", "autre_of_general", "n3", "moderateur"}),
    ("en_attente_avis", "annuler", {"n2_auteur", "n3"}, {"n2_collegue", "autre_n3", "of_general"}),
    ("brouillon", "expirer_brouillon", {"systeme"}, {"admin", "n2_auteur"}),
    ("en_attente_avis", "constater_avis_non_transmis", {"systeme"}, {"of_general"}),
]


@pytest.mark.parametrize("state, transition, allowed, refused", CANDIDATURE_CASES)
def test_candidature_transitions_by_role(db, world, state, transition, allowed, refused):
    author = "n1_auteur" if "validation" in state or transition == "soumettre_pour_validation" \
        else "n2_auteur"
    for who in sorted(allowed | refused):
        candidature = create_candidature(
            state=state, session=world["session"], prescriber_user=world[author],
            prescriber_structure=world["prescriber"])
        if who in allowed:
            _fire_as(world, candidature, transition, who)
            assert candidature.state != state, who
        else:
            with pytest.raises(PermissionDenied):
                _fire_as(world, candidature, transition, who)
        db.session.rollback()


def test_account_request_is_decided_by_the_structure_referent(db, world):
    for who, allowed in (("referent", True), ("moderateur", True), ("autre_referent", False),
                         ("of_general", False)):
        request = AccountRequest(user=create_user(state="en_attente_validation"),
                                 structure=world["of"])
        db.session.add(request)
        db.session.flush()
        if allowed:
            _fire_as(world, request, "valider", who)
            assert request.state == "validee" and request.decided_at is not None
        else:
            with pytest.raises(PermissionDenied):
                _fire_as(world, request, "valider", who)
        db.session.rollback()


def test_delegation_accepted_by_the_third_party_and_revoked_by_the_gestionnaire(db, world):
    gestionnaire = create_user()
    db.session.add(Habilitation(siret=world["of"].siret, user=gestionnaire,
                                role="gestionnaire", state="active"))
    tiers = create_user(email="tiers@cabinet.fr")
    delegation = Delegation(granted_by=gestionnaire, siret_etablissement=world["of"].siret,
                            siret_tiers="44306184100047", email_tiers="tiers@cabinet.fr",
                            role="declarant")
    db.session.add(delegation)
    db.session.flush()
    with pytest.raises(PermissionDenied):
        workflow.fire(delegation, "accepter", actor=gestionnaire)
    workflow.fire(delegation, "accepter", actor=tiers)
    assert delegation.state == "active" and delegation.accepted_at is not None
    with pytest.raises(PermissionDenied):
        workflow.fire(delegation, "revoquer", actor=tiers)
    workflow.fire(delegation, "revoquer", actor=gestionnaire)
    assert delegation.state == "revoquee"


def test_user_activates_only_their_own_account(db, world):
    user = create_user(state="a_activer")
    with pytest.raises(PermissionDenied):
        workflow.fire(user, "activer", actor=create_user())
    workflow.fire(user, "activer", actor=user)
    assert user.state == "en_attente_validation"


def test_transition_from_the_wrong_state_is_refused_in_french(db, world):
    formation = create_formation(structure=world["of"], state="validee")
    with pytest.raises(TransitionNotAllowed) as error:
        _fire_as(world, formation, "publier", "of_general")
    assert error.value.message == ("« Confirmer la publication » n'est pas possible : "
                                   "l'objet est à l'état « Validée (publiée) ».")


def test_someone_without_the_right_learns_nothing_of_the_state(db, world):
    """Another OF asking to publish a formation that is already published is refused for
    want of the right, not told the formation's state."""
    formation = create_formation(structure=world["of"], state="validee")
    with pytest.raises(PermissionDenied) as error:
        _fire_as(world, formation, "publier", "autre_of_general")
    assert "Validée" not in error.value.message


def test_mandatory_reason(db, world):
    formation = create_formation(structure=world["of"], state="en_attente_moderation")
    with pytest.raises(WorkflowError, match="Un motif est obligatoire"):
        _fire_as(world, formation, "demander_complement", "moderateur", reason="  ")
    _fire_as(world, formation, "demander_complement", "moderateur", reason="Préciser le lieu")
    assert formation.state == "complement_demande"


def test_blocking_guard_stops_the_transition_with_its_message(db, world, monkeypatch):
    monkeypatch.setitem(workflow._guards, "publication", lambda obj, **kw: [
        FakeViolation("intitule_longueur", "l'intitulé compte 312 caractères, 300 au plus",
                      field="intitule"),
        FakeViolation("mention_titre", "la mention du titre ne correspond pas aux modalités",
                      severity="avertissement")])
    formation = world["formation"]
    with pytest.raises(GuardFailed) as error:
        _fire_as(world, formation, "publier", "of_general")
    assert "l'intitulé compte 312 caractères, 300 au plus" in error.value.message
    assert [v.rule_id for v in error.value.violations] == ["intitule_longueur", "mention_titre"]
    assert formation.state == "brouillon"
    assert db.session.scalar(select(func.count()).select_from(TransitionLog)) == 0


def test_warnings_do_not_block(db, world, monkeypatch):
    monkeypatch.setitem(workflow._guards, "publication", lambda obj, **kw: [
        FakeViolation("mention_titre", "mention à revoir", severity="avertissement")])
    _fire_as(world, world["formation"], "publier", "of_general")
    assert world["formation"].state == "en_attente_moderation"


def test_transition_log_timestamps_and_effects(db, world):
    moderator = world["moderateur"]
    formation = world["formation"]
    log = _fire_as(world, formation, "publier", "of_general", reason=None)
    db.session.commit()
    stored = db.session.scalar(select(TransitionLog))
    assert (stored.object_type, stored.object_id, stored.transition, stored.from_state,
            stored.to_state, stored.actor_id, stored.reason) == (
        "formation", formation.id, "publier", "brouillon", "en_attente_moderation",
        world["of_general"].id, None)
    assert formation.submitted_at == log.at
    mails = db.session.scalars(select(OutboundMessage)).all()
    assert [m.recipient for m in mails] == [moderator.email]
    assert "Confirmer la publication" in mails[0].subject
    assert formation.reference in mails[0].body_text


def test_avis_notifies_prescriber_candidate_and_hub_without_nir(db, world):
    candidate = create_candidate(email="candidat@exemple.fr", inscrit_france_travail=True,
                                 identifiant_france_travail="1234567A")
    candidate.nir = "295057512345678"
    candidature = create_candidature(
        state="en_attente_avis", session=world["session"], candidate=candidate,
        prescriber_user=world["n2_auteur"], prescriber_structure=world["prescriber"],
        envoi_recapitulatif=True)
    _fire_as(world, candidature, "ne_pas_retenir", "of_preinscription", reason="Prérequis")
    db.session.commit()
    messages = db.session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)).all()
    emails = sorted(m.recipient for m in messages if m.channel == Channel.EMAIL)
    assert emails == sorted([world["n2_auteur"].email, "candidat@exemple.fr"])
    hub = [m for m in messages if m.channel == Channel.HUB]
    assert len(hub) == 1 and hub[0].payload["etat"] == "non_retenue"
    assert hub[0].payload["candidat"]["identifiant_france_travail"] == "1234567A"
    assert all("295057512345678" not in (m.body_text or "") + str(m.payload or "")
               for m in messages)


def test_no_hub_message_for_non_region_offer(db, world):
    world["formation"].dispositif = "non_conventionne"
    candidature = create_candidature(
        state="en_attente_avis", session=world["session"],
        candidate=create_candidate(inscrit_france_travail=True),
        prescriber_user=world["n2_auteur"], prescriber_structure=world["prescriber"])
    _fire_as(world, candidature, "retenir", "of_general")
    assert db.session.scalar(select(func.count()).where(OutboundMessage.channel == "hub")) == 0


def test_stale_object_gets_a_conflict_error(app, db, world):
    """Someone else changed the formation since it was read: the change is refused."""
    formation = world["formation"]
    formation_id = formation.id
    db.session.execute(type(formation).__table__.update()
                       .where(type(formation).id == formation_id)
                       .values(version=formation.version + 1))
    with pytest.raises(ConflictError, match="modifié par quelqu'un d'autre"):
        _fire_as(world, formation, "publier", "of_general")
    db.session.rollback()




def test_concurrent_fire_one_wins(app, db, world, dialect):
    """Two moderators act on the same formation at the same moment: one wins, the other
    gets a clear conflict error, and exactly one transition is logged."""
    if dialect != "postgresql":
        pytest.skip("real row locking is tested on PostgreSQL")
    formation = create_formation(structure=world["of"], state="en_attente_moderation")
    db.session.commit()
    formation_id, moderator_id, admin_id = formation.id, world["moderateur"].id, world["admin"].id
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def act(name: str, user_id: int, transition: str):
        with app.app_context():
            from backoffice.models import Formation
            obj = db.session.get(Formation, formation_id)
            actor = db.session.get(User, user_id)
            obj.state  # loaded before the other thread commits
            barrier.wait()
            try:
                workflow.fire(obj, transition, actor=actor, reason="concurrence")
                db.session.commit()
                outcomes[name] = "ok"
            except WorkflowError as error:
                db.session.rollback()
                outcomes[name] = type(error).__name__
            finally:
                db.session.remove()

    threads = [threading.Thread(target=act, args=("valider", moderator_id, "valider")),
               threading.Thread(target=act, args=("complement", admin_id, "demander_complement"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes.values()) == ["ConflictError", "ok"], outcomes
    assert db.session.scalar(select(func.count()).select_from(TransitionLog)
                             .where(TransitionLog.object_id == formation_id)) == 1


# -- definitions ---------------------------------------------------------------------------
WORKFLOWS_DIR = Path(__file__).resolve().parent.parent / "workflows"


def test_every_workflow_file_loads_and_matches_its_model(app):
    loaded = workflow.load_workflows(WORKFLOWS_DIR)
    assert set(loaded) == {"formation", "session", "candidature", "user", "account_request",
                           "affiliation_request", "referencing_request", "habilitation",
                           "delegation"}
    from backoffice.models import CandidatureState, FormationState
    assert set(loaded["candidature"].states) == {s.value for s in CandidatureState}
    assert set(loaded["formation"].states) == {s.value for s in FormationState}


GOOD = """
objet: session
modele: Session
etat_initial: active
etats:
  - {code: active, libelle: Active}
  - {code: annulee, libelle: Annulée, final: true}
  - {code: supprimee, libelle: Supprimée, final: true}
transitions:
  - {nom: annuler, libelle: Annuler, de: [active], vers: annulee, qui: [admin]}
  - {nom: supprimer, libelle: Supprimer, de: [active], vers: supprimee, qui: [admin]}
"""

BROKEN = {
    "unknown_state": (GOOD.replace("vers: annulee", "vers: close"), "état inconnu « close »"),
    "unreachable": (GOOD.replace("  - {nom: supprimer, libelle: Supprimer, de: [active], "
                                 "vers: supprimee, qui: [admin]}\n", ""),
                    "inaccessible(s) depuis « active » : supprimee"),
    "nobody": (GOOD.replace("qui: [admin]}\n  - {nom: supprimer", "qui: []}\n  - {nom: supprimer"),
               "personne ne peut la déclencher"),
    "unknown_effect": (GOOD.replace("qui: [admin]}", "qui: [admin], effets: [envoyer_fax]}", 1),
                       "effet inconnu « envoyer_fax »"),
    "unknown_actor": (GOOD.replace("qui: [admin]}", "qui: [stagiaire]}", 1),
                      "acteur inconnu « stagiaire »"),
    "wrong_states": (GOOD.replace("{code: supprimee, libelle: Supprimée, final: true}",
                                  "{code: fermee, libelle: Fermée, final: true}"),
                     "les états doivent être ceux du modèle"),
    "bad_yaml": ("objet: [", "YAML invalide"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_malformed_workflow_files_are_refused_at_start_up(tmp_path, case):
    content, expected = BROKEN[case]
    (tmp_path / "session.yaml").write_text(content, encoding="utf-8")
    with pytest.raises(WorkflowDefinitionError) as error:
        workflow.load_workflows(tmp_path)
    assert "session.yaml" in str(error.value) and expected in str(error.value)


def test_create_app_fails_on_a_malformed_workflow(tmp_path):
    from backoffice import create_app
    from backoffice.config import TestingConfig

    (tmp_path / "session.yaml").write_text(BROKEN["nobody"][0], encoding="utf-8")
    with pytest.raises(WorkflowDefinitionError, match="session.yaml"):
        create_app(type("C", (TestingConfig,), {"WORKFLOWS_DIR": tmp_path}))
