"""A prescriber searches the offer, finds or registers a candidate, writes and submits a
candidature, and manages it — every page through the test client, at instants set with
the clock (Europe/Paris)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import g
from sqlalchemy import select

from backoffice import clock
from backoffice.extensions import db
from backoffice.models import (Candidate, Candidature, CandidatureState, Channel,
                               FormationState, OutboundMessage, StructureKind)
from tests import factories as f
from tests.conftest import csrf_token, login

PARIS = clock.PARIS
MONDAY_10 = dt.datetime(2026, 3, 9, 10, 0, tzinfo=PARIS)


def open_session(dispositif="conventionne_region", **overrides):
    of = f.create_structure(raison_sociale="Organisme formateur")
    formation = f.create_formation(structure=of, state=FormationState.VALIDEE,
                                   dispositif=dispositif, intitule="Agent de propreté")
    return f.create_published_session(formation, **overrides)


def new_client(app):
    """Another browser: the test's application context keeps ``g`` between requests."""
    for key in ("_login_user", "membership", "csrf_token"):
        g.pop(key, None)
    return app.test_client()


def candidature_url(session, candidate):
    return f"/prescription/sessions/{session.id}/candidats/{candidate.id}/candidature"


def post_candidature(client, session, candidate, action="valider", consent=True, **fields):
    page = client.get(candidature_url(session, candidate))
    assert page.status_code == 200
    data = {"csrf_token": csrf_token(page.text), "action": action,
            "parcours_anterieur": "Deux ans d'expérience en entretien.",
            "raisons_choix": "Projet validé en entretien.", **fields}
    if consent:
        data["consentement"] = "y"
    return client.post(candidature_url(session, candidate), data=data)


def candidatures_of(candidate):
    return list(db.session.scalars(select(Candidature).where(
        Candidature.candidate_id == candidate.id).order_by(Candidature.id)))


@pytest.mark.parametrize("instant,accepted", [
    (dt.datetime(2026, 3, 14, 10, 0, tzinfo=PARIS), False),   # Saturday 10:00
    (dt.datetime(2026, 3, 9, 7, 59, tzinfo=PARIS), False),    # Monday 07:59
    (dt.datetime(2026, 3, 9, 8, 0, tzinfo=PARIS), True),      # Monday 08:00
    (dt.datetime(2026, 3, 13, 20, 0, tzinfo=PARIS), False),   # Friday 20:00
])
def test_candidatures_are_accepted_on_working_days_from_8_to_20(client, instant, accepted):
    """Out of Monday–Friday 08:00–20:00 the prescriber sees the rule's message and
    nothing is recorded."""
    with clock.frozen(instant):
        prescriber = f.create_prescriber("prescripteur_n2")
        session, candidate = open_session(), f.create_candidate()
        db.session.commit()
        login(client, prescriber)
        response = post_candidature(client, session, candidate)
        if accepted:
            assert response.status_code == 302
            [candidature] = candidatures_of(candidate)
            assert candidature.state == CandidatureState.EN_ATTENTE_AVIS
        else:
            assert response.status_code == 422
            assert "Les candidatures sont possibles" in response.text
            assert candidatures_of(candidate) == []


def test_the_fourth_pending_candidature_is_refused(client):
    with clock.frozen(MONDAY_10):
        prescriber = f.create_prescriber("prescripteur_n2")
        candidate = f.create_candidate()
        for _ in range(3):
            f.create_candidature(candidate=candidate, session=open_session())
        session = open_session()
        db.session.commit()
        login(client, prescriber)
        response = post_candidature(client, session, candidate)
        assert response.status_code == 422
        assert "a déjà 3 candidatures en attente d&#39;avis" in response.text
        assert len(candidatures_of(candidate)) == 3


def test_a_second_hsp_candidature_is_refused(client):
    with clock.frozen(MONDAY_10):
        prescriber = f.create_prescriber("prescripteur_n3")
        candidate = f.create_candidate()
        f.create_candidature(candidate=candidate, session=open_session("HSP"))
        session = open_session("HSP")
        db.session.commit()
        login(client, prescriber)
        response = post_candidature(client, session, candidate)
        assert response.status_code == 422
        assert "sur le dispositif HSP" in response.text
        # … while a non-HSP one is still possible.
        other = open_session()
        db.session.commit()
        assert post_candidature(client, other, candidate).status_code == 302


def test_a_second_live_candidature_on_the_same_session_is_refused_even_as_a_draft(client):
    with clock.frozen(MONDAY_10):
        prescriber = f.create_prescriber("prescripteur_n2")
        session, candidate = open_session(), f.create_candidate()
        f.create_candidature(candidate=candidate, session=session)
        db.session.commit()
        login(client, prescriber)
        response = post_candidature(client, session, candidate, action="brouillon")
        assert response.status_code == 422
        assert "a déjà une candidature en cours sur la session" in response.text


def test_a_draft_may_be_saved_without_consent_but_not_validated(client):
    with clock.frozen(MONDAY_10):
        prescriber = f.create_prescriber("prescripteur_n2")
        session, candidate = open_session(), f.create_candidate()
        db.session.commit()
        login(client, prescriber)
        refused = post_candidature(client, session, candidate, consent=False)
        assert refused.status_code == 422
        assert "Le consentement du candidat" in refused.text
        assert candidatures_of(candidate) == []
        saved = post_candidature(client, session, candidate, action="brouillon", consent=False)
        assert saved.status_code == 302
        [draft] = candidatures_of(candidate)
        assert draft.state == CandidatureState.BROUILLON
        # The draft is completed and validated later from its page.
        page = client.get(f"/prescription/candidatures/{draft.id}")
        assert "Sauvegarder le brouillon" in page.text
        done = client.post(f"/prescription/candidatures/{draft.id}", data={
            "csrf_token": csrf_token(page.text), "action": "valider", "consentement": "y"})
        assert done.status_code == 302
        db.session.refresh(draft)
        assert draft.state == CandidatureState.EN_ATTENTE_AVIS


def test_apprenticeship_cursus_year_is_checked(client):
    with clock.frozen(MONDAY_10):
        prescriber = f.create_prescriber("prescripteur_n2")
        session, candidate = open_session(), f.create_candidate()
        session.formation.modalite_apprentissage = True
        session.formation.annees_cursus = [1]
        db.session.commit()
        login(client, prescriber)
        response = post_candidature(client, session, candidate, annee_cursus="2")
        assert response.status_code == 422
        assert "L&#39;année 2 n&#39;est pas ouverte à l&#39;apprentissage" in response.text
        assert post_candidature(client, session, candidate, annee_cursus="1").status_code == 302


EXISTING = ("Dupont-Léger", "Marie-Élodie", dt.date(1995, 5, 17))


@pytest.mark.parametrize("nom,prenom", [
    ("DUPONT LEGER", "Marie Elodie"),
    ("dupont-léger", "MARIE-ÉLODIE"),
    ("Dupont Léger", "marie élodie"),
    ("DupontLeger", "Marieelodie"),
])
def test_a_duplicate_candidate_is_sent_back_to_the_search(client, nom, prenom):
    """Accents, case, hyphens, spaces and compound names are folded: the prescriber is
    sent back to the directory search, on the existing candidate."""
    with clock.frozen(MONDAY_10):
        prescriber = f.create_prescriber("prescripteur_n2")
        session = open_session()
        existing = f.create_candidate(nom=EXISTING[0], prenom=EXISTING[1],
                                      date_naissance=EXISTING[2])
        db.session.commit()
        login(client, prescriber)
        url = f"/prescription/sessions/{session.id}/nouveau-candidat"
        page = client.get(url)
        response = client.post(url, data={
            "csrf_token": csrf_token(page.text), "civilite": "Mme", "nom": nom,
            "prenom": prenom, "date_naissance": "17/05/1995", "inscrit_france_travail": "non"})
        assert response.status_code == 302
        assert f"/prescription/sessions/{session.id}/ajouter" in response.location
        assert f"doublon={existing.id}" in response.location
        search = client.get(response.location)
        assert "Ce candidat existe déjà dans l&#39;annuaire" in search.text
        assert 'id="doublon"' in search.text
        assert db.session.scalar(select(db.func.count(Candidate.id))) == 1


def test_a_new_candidate_is_registered_then_the_candidature_form_opens(client):
    with clock.frozen(MONDAY_10):
        prescriber = f.create_prescriber("prescripteur_n2")
        session = open_session()
        db.session.commit()
        login(client, prescriber)
        search = client.get(f"/prescription/sessions/{session.id}/ajouter?nom=Nouveau")
        assert "Aucun résultat pour votre recherche." in search.text
        assert "Inscrire un nouveau candidat" in search.text
        url = f"/prescription/sessions/{session.id}/nouveau-candidat"
        page = client.get(url + "?nom=Nouveau")
        response = client.post(url, data={
            "csrf_token": csrf_token(page.text), "civilite": "M", "nom": "Nouveau",
            "prenom": "Hugo", "date_naissance": "01/09/1990", "inscrit_france_travail": "oui",
            "identifiant_france_travail": "1234567A"})
        assert response.status_code == 302
        candidate = db.session.scalar(select(Candidate))
        assert response.location.endswith(candidature_url(session, candidate))
        found = client.get(f"/prescription/sessions/{session.id}/ajouter?"
                           "identifiant_france_travail=1234567A")
        assert "NOUVEAU Hugo" in found.text


def test_a_level1_candidature_waits_for_a_level3(app, client):
    with clock.frozen(MONDAY_10):
        structure = f.create_structure(kind=StructureKind.PRESCRIPTEUR,
                                       prescriber_type="mission_locale")
        level1 = f.create_prescriber("prescripteur_n1", structure)
        level2 = f.create_prescriber("prescripteur_n2", structure)
        level3 = f.create_prescriber("prescripteur_n3", structure)
        session, candidate = open_session(), f.create_candidate()
        db.session.commit()
        login(client, level1)
        assert post_candidature(client, session, candidate).status_code == 302
        [candidature] = candidatures_of(candidate)
        assert candidature.state == CandidatureState.EN_ATTENTE_VALIDATION
        listing = client.get("/prescription/candidatures?onglet=attente_validation")
        assert candidature.reference in listing.text
        assert not db.session.scalar(select(OutboundMessage.id).where(
            OutboundMessage.channel == Channel.HUB))

        other = new_client(app)
        login(other, level2)  # a level 2 sees only their own candidatures
        assert other.get(f"/prescription/candidatures/{candidature.id}").status_code == 404

        client = new_client(app)
        login(client, level3)
        listing = client.get("/prescription/candidatures?onglet=attente_validation")
        assert candidature.reference in listing.text
        page = client.get(f"/prescription/candidatures/{candidature.id}")
        assert "Valider la candidature de niveau 1" in page.text
        response = client.post(f"/prescription/candidatures/{candidature.id}/valider",
                               data={"csrf_token": csrf_token(page.text)})
        assert response.status_code == 302
        db.session.refresh(candidature)
        assert candidature.state == CandidatureState.EN_ATTENTE_AVIS


@pytest.mark.parametrize("days_after_late_entry,cancelled", [(-1, True), (0, True), (1, False)])
def test_cancel_is_refused_after_the_late_entry_date(client, days_after_late_entry, cancelled):
    with clock.frozen(MONDAY_10):
        prescriber = f.create_prescriber("prescripteur_n2")
        session = open_session(date_entree_tardive=clock.today()
                               - dt.timedelta(days=days_after_late_entry))
        candidature = f.create_candidature(
            session=session, prescriber_user=prescriber,
            prescriber_structure=prescriber.memberships[0].structure)
        db.session.commit()
        login(client, prescriber)
        confirm = client.get(f"/prescription/candidatures/{candidature.id}/annuler")
        assert "l'annulation d'une candidature est définitive" in confirm.text
        response = client.post(f"/prescription/candidatures/{candidature.id}/annuler",
                               data={"csrf_token": csrf_token(confirm.text)},
                               follow_redirects=True)
        db.session.refresh(candidature)
        if cancelled:
            assert candidature.state == CandidatureState.ANNULEE
            assert "La candidature est annulée." in response.text
        else:
            assert candidature.state == CandidatureState.EN_ATTENTE_AVIS
            assert "ne peut plus être annulée" in response.text


def test_another_structures_candidature_is_invisible(client):
    with clock.frozen(MONDAY_10):
        mine = f.create_prescriber("prescripteur_n3")
        theirs = f.create_candidature()
        db.session.commit()
        login(client, mine)
        assert client.get(f"/prescription/candidatures/{theirs.id}").status_code == 404
        assert client.get(f"/prescription/candidatures/{theirs.id}/annuler").status_code == 404
        listing = client.get("/prescription/candidatures?onglet=attente_avis")
        assert theirs.reference not in listing.text
        page = client.get("/prescription/candidatures")
        response = client.post(f"/prescription/candidatures/{theirs.id}/annuler",
                               data={"csrf_token": csrf_token(page.text)})
        assert response.status_code == 404


def test_posts_without_csrf_are_refused(client):
    with clock.frozen(MONDAY_10):
        prescriber = f.create_prescriber("prescripteur_n2")
        session, candidate = open_session(), f.create_candidate()
        db.session.commit()
        login(client, prescriber)
        response = client.post(candidature_url(session, candidate),
                               data={"action": "valider", "consentement": "y"})
        assert response.status_code in (400, 422)
        assert candidatures_of(candidate) == []


def test_management_tabs_count_and_filter(client):
    with clock.frozen(MONDAY_10):
        prescriber = f.create_prescriber("prescripteur_n2")
        structure = prescriber.memberships[0].structure
        others = [f.create_candidature(state=state, prescriber_user=prescriber,
                                       prescriber_structure=structure)
                  for state in ("en_attente_avis", "en_attente_avis", "retenue", "annulee")]
        target = f.create_candidature(prescriber_user=prescriber, prescriber_structure=structure,
                                      candidate=f.create_candidate(nom="Zébulon"))
        db.session.commit()
        login(client, prescriber)
        page = client.get("/prescription/candidatures?onglet=attente_avis")
        assert re.search(r'data-onglet="attente_avis">3<', page.text)
        assert re.search(r'data-onglet="retenues">1<', page.text)
        filtered = client.get("/prescription/candidatures?onglet=attente_avis&q=zebulon")
        assert target.reference in filtered.text
        assert not any(other.reference in filtered.text for other in others)
        assert "1 candidature." in filtered.text


def test_search_page_for_prescribers(client):
    with clock.frozen(MONDAY_10):
        prescriber = f.create_prescriber("prescripteur_n2")
        session = open_session(reference="00254068")
        db.session.commit()
        login(client, prescriber)
        page = client.get("/prescription/recherche?q=propreté")
        assert page.status_code == 200 and "00254068" in page.text
        assert f"/prescription/sessions/{session.id}/ajouter" in page.text
        too_many = client.get("/prescription/recherche?" + "&".join(
            f"departement={d}" for d in ("16", "17", "19", "23", "24", "33")))
        assert too_many.status_code == 400
        assert "Choisissez au plus 5 départements" in too_many.text


def test_non_prescribers_cannot_use_the_prescription_pages(client):
    with clock.frozen(MONDAY_10):
        of_user = f.create_of_manager(f.create_structure())
        db.session.commit()
        login(client, of_user)
        assert client.get("/prescription/recherche").status_code == 403
        assert client.get("/prescription/candidatures").status_code == 403


def test_submitted_region_funded_candidature_goes_to_the_hub(client):
    with clock.frozen(MONDAY_10):
        prescriber = f.create_prescriber("prescripteur_n2")
        session = open_session("conventionne_region")
        candidate = f.create_candidate(inscrit_france_travail=True,
                                       identifiant_france_travail="7654321B")
        db.session.commit()
        login(client, prescriber)
        assert post_candidature(client, session, candidate).status_code == 302
        message = db.session.scalar(select(OutboundMessage).where(
            OutboundMessage.channel == Channel.HUB))
        assert message.payload["evenement"] == "soumettre"
        assert message.payload["candidat"]["identifiant_france_travail"] == "7654321B"
        assert "nir" not in str(message.payload).lower()
