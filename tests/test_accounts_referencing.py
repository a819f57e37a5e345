"""« Ma structure n'est pas dans la liste »: the moderator validates the referencing request,
which creates the structure (SIRET unique) and attaches the requester's account request to
it; the first account then becomes the structure's référent. Refusals need a reason."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from backoffice import clock
from backoffice.models import (AccountRequest, Membership, OutboundMessage, ReferencingRequest,
                               RequestState, StaffRole, Structure, User, UserState)
from backoffice.workflow import history
from tests import factories
from tests.conftest import csrf_token, login
from tests.test_accounts_registration_and_activation import (_link, _registration_data,
                                                             other_client)

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
NEW_PASSWORD = "trois chevaux dans la lande"


def _decide(client, request_obj, decision, reason=""):
    page = client.get("/moderation/referencements")
    assert page.status_code == 200
    return client.post(f"/moderation/referencements/{request_obj.id}", data={
        "csrf_token": csrf_token(page.text), f"r{request_obj.id}-decision": decision,
        f"r{request_obj.id}-reason": reason}, follow_redirects=True)


def test_registration_with_a_new_structure_up_to_its_first_referent(app, client, db):
    clock.set_now(T0)
    moderator = factories.create_staff(StaffRole.MODERATEUR)
    db.session.commit()
    siret = factories.siret.make(77777777)
    page = client.get("/inscription?nouvelle=1")
    response = client.post("/inscription?nouvelle=1", data=_registration_data(
        page.text, structure_recherche="ML Test", **{
            "ref-raison_sociale": "Mission locale du Test", "ref-sigle": "MLT",
            "ref-siret": siret, "ref-adresse": "1 place de la Mairie",
            "ref-code_postal": "40100", "ref-commune_nom": "Dax"}))
    assert response.status_code == 302
    client.get(_link(db, "claire.martin@ml.fr", "activation"))
    user = db.session.scalar(select(User).where(User.email == "claire.martin@ml.fr"))
    assert user.state == UserState.EN_ATTENTE_VALIDATION

    client = other_client(app)
    login(client, moderator)
    page = client.get("/moderation/referencements")
    assert "Mission locale du Test" in page.text and "claire.martin@ml.fr" in page.text
    request_obj = db.session.scalar(select(ReferencingRequest))
    response = _decide(client, request_obj, "valider")
    assert "La structure Mission locale du Test" in response.text
    db.session.expire_all()
    assert request_obj.state == RequestState.VALIDEE and request_obj.decided_by_id == moderator.id
    structure = db.session.scalar(select(Structure).where(Structure.siret == siret))
    assert structure is not None and request_obj.structure_id == structure.id
    assert (structure.raison_sociale, structure.sigle, structure.siren, structure.kind,
            structure.prescriber_type, structure.code_postal, structure.departement) == (
        "Mission locale du Test", "MLT", siret[:9], "prescripteur", "mission_locale", "40100",
        "40")
    assert [log.transition for log in history(request_obj)] == ["valider"]
    assert db.session.scalar(select(OutboundMessage).where(
        OutboundMessage.recipient == user.email,
        OutboundMessage.subject.like("%Référencer la structure%")))
    assert "Aucune demande de référencement" in client.get("/moderation/referencements").text

    # the requester's account request now waits on the first-accounts page
    account_request = db.session.scalar(select(AccountRequest).where(
        AccountRequest.user_id == user.id))
    assert account_request.structure_id == structure.id
    assert account_request.state == RequestState.EN_ATTENTE
    page = client.get("/moderation/premiers-comptes")
    assert "claire.martin@ml.fr" in page.text
    client.post(f"/moderation/premiers-comptes/{account_request.id}", data={
        "csrf_token": csrf_token(page.text), f"d{account_request.id}-decision": "valider",
        f"d{account_request.id}-profile_prescripteur": "prescripteur_n3"})
    db.session.expire_all()
    assert user.state == UserState.ACTIF
    membership = db.session.scalar(select(Membership).where(Membership.user_id == user.id))
    assert membership.structure_id == structure.id and membership.is_referent


def test_existing_siret_refused_with_a_french_message(client, db):
    structure = factories.create_structure(raison_sociale="Organisme déjà là")
    requester = factories.create_user(state=UserState.EN_ATTENTE_VALIDATION)
    request_obj = factories.create_referencing_request(requester, siret=structure.siret)
    moderator = factories.create_staff(StaffRole.MODERATEUR)
    db.session.commit()
    login(client, moderator)
    assert "Une structure avec ce SIRET existe déjà" in client.get(
        "/moderation/referencements").text
    response = _decide(client, request_obj, "valider")
    assert f"Une structure avec le SIRET {structure.siret} existe déjà" in response.text
    db.session.expire_all()
    assert request_obj.state == RequestState.EN_ATTENTE and request_obj.structure_id is None
    assert db.session.scalar(select(func.count(Structure.id))) == 1
    assert db.session.scalar(select(AccountRequest)) is None


def test_refusal_needs_a_reason_and_refuses_the_account_without_structure(client, db):
    requester = factories.create_user(state=UserState.EN_ATTENTE_VALIDATION)
    request_obj = factories.create_referencing_request(requester)
    moderator = factories.create_staff(StaffRole.MODERATEUR)
    db.session.commit()
    login(client, moderator)
    response = _decide(client, request_obj, "refuser")
    assert "motif du refus" in response.text
    db.session.expire_all()
    assert request_obj.state == RequestState.EN_ATTENTE
    _decide(client, request_obj, "refuser", "Structure hors région")
    db.session.expire_all()
    assert request_obj.state == RequestState.REFUSEE
    assert request_obj.decision_comment == "Structure hors région"
    assert requester.state == UserState.REFUSE
    assert db.session.scalar(select(Structure)) is None
    mails = list(db.session.scalars(select(OutboundMessage).where(
        OutboundMessage.recipient == requester.email)))
    assert mails and all("Structure hors région" in m.body_text for m in mails)


def test_only_moderators_and_admins_decide(app, client, db):
    request_obj = factories.create_referencing_request(factories.create_user(
        state=UserState.EN_ATTENTE_VALIDATION))
    referent = factories.create_referent()
    rules_owner = factories.create_staff(StaffRole.RESPONSABLE_REGLES)
    admin = factories.create_staff(StaffRole.ADMIN)
    db.session.commit()
    for user in (referent, rules_owner):
        client = other_client(app)
        login(client, user)
        assert client.get("/moderation/referencements").status_code == 403
        token = csrf_token(client.get("/mes-structures?q=zz").text)
        assert client.post(f"/moderation/referencements/{request_obj.id}", data={
            "csrf_token": token, f"r{request_obj.id}-decision": "valider"}).status_code == 403
    client = other_client(app)
    login(client, admin)
    _decide(client, request_obj, "valider")
    db.session.expire_all()
    assert request_obj.state == RequestState.VALIDEE and request_obj.structure is not None
