"""A candidate's full file (contact data, NIR field) is read and edited only by a structure
that registered the person or has a candidature for them; the shared directory finds a
person by exact identity with minimal data; the NIR is never written back into a page."""
from __future__ import annotations

import datetime as dt

import pytest
from flask import g

from backoffice import clock
from backoffice.extensions import db
from backoffice.models import FormationState, StructureKind
from backoffice.permissions import can_edit_personal_information
from tests import factories as f
from tests.conftest import csrf_token, login

MONDAY_10 = dt.datetime(2026, 3, 9, 10, 0, tzinfo=clock.PARIS)
NIR = "295053306312384"
OTHER_NIR = "180012A01234566"


def prescriber_structure():
    return f.create_structure(kind=StructureKind.PRESCRIPTEUR, prescriber_type="mission_locale")


def open_session():
    of = f.create_structure(raison_sociale="Organisme formateur")
    formation = f.create_formation(structure=of, state=FormationState.VALIDEE,
                                   intitule="Agent de propreté")
    return f.create_published_session(formation)


def new_client(app):
    for key in ("_login_user", "membership", "csrf_token"):
        g.pop(key, None)
    return app.test_client()


def candidate_of_x(x):
    candidate = f.create_candidate(nom="Martin", prenom="Léa", date_naissance=dt.date(1995, 5, 17),
                                   email="lea.martin@exemple.fr", telephone="0556000000",
                                   code_postal="33000", identifiant_france_travail="7654321B",
                                   created_by_structure_id=x.id)
    candidate.nir = NIR
    return candidate


def edit_data(page_html, **fields):
    data = {"csrf_token": csrf_token(page_html), "civilite": "Mme", "nom": "Martin",
            "prenom": "Léa", "date_naissance": "17/05/1995", "inscrit_france_travail": "oui",
            "identifiant_france_travail": "7654321B", "email": "lea.martin@exemple.fr",
            "nir": ""}
    data.update(fields)
    return data


def test_a_prescriber_of_another_structure_gets_404_and_changes_nothing(app, client):
    """Y's prescriber neither reads nor rewrites X's candidate: 404 on GET and POST, the
    row unchanged (not even with a token taken from Y's own pages)."""
    with clock.frozen(MONDAY_10):
        x, y = prescriber_structure(), prescriber_structure()
        f.create_prescriber("prescripteur_n3", x)
        intruder = f.create_prescriber("prescripteur_n3", y)
        candidate = candidate_of_x(x)
        session = open_session()
        db.session.commit()
        login(client, intruder)
        url = f"/prescription/candidats/{candidate.id}/modifier"
        assert client.get(url).status_code == 404
        token = csrf_token(client.get(f"/prescription/sessions/{session.id}/nouveau-candidat").text)
        response = client.post(url, data={
            "csrf_token": token, "civilite": "M", "nom": "Pirate", "prenom": "Léa",
            "date_naissance": "17/05/1995", "inscrit_france_travail": "non",
            "email": "pirate@exemple.fr", "nir": OTHER_NIR})
        assert response.status_code == 404
        db.session.expire_all()
        assert (candidate.nom, candidate.email, candidate.nir) == (
            "Martin", "lea.martin@exemple.fr", NIR)
        # Choosing the person in the directory shows the identity, not the contact data.
        page = client.get(f"/prescription/sessions/{session.id}/candidats/{candidate.id}"
                          "/candidature")
        assert page.status_code == 200
        assert "MARTIN Léa" in page.text
        assert "lea.martin@exemple.fr" not in page.text and "7654321B" not in page.text
        assert "Modifier la fiche du candidat" not in page.text


def test_a_structure_with_a_candidature_for_the_person_may_edit_the_file(app, client):
    """Y has a candidature for X's candidate: Y's prescriber opens and saves the file."""
    with clock.frozen(MONDAY_10):
        x, y = prescriber_structure(), prescriber_structure()
        colleague = f.create_prescriber("prescripteur_n2", y)
        prescriber = f.create_prescriber("prescripteur_n2", y)
        candidate = candidate_of_x(x)
        f.create_candidature(candidate=candidate, prescriber_structure=y,
                             prescriber_user=colleague)
        db.session.commit()
        login(client, prescriber)
        url = f"/prescription/candidats/{candidate.id}/modifier"
        page = client.get(url)
        assert page.status_code == 200
        assert "lea.martin@exemple.fr" in page.text
        assert NIR not in page.text and "NIR enregistré" in page.text
        response = client.post(url, data=edit_data(page.text, telephone="0556111111"))
        assert response.status_code == 302
        db.session.expire_all()
        assert candidate.telephone == "05 56 11 11 11"
        assert candidate.nir == NIR  # an empty NIR field keeps the stored value


def test_the_nir_typed_is_not_echoed_after_a_validation_error(client):
    """The NIR typed with another field invalid is not in the answer: the field is empty."""
    with clock.frozen(MONDAY_10):
        x = prescriber_structure()
        prescriber = f.create_prescriber("prescripteur_n2", x)
        candidate = candidate_of_x(x)
        db.session.commit()
        login(client, prescriber)
        url = f"/prescription/candidats/{candidate.id}/modifier"
        page = client.get(url)
        response = client.post(url, data=edit_data(page.text, email="pas-une-adresse",
                                                   nir="1 80 01 2A 012 345 66"))
        assert response.status_code == 200
        assert "pas-une-adresse" in response.text  # the other answers are shown again
        assert "012 345 66" not in response.text and OTHER_NIR not in response.text
        assert 'name="nir" type="text" value=""' in response.text
        db.session.expire_all()
        assert candidate.nir == NIR


def test_the_directory_finds_others_only_by_exact_identity(client):
    """A name prefix finds only the structure's own candidates; an exact identity (nom,
    prénom, date de naissance) or a France Travail number finds anyone, with minimal data."""
    with clock.frozen(MONDAY_10):
        x, y = prescriber_structure(), prescriber_structure()
        prescriber = f.create_prescriber("prescripteur_n2", y)
        candidate_of_x(x)
        own = f.create_candidate(nom="Martineau", prenom="Paul", code_postal="64100",
                                 created_by_structure_id=y.id)
        session = open_session()
        db.session.commit()
        login(client, prescriber)
        base = f"/prescription/sessions/{session.id}/ajouter"
        prefix = client.get(base + "?nom=mart")
        assert "MARTINEAU Paul" in prefix.text and "64100" in prefix.text
        assert "MARTIN Léa" not in prefix.text
        assert "MARTIN Léa" not in client.get(base + "?nom=Martin&date_naissance=17/05/1995").text
        for query in ("?nom=MARTIN&prenom=lea&date_naissance=17/05/1995",
                      "?identifiant_france_travail=7654321B"):
            found = client.get(base + query)
            assert "MARTIN Léa" in found.text
            assert "33000" not in found.text and "lea.martin@exemple.fr" not in found.text


@pytest.mark.parametrize("relation,allowed", [
    ("created", True), ("candidature", True), ("other_structure_candidature", False),
    ("nothing", False), ("of_received", True), ("of_draft_only", False)])
def test_can_edit_personal_information(relation, allowed):
    """The one permission, for each way a structure can be related to a person."""
    from backoffice.models import CandidatureState, Membership
    x = prescriber_structure()
    candidate = f.create_candidate()
    of = f.create_structure()
    session = f.create_session(formation=f.create_formation(structure=of))
    membership = Membership(structure_id=x.id, profile_prescripteur="prescripteur_n2")
    if relation == "created":
        candidate.created_by_structure_id = x.id
    elif relation == "candidature":
        f.create_candidature(candidate=candidate, prescriber_structure=x,
                             prescriber_user=f.create_prescriber("prescripteur_n1", x))
    elif relation == "other_structure_candidature":
        f.create_candidature(candidate=candidate)
    elif relation in ("of_received", "of_draft_only"):
        state = (CandidatureState.EN_ATTENTE_AVIS if relation == "of_received"
                 else CandidatureState.BROUILLON)
        f.create_candidature(candidate=candidate, session=session, state=state)
        membership = Membership(structure_id=of.id, profile_of="gestionnaire_of_preinscription")
    db.session.flush()
    assert can_edit_personal_information(membership, candidate) is allowed
    candidate.anonymised_at = clock.now()
    db.session.flush()
    assert can_edit_personal_information(membership, candidate) is False
