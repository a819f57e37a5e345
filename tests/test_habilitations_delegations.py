"""Habilitations (activation code, access request, accept) and delegation to a third party
accepted through the e-mailed link; search by SIRET with the tiers filter."""
from __future__ import annotations

import re

from flask import g
from sqlalchemy import select

from backoffice import siret
from backoffice.models import (Delegation, DelegationState, Habilitation, HabilitationState,
                               OutboundMessage)
from backoffice.services import accounts as service
from tests import factories
from tests.conftest import csrf_token, delivered_text, login

SIRET = siret.make(55555555)
SIRET_TIERS = siret.make(66666666)


def _fresh(app):
    for key in ("_login_user", "membership", "csrf_token"):
        g.pop(key, None)
    return app.test_client()


def test_code_access_request_and_delegation(app, client, db):
    manager = factories.create_user()
    declarant = factories.create_user()
    tiers = factories.create_user(email="tiers@exemple.fr")
    code = service.issue_habilitation_code(SIRET)
    db.session.commit()

    login(client, manager)
    token = csrf_token(client.get("/habilitations/").text)
    response = client.post("/habilitations/activer", data={
        "csrf_token": token, "code-siret": SIRET, "code-code": "mauvais"}, follow_redirects=True)
    assert "pas valide" in response.text
    client.post("/habilitations/activer", data={
        "csrf_token": token, "code-siret": SIRET, "code-code": code})
    assert service.gestionnaire_sirets(manager) == [SIRET]
    reused = client.post("/habilitations/activer", data={
        "csrf_token": token, "code-siret": SIRET, "code-code": code}, follow_redirects=True)
    assert "déjà été utilisé" in reused.text

    other = _fresh(app)
    login(other, declarant)
    other.post("/habilitations/demander", data={
        "csrf_token": csrf_token(other.get("/habilitations/").text), "acces-siret": SIRET,
        "acces-role": "declarant"})
    request_obj = db.session.scalar(select(Habilitation).where(Habilitation.user_id == declarant.id))
    assert request_obj.state == HabilitationState.DEMANDEE
    # the declarant cannot accept their own request
    assert other.post(f"/habilitations/{request_obj.id}/accepter", data={
        "csrf_token": csrf_token(other.get("/habilitations/").text)}).status_code == 403

    client = _fresh(app)
    login(client, manager)
    token = csrf_token(client.get("/habilitations/").text)
    client.post(f"/habilitations/{request_obj.id}/accepter", data={"csrf_token": token})
    db.session.expire_all()
    assert request_obj.state == HabilitationState.ACTIVE

    client.post("/habilitations/delegations", data={
        "csrf_token": token, "delegation-siret_etablissement": SIRET,
        "delegation-siret_tiers": SIRET_TIERS, "delegation-email_tiers": "tiers@exemple.fr",
        "delegation-role": "declarant", "delegation-end_date": "2099-12-31"})
    delegation = db.session.scalar(select(Delegation))
    assert delegation.state == DelegationState.PROPOSEE
    mail = db.session.scalar(select(OutboundMessage).where(
        OutboundMessage.recipient == "tiers@exemple.fr"))
    link = re.search(r"http://[^/\s]+(/delegations/accepter/\S+)", delivered_text(mail)).group(1)

    assert client.get(link).status_code == 403  # the manager is not the third party
    third = _fresh(app)
    login(third, tiers)
    page = third.get(link)
    third.post(link, data={"csrf_token": csrf_token(page.text), "decision": "accepter"})
    db.session.expire_all()
    assert delegation.state == DelegationState.ACTIVE and delegation.accepted_by_id == tiers.id
    assert third.get(link).status_code == 400  # reused link

    client = _fresh(app)
    login(client, manager)
    page = client.get("/habilitations/", query_string={"q": SIRET, "tiers": "oui"})
    assert "tiers@exemple.fr" in page.text and declarant.email not in page.text
    page = client.get("/habilitations/", query_string={"q": declarant.nom, "tiers": "non"})
    assert declarant.email in page.text

    client.post(f"/habilitations/delegations/{delegation.id}/revoquer",
                data={"csrf_token": csrf_token(page.text)})
    db.session.expire_all()
    assert delegation.state == DelegationState.REVOQUEE
