"""The OF gives its avis on the candidatures received on its sessions, one by one or in
bulk; each avis e-mails the prescriber (and the candidate when asked) and, on
region-funded offer for a candidate registered at France Travail, goes to the hub."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from backoffice import clock
from backoffice.extensions import db
from backoffice.models import (CandidatureState, Channel, FollowUpStep, FormationState,
                               OutboundMessage)
from tests import factories as f
from tests.conftest import csrf_token, login

MONDAY_10 = dt.datetime(2026, 3, 9, 10, 0, tzinfo=clock.PARIS)


@pytest.fixture(autouse=True)
def frozen():
    with clock.frozen(MONDAY_10):
        yield


@pytest.fixture
def of_setup():
    of = f.create_structure(raison_sociale="AFPA Aquitaine")
    formation = f.create_formation(structure=of, state=FormationState.VALIDEE)
    session = f.create_published_session(formation, places=1)
    manager = f.create_of_manager(of, "gestionnaire_of_preinscription")
    return of, session, manager


def test_the_of_sees_its_candidatures_and_gives_an_avis(client, of_setup):
    of, session, manager = of_setup
    candidature = f.create_candidature(session=session, envoi_recapitulatif=True,
                                       candidate=f.create_candidate(
                                           email="candidat@exemple.fr",
                                           inscrit_france_travail=True))
    db.session.commit()
    login(client, manager)
    listing = client.get("/candidatures-of/")
    assert candidature.reference in listing.text
    page = client.get(f"/candidatures-of/{candidature.id}")
    assert "Date d'entrée tardive" in page.text
    response = client.post(f"/candidatures-of/{candidature.id}/avis", data={
        "csrf_token": csrf_token(page.text), "avis": "retenue"}, follow_redirects=True)
    assert "Avis enregistré : Retenue." in response.text
    db.session.refresh(candidature)
    assert candidature.state == CandidatureState.RETENUE
    assert candidature.avis_by_id == manager.id
    recipients = set(db.session.scalars(select(OutboundMessage.recipient).where(
        OutboundMessage.channel == Channel.EMAIL)))
    assert {candidature.prescriber_user.email, "candidat@exemple.fr"} <= recipients
    hub = db.session.scalar(select(OutboundMessage).where(OutboundMessage.channel == Channel.HUB))
    assert hub.payload["evenement"] == "retenir"


def test_non_retenue_needs_a_motif(client, of_setup):
    of, session, manager = of_setup
    candidature = f.create_candidature(session=session)
    db.session.commit()
    login(client, manager)
    page = client.get(f"/candidatures-of/{candidature.id}")
    refused = client.post(f"/candidatures-of/{candidature.id}/avis", data={
        "csrf_token": csrf_token(page.text), "avis": "non_retenue"}, follow_redirects=True)
    assert "Un motif est obligatoire" in refused.text
    client.post(f"/candidatures-of/{candidature.id}/avis", data={
        "csrf_token": csrf_token(page.text), "avis": "non_retenue", "motif": "Prérequis absents"})
    db.session.refresh(candidature)
    assert candidature.state == CandidatureState.NON_RETENUE
    assert candidature.avis_motif == "Prérequis absents"


def test_bulk_avis_never_retains_more_than_the_places(client, of_setup):
    """Two candidatures, one place: the bulk « retenue » keeps one, refuses the other with
    a message, in one action."""
    of, session, manager = of_setup
    first = f.create_candidature(session=session)
    second = f.create_candidature(session=session)
    db.session.commit()
    login(client, manager)
    listing = client.get("/candidatures-of/")
    response = client.post("/candidatures-of/avis-groupe", data={
        "csrf_token": csrf_token(listing.text), "avis": "retenue",
        "ids": [str(first.id), str(second.id)]}, follow_redirects=True)
    assert "1 avis enregistré(s)." in response.text
    assert "Plus de place sur la session" in response.text
    db.session.refresh(first)
    db.session.refresh(second)
    assert [first.state, second.state] == [CandidatureState.RETENUE,
                                           CandidatureState.EN_ATTENTE_AVIS]


def test_bulk_refusal_session_annulee(client, of_setup):
    of, session, manager = of_setup
    items = [f.create_candidature(session=session) for _ in range(3)]
    db.session.commit()
    login(client, manager)
    listing = client.get("/candidatures-of/")
    client.post("/candidatures-of/avis-groupe", data={
        "csrf_token": csrf_token(listing.text), "avis": "refus_session_annulee",
        "ids": [str(c.id) for c in items]})
    for candidature in items:
        db.session.refresh(candidature)
        assert candidature.state == CandidatureState.REFUS_SESSION_ANNULEE
    tab = client.get("/candidatures-of/?onglet=refus_annulee")
    assert all(c.reference in tab.text for c in items)


def test_follow_up_step(client, of_setup):
    of, session, manager = of_setup
    candidature = f.create_candidature(session=session)
    db.session.commit()
    login(client, manager)
    page = client.get(f"/candidatures-of/{candidature.id}")
    client.post(f"/candidatures-of/{candidature.id}/suivi", data={
        "csrf_token": csrf_token(page.text), "etape": FollowUpStep.ENTRETIEN.value})
    db.session.refresh(candidature)
    assert candidature.etape_suivi == FollowUpStep.ENTRETIEN


def test_another_ofs_candidatures_are_invisible(client, of_setup):
    of, session, manager = of_setup
    other = f.create_candidature()  # on another OF's session
    draft = f.create_candidature(session=session, state=CandidatureState.BROUILLON)
    db.session.commit()
    login(client, manager)
    assert client.get(f"/candidatures-of/{other.id}").status_code == 404
    assert client.get(f"/candidatures-of/{draft.id}").status_code == 404
    listing = client.get("/candidatures-of/")
    assert other.reference not in listing.text
    response = client.post("/candidatures-of/avis-groupe", data={
        "csrf_token": csrf_token(listing.text), "avis": "retenue", "ids": [str(other.id)]})
    assert response.status_code == 404
    db.session.refresh(other)
    assert other.state == CandidatureState.EN_ATTENTE_AVIS


def test_catalogue_only_managers_and_prescribers_have_no_access(client, of_setup):
    of, session, manager = of_setup
    catalogue = f.create_of_manager(of, "gestionnaire_of_catalogue")
    db.session.commit()
    login(client, catalogue)
    assert client.get("/candidatures-of/").status_code == 403


def test_hub_messages_of_an_avis_are_visible_in_the_admin_with_their_status(app, client,
                                                                             of_setup):
    """The avis on a region-funded candidature of a France Travail candidate is queued for
    the hub; the admin lists it with its status."""
    from flask import g

    of, session, manager = of_setup
    candidature = f.create_candidature(session=session, candidate=f.create_candidate(
        inscrit_france_travail=True, identifiant_france_travail="1111111A"))
    admin = f.create_staff("admin")
    db.session.commit()
    login(client, manager)
    page = client.get(f"/candidatures-of/{candidature.id}")
    client.post(f"/candidatures-of/{candidature.id}/avis", data={
        "csrf_token": csrf_token(page.text), "avis": "refus_session_complete"})
    hub = db.session.scalar(select(OutboundMessage).where(OutboundMessage.channel == Channel.HUB))
    assert hub.payload["evenement"] == "refuser_session_complete"
    assert hub.payload["reference"] == candidature.reference

    for key in ("_login_user", "membership", "csrf_token"):
        g.pop(key, None)
    staff = app.test_client()
    login(staff, admin)
    listing = staff.get("/admin/outboundmessage/")
    assert listing.status_code == 200
    assert "refuser_session_complete" in listing.text or "candidature" in listing.text
    assert "En attente" in listing.text or "en_attente" in listing.text
