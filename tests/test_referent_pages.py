"""Référent pages: pending requests, rights, detach (never oneself, last référent kept), CSV."""
from __future__ import annotations

from sqlalchemy import select

from backoffice.models import AccountRequest, Membership, OutboundMessage, UserState
from tests import factories
from tests.conftest import csrf_token, login


def _setup(db):
    structure = factories.create_structure()
    referent = factories.create_member(structure, is_referent=True)
    newcomer = factories.create_user(state=UserState.EN_ATTENTE_VALIDATION)
    request_obj = AccountRequest(user=newcomer, structure=structure)
    db.session.add(request_obj)
    db.session.commit()
    return structure, referent, newcomer, request_obj


def test_referent_validates_an_account_with_one_profile_per_family(client, db):
    structure, referent, newcomer, request_obj = _setup(db)
    login(client, referent)
    page = client.get("/referent/")
    assert newcomer.email in page.text
    response = client.post(f"/referent/demandes/compte/{request_obj.id}", data={
        "csrf_token": csrf_token(page.text), f"d{request_obj.id}-decision": "valider",
        f"d{request_obj.id}-profile_of": "gestionnaire_of_catalogue"})
    assert response.status_code == 302
    db.session.expire_all()
    assert newcomer.state == UserState.ACTIF
    membership = db.session.scalar(select(Membership).where(Membership.user_id == newcomer.id))
    assert membership.profile_of == "gestionnaire_of_catalogue" and not membership.is_referent
    assert db.session.scalar(select(OutboundMessage).where(
        OutboundMessage.recipient == newcomer.email))


def test_refusal_needs_a_reason_and_emails_the_requester(client, db):
    structure, referent, newcomer, request_obj = _setup(db)
    login(client, referent)
    page = client.get("/referent/")
    data = {"csrf_token": csrf_token(page.text), f"d{request_obj.id}-decision": "refuser"}
    response = client.post(f"/referent/demandes/compte/{request_obj.id}", data=data,
                           follow_redirects=True)
    assert "motif du refus" in response.text
    data[f"d{request_obj.id}-reason"] = "Inconnu dans nos services"
    client.post(f"/referent/demandes/compte/{request_obj.id}", data=data)
    db.session.expire_all()
    assert newcomer.state == UserState.REFUSE
    assert "Inconnu" in db.session.scalars(select(OutboundMessage).where(
        OutboundMessage.recipient == newcomer.email)).first().body_text


def test_referent_of_another_structure_gets_403(client, db):
    _, _, _, request_obj = _setup(db)
    other_referent = factories.create_member(is_referent=True)
    member = db.session.scalar(select(Membership).where(Membership.is_referent.is_(True)))
    db.session.commit()
    login(client, other_referent)
    page = client.get("/referent/")
    token = csrf_token(page.text)
    assert client.post(f"/referent/demandes/compte/{request_obj.id}", data={
        "csrf_token": token, f"d{request_obj.id}-decision": "valider"}).status_code == 403
    assert client.post(f"/referent/utilisateurs/{member.id}/detacher",
                       data={"csrf_token": token}).status_code == 403
    assert client.get(f"/referent/utilisateurs/{member.id}/droits").status_code == 403


def test_non_referent_gets_403(client, db):
    user = factories.create_member()
    db.session.commit()
    login(client, user)
    assert client.get("/referent/").status_code == 403


def test_detach_self_refused_last_referent_kept_others_detached(client, db):
    structure, referent, _, _ = _setup(db)
    colleague = factories.create_member(structure, profile_of="gestionnaire_of_general")
    mine = db.session.scalar(select(Membership).where(Membership.user_id == referent.id))
    theirs = db.session.scalar(select(Membership).where(Membership.user_id == colleague.id))
    db.session.commit()
    login(client, referent)
    token = csrf_token(client.get("/referent/").text)
    response = client.post(f"/referent/utilisateurs/{mine.id}/detacher",
                           data={"csrf_token": token}, follow_redirects=True)
    assert "vous détacher vous-même" in response.text
    response = client.post(f"/referent/utilisateurs/{mine.id}/droits",
                           data={"csrf_token": token, "profile_of": ""}, follow_redirects=True)
    assert "au moins un référent" in response.text
    assert db.session.get(Membership, mine.id).is_referent
    client.post(f"/referent/utilisateurs/{theirs.id}/detacher", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(Membership, theirs.id) is None


def test_rights_changed_and_csv_export(client, db):
    structure, referent, _, _ = _setup(db)
    colleague = factories.create_member(structure)
    theirs = db.session.scalar(select(Membership).where(Membership.user_id == colleague.id))
    db.session.commit()
    login(client, referent)
    assert "Aucun droit" in client.get("/referent/").text
    page = client.get(f"/referent/utilisateurs/{theirs.id}/droits")
    client.post(f"/referent/utilisateurs/{theirs.id}/droits", data={
        "csrf_token": csrf_token(page.text), "profile_of": "gestionnaire_of_general",
        "profile_parcourspro": "prestataire"})
    db.session.expire_all()
    assert theirs.profile_of == "gestionnaire_of_general" and theirs.beneficiaire
    export = client.get("/referent/utilisateurs.csv")
    assert export.mimetype == "text/csv" and colleague.email in export.text
