"""Services run without a screen: they take plain data (a dict of field values), check it
with the rules the pages' forms apply, and answer French messages by field. No request,
no WTForms form, no ``url_for`` (a CSV import, a queued task, the CLI or an API call them
as a view does)."""
from __future__ import annotations

import ast
import contextlib
import datetime as dt
from pathlib import Path

import pytest
from flask import has_request_context
from sqlalchemy import func, select

from backoffice import clock, forms_engine
from backoffice.extensions import db
from backoffice.models import (Candidate, Candidature, CandidatureState, Formation,
                               FormationState, HabilitationState, OfProfile, Session)
from backoffice.services import accounts
from backoffice.services import candidatures
from backoffice.services import catalogue
from tests import factories as f

NOW = dt.datetime(2026, 3, 10, 9, 30, tzinfo=clock.PARIS)  # a Tuesday morning
PACKAGE = Path(__file__).resolve().parent.parent / "backoffice"
DOMAIN_MODULES = sorted(PACKAGE.glob("services/*.py")) + [
    PACKAGE / f"{name}.py" for name in ("workflow", "notifications", "search", "facts",
                                        "rules_engine", "permissions")]
# (module, name): what a domain module must not import or reach.
FORBIDDEN = {("flask", "request"), ("flask", "url_for"), ("werkzeug.datastructures", "MultiDict"),
             ("backoffice.forms_engine", "build_form"), ("forms_engine", "build_form"),
             ("backoffice.forms_engine", "DefinitionForm"), ("forms_engine", "DefinitionForm"),
             ("backoffice.forms_engine", "form_class"), ("forms_engine", "form_class")}
FORBIDDEN_MODULES = ("wtforms", "flask_wtf")


@pytest.fixture(autouse=True)
def frozen():
    with clock.frozen(NOW):
        yield


def _problems(path: Path) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES or \
                        tuple(alias.name.rsplit(".", 1)) in FORBIDDEN:
                    problems.append(f"{where} import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] in FORBIDDEN_MODULES:
                problems.append(f"{where} from {module} import …")
            for alias in node.names:
                if (module, alias.name) in FORBIDDEN or alias.name == "url_for":
                    problems.append(f"{where} from {module} import {alias.name}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in FORBIDDEN or node.attr == "url_for":
                problems.append(f"{where} {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Name) and node.id in ("MultiDict", "url_for", "build_form"):
            problems.append(f"{where} {node.id}")
    return problems


def test_no_domain_module_needs_a_request_a_form_or_url_for():
    assert all(path.exists() for path in DOMAIN_MODULES)
    problems = [problem for path in DOMAIN_MODULES for problem in _problems(path)]
    assert problems == []


# -- catalogue -------------------------------------------------------------------------------
@pytest.fixture
def of(db):
    structure = f.create_structure()
    actor = f.create_member(structure, profile_of=OfProfile.GENERAL)
    return structure, actor


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_formation_is_created_then_changed_from_a_dict_without_a_request(of):
    structure, actor = of
    certification = f.create_certification()
    assert not has_request_context()
    formation = catalogue.create_formation({
        "intitule": "  CAP Boulanger ", "dispositif": "conventionne_region",
        "certification_id": str(certification.id), "lien_web": "https://www.exemple.fr/cap",
        "modalite_formation_continue": "oui", "modalite_contrat_pro": False,
        "modalite_apprentissage": True, "annees_cursus": ["2", 1]},
        actor=actor, structure=structure)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Formation, formation.id)
    assert (stored.intitule, stored.state, stored.certification_id, stored.annees_cursus,
            stored.modalite_formation_continue, stored.modalite_contrat_pro,
            stored.organisme_formateur_id) == (
        "CAP Boulanger", FormationState.BROUILLON, certification.id, [1, 2], True, False,
        structure.id)

    catalogue.update_formation(stored, {"intitule": "CAP Boulanger (rentrée 2026)"},
                               actor=actor)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Formation, formation.id)
    # The fields not given keep their value.
    assert (stored.intitule, stored.annees_cursus, stored.lien_web) == (
        "CAP Boulanger (rentrée 2026)", [1, 2], "https://www.exemple.fr/cap")


def test_bad_formation_values_are_refused_field_by_field_in_french(of):
    structure, actor = of
    with pytest.raises(catalogue.CatalogueError) as refused:
        catalogue.create_formation({
            "intitule": " ", "lien_web": "www.exemple.fr", "dispositif": "inconnu",
            "modalite_formation_continue": "peut-être", "modalite_apprentissage": "oui",
            "annees_cursus": [], "certification_id": "999999"},
            actor=actor, structure=structure)
    assert refused.value.fields == {
        "intitule": ["Ce champ est obligatoire."],
        "certification_id": ["Cette certification est introuvable dans le référentiel "
                             "Certif Info."],
        "lien_web": ["L'adresse doit commencer par http:// ou https://."],
        "dispositif": ["Choisissez une valeur dans la liste proposée."],
        "modalite_formation_continue": ["Choisissez une valeur dans la liste proposée."],
        "modalite_contrat_pro": ["Répondez par Oui ou par Non."],
        "annees_cursus": ["Cochez au moins une année du cursus ouverte à l'apprentissage."]}
    assert refused.value.message.startswith("Intitulé : Ce champ est obligatoire. ; ")
    db.session.rollback()
    assert _count(Formation) == 0


def test_a_session_is_created_from_strings_and_its_errors_are_on_its_fields(of):
    structure, actor = of
    formation = f.create_formation(structure=structure)
    commune = f.create_commune()
    session = catalogue.create_session(formation, {
        "date_debut": "01/09/2026", "date_fin": "2026-12-18", "mode_entree": "date_fixe",
        "places": " 12 ", "commune_id": commune.id, "ouverte_candidature": True},
        actor=actor)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Session, session.id)
    assert (stored.date_debut, stored.date_fin, stored.places, stored.commune_id) == (
        dt.date(2026, 9, 1), dt.date(2026, 12, 18), 12, commune.id)

    with pytest.raises(catalogue.CatalogueError) as refused:
        catalogue.create_session(formation, {"date_debut": "31/02/2026",
                                             "date_fin": "01/01/2026", "places": "douze"},
                                 actor=actor)
    assert refused.value.fields == {
        "date_debut": ["Indiquez une date valide au format jj/mm/aaaa."],
        "mode_entree": ["Choisissez une des réponses proposées."],
        "places": ["Indiquez un nombre entier, en chiffres."]}
    with pytest.raises(catalogue.CatalogueError) as refused:
        catalogue.update_session(stored, {"date_fin": "31/08/2026"}, actor=actor)
    assert list(refused.value.fields) == ["date_fin"]
    assert "postérieure" in refused.value.fields["date_fin"][0]
    db.session.rollback()
    assert _count(Session) == 1


def test_moderation_decides_several_formations_in_one_call(db):
    moderator = f.create_staff()
    waiting = f.create_formation(state=FormationState.EN_ATTENTE_MODERATION)
    draft = f.create_formation(state=FormationState.BROUILLON)
    with pytest.raises(catalogue.CatalogueError) as refused:
        catalogue.moderate([waiting.id], "demander_complement", actor=moderator, comment=" ")
    assert refused.value.field == "commentaire"
    outcome = catalogue.moderate([waiting.id, draft.id], "valider", actor=moderator)
    db.session.commit()
    assert outcome.done == [waiting.reference]
    assert [line.split(" : ")[0] for line in outcome.refused] == [draft.reference]
    db.session.expire_all()
    assert (waiting.state, draft.state) == (FormationState.VALIDEE, FormationState.BROUILLON)


# -- candidates and candidatures ---------------------------------------------------------------
def test_a_candidate_is_created_and_changed_from_a_dict(db):
    structure = f.create_structure(kind="prescripteur", prescriber_type="france_travail")
    user = f.create_prescriber(structure=structure)
    membership = user.memberships[0]
    candidate = candidatures.create_candidate({
        "civilite": "Mme", "nom": "Durand", "prenom": "Léa", "date_naissance": "17/05/1995",
        "telephone": "0556000000", "email": "Lea.Durand@Exemple.fr",
        "inscrit_france_travail": "non"}, membership=membership)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Candidate, candidate.id)
    assert (stored.nom, stored.date_naissance, stored.telephone, stored.email) == (
        "Durand", dt.date(1995, 5, 17), "05 56 00 00 00", "lea.durand@exemple.fr")

    candidatures.update_candidate(stored, {"prenom": "Léane"})
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Candidate, candidate.id)
    assert (stored.prenom, stored.telephone) == ("Léane", "05 56 00 00 00")

    with pytest.raises(candidatures.CandidatureError) as refused:
        candidatures.create_candidate({"civilite": "Mme", "nom": "Martin", "prenom": "",
                                       "date_naissance": "1920-01-01", "email": "martin@",
                                       "inscrit_france_travail": True},
                                      membership=membership)
    assert refused.value.fields == {
        "prenom": ["Ce champ est obligatoire."],
        "date_naissance": ["La date de naissance doit correspondre à un âge entre 15 et 80 "
                           "ans."],
        "email": ["Adresse électronique non valide (ex. prenom.nom@exemple.fr)."]}


def test_a_candidature_is_saved_as_a_draft_then_submitted_from_a_dict(db):
    formation = f.create_formation(state=FormationState.VALIDEE)
    session = f.create_published_session(formation=formation)
    user = f.create_prescriber("prescripteur_n2")
    membership = user.memberships[0]
    candidature = candidatures.new_candidature(f.create_candidate(), session, actor=user,
                                               membership=membership)
    values = {"parcours_anterieur": "Deux ans en boulangerie.", "consentement": False}
    candidatures.save(candidature, values, actor=user, membership=membership, submit=False)
    db.session.commit()
    assert candidature.state == CandidatureState.BROUILLON

    with pytest.raises(candidatures.CandidatureError) as refused:
        candidatures.save(candidature, values, actor=user, membership=membership, submit=True)
    assert list(refused.value.fields) == ["consentement"]
    assert "consentement du candidat" in refused.value.fields["consentement"][0]
    db.session.rollback()

    candidatures.save(candidature, {"consentement": "y"}, actor=user, membership=membership,
                      submit=True)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Candidature, candidature.id)
    assert (stored.state, stored.consentement, stored.parcours_anterieur) == (
        CandidatureState.EN_ATTENTE_AVIS, True, "Deux ans en boulangerie.")


def test_the_same_avis_on_several_candidatures_is_one_service_call(db):
    of_structure = f.create_structure()
    formation = f.create_formation(structure=of_structure, state=FormationState.VALIDEE)
    session = f.create_published_session(formation=formation, places=1)
    manager = f.create_of_manager(of_structure)
    first = f.create_candidature(session=session)
    second = f.create_candidature(session=session)
    outcome = candidatures.give_avis_to_many(
        [first.id, second.id], CandidatureState.RETENUE, actor=manager,
        membership=manager.memberships[0])
    db.session.commit()
    assert outcome.done == 1
    assert len(outcome.refused) == 1 and outcome.refused[0].startswith(
        f"{second.reference} : Plus de place sur la session")
    assert [first.state, second.state] == [CandidatureState.RETENUE,
                                           CandidatureState.EN_ATTENTE_AVIS]
    with pytest.raises(candidatures.CandidatureNotFound):
        candidatures.give_avis_to_many([f.create_candidature().id], CandidatureState.RETENUE,
                                       actor=manager, membership=manager.memberships[0])


def test_nobody_revokes_their_own_habilitation_whoever_calls(db):
    user = f.create_user()
    habilitation = f.create_habilitation(user=user, role="gestionnaire")
    with pytest.raises(accounts.AccountError, match="votre propre habilitation"):
        accounts.decide_habilitation(habilitation, "revoquer", actor=user)
    db.session.rollback()
    db.session.expire_all()
    assert habilitation.state == HabilitationState.ACTIVE


# -- the schema is the form's rules ------------------------------------------------------------
EXAMPLES = [(path.stem, index) for path in sorted(forms_engine.DEFAULT_DIRECTORY.glob("*.yaml"))
            for index in range(len(forms_engine.load_definition(path).examples))]


@pytest.mark.parametrize("name, index", EXAMPLES)
def test_every_example_gives_the_same_outcome_from_plain_values(app, db, name, index):
    """Each example of ``forms/*.yaml`` (checked through the page's form elsewhere) gives
    the same outcome when its answers are handed to the schema as plain Python values."""
    definition = forms_engine.get_definition(name)
    example = definition.examples[index]
    flags = {key: forms_engine._as_bool(value) if forms_engine._as_bool(value) is not None
             else value for key, value in example.context.items()}
    today = dt.datetime.combine(example.today, dt.time(12), tzinfo=clock.PARIS) \
        if example.today else None
    with clock.frozen(today) if today else contextlib.nullcontext():
        cleaned = forms_engine.schema(definition).validate(
            example.input, context={"structure": f.create_structure(), **flags})
    assert cleaned.ok == example.valid
    assert {name: messages[0] for name, messages in cleaned.errors.items()} == {
        name: str(message).strip() for name, message in example.errors.items()}
