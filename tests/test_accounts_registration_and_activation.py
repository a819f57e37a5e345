"""Registration, activation link (48 h, single use), « Compte en cours de validation »,
forgotten password (1 h link, same answer, other sessions ended)."""
from __future__ import annotations

import datetime as dt
import re

from flask import g
from sqlalchemy import select

from backoffice import clock
from backoffice.models import (AccountRequest, Membership, OutboundMessage, ReferencingRequest,
                               StaffRole, StructureKind, User, UserState)
from tests import factories
from tests.conftest import csrf_token, delivered_text, login

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
NEW_PASSWORD = "trois chevaux dans la lande"


def other_client(app):
    """A new browser; the test's app context shares ``g`` between requests, so the
    user cached by Flask-Login there is dropped."""
    for key in ("_login_user", "membership", "csrf_token"):
        g.pop(key, None)
    return app.test_client()


def _link(db, recipient, path):
    message = db.session.scalars(select(OutboundMessage).where(
        OutboundMessage.recipient == recipient).order_by(OutboundMessage.id.desc())).first()
    assert message is not None, "no e-mail"
    return re.search(rf"http://[^/\s]+(/{path}/[^\s]+)", delivered_text(message)).group(1)


def _registration_data(page_html, **overrides):
    data = {"csrf_token": csrf_token(page_html), "structure_recherche": "Mission locale",
            "kind": "prescripteur", "prescriber_type": "mission_locale",
            "email": "Claire.Martin@ml.fr", "mot_de_passe": NEW_PASSWORD,
            "mot_de_passe_confirmation": NEW_PASSWORD, "nom": "Martin", "prenom": "Claire",
            "consentement": "oui"}
    data.update(overrides)
    return data


def _register(client, db, structure, **overrides):
    page = client.get(f"/inscription?structure_id={structure.id}")
    assert page.status_code == 200
    return client.post(f"/inscription?structure_id={structure.id}",
                       data=_registration_data(page.text, **overrides))


def test_structure_found_by_name_sigle_or_siret(client, db):
    structure = factories.create_structure(raison_sociale="Mission locale des Graves",
                                           sigle="MLG", kind=StructureKind.PRESCRIPTEUR)
    db.session.commit()
    for query in ("graves", "MLG", structure.siret):
        page = client.get("/inscription", query_string={"q": query})
        assert "Mission locale des Graves" in page.text
    page = client.get("/inscription", query_string={"q": "inconnue"})
    assert "Ma structure n'est pas dans la liste" in page.text


def test_registration_activation_then_moderator_makes_first_account_referent(app, client, db):
    clock.set_now(T0)
    structure = factories.create_structure(kind=StructureKind.PRESCRIPTEUR,
                                           prescriber_type="mission_locale")
    moderator = factories.create_staff(StaffRole.MODERATEUR)
    db.session.commit()
    page = client.get(f"/inscription?structure_id={structure.id}")
    assert "protection des données" in page.text.lower()
    response = _register(client, db, structure)
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "claire.martin@ml.fr"))
    assert user.state == UserState.A_ACTIVER
    assert db.session.scalar(select(AccountRequest).where(AccountRequest.user_id == user.id))

    link = _link(db, user.email, "activation")
    clock.set_now(T0 + dt.timedelta(hours=47))
    page = client.get(link)
    assert "Compte en cours de validation" in page.text
    db.session.refresh(user)
    assert user.state == UserState.EN_ATTENTE_VALIDATION
    reused = client.get(link)
    assert reused.status_code == 400 and "déjà été utilisé" in reused.text

    # limited access while waiting
    login(client, user, NEW_PASSWORD)
    assert client.get("/mes-structures").headers["Location"].endswith("/compte-en-attente")

    client = other_client(app)
    r = login(client, moderator)
    assert r.status_code == 302, r.text
    page = client.get("/moderation/premiers-comptes")
    request_obj = db.session.scalar(select(AccountRequest))
    response = client.post(f"/moderation/premiers-comptes/{request_obj.id}", data={
        "csrf_token": csrf_token(page.text), f"d{request_obj.id}-decision": "valider",
        f"d{request_obj.id}-profile_prescripteur": "prescripteur_n3"})
    assert response.status_code == 302
    db.session.expire_all()
    assert user.state == UserState.ACTIF
    membership = db.session.scalar(select(Membership).where(Membership.user_id == user.id))
    assert membership.is_referent and membership.profile_prescripteur == "prescripteur_n3"
    assert db.session.scalar(select(OutboundMessage).where(
        OutboundMessage.recipient == user.email, OutboundMessage.subject.like("%Valider%")))


def test_activation_link_expires_after_48_hours(client, db):
    clock.set_now(T0)
    structure = factories.create_structure()
    db.session.commit()
    _register(client, db, structure)
    link = _link(db, "claire.martin@ml.fr", "activation")
    clock.set_now(T0 + dt.timedelta(hours=48, minutes=1))
    response = client.get(link)
    assert response.status_code == 400 and "expiré" in response.text


def test_registration_errors_in_french(client, db):
    structure = factories.create_structure()
    db.session.commit()
    response = _register(client, db, structure, mot_de_passe="azertyuiop12",
                         mot_de_passe_confirmation="autre chose", consentement="")
    assert response.status_code == 200
    assert "Le formulaire contient" in response.text
    assert "trop courant" in response.text
    assert "Vous devez accepter le traitement" in response.text
    assert db.session.scalar(select(User)) is None


def test_existing_address_gets_the_same_answer(client, db):
    structure = factories.create_structure()
    existing = factories.create_user(email="claire.martin@ml.fr")
    db.session.commit()
    response = _register(client, db, structure)
    assert response.status_code == 302 and response.headers["Location"].endswith("/inscription/envoyee")
    assert db.session.scalar(select(AccountRequest)) is None
    assert db.session.scalar(select(OutboundMessage).where(
        OutboundMessage.recipient == existing.email))


def test_structure_not_listed_files_a_referencing_request(client, db):
    page = client.get("/inscription?nouvelle=1")
    data = _registration_data(page.text, structure_recherche="ML Test",
                              **{"ref-raison_sociale": "Mission locale Test",
                                 "ref-siret": "12345678901234"})
    response = client.post("/inscription?nouvelle=1", data=data)
    assert "pas valide" in response.text  # bad Luhn key
    data["ref-siret"] = factories.siret.make(77777777)
    response = client.post("/inscription?nouvelle=1", data=data)
    assert response.status_code == 302
    request_obj = db.session.scalar(select(ReferencingRequest))
    assert request_obj.raison_sociale == "Mission locale Test"
    assert request_obj.kind == "prescripteur" and request_obj.requester.email == "claire.martin@ml.fr"


def test_forgotten_password_same_answer_and_reset_ends_other_sessions(app, client, db):
    clock.set_now(T0)
    user = factories.create_user(email="paul@exemple.fr")
    db.session.commit()
    other_browser = other_client(app)
    login(other_browser, user)
    assert other_browser.get("/mon-compte").status_code == 200

    client = other_client(app)
    answers = []
    for email in ("paul@exemple.fr", "personne@exemple.fr"):
        page = client.get("/mot-de-passe-oublie")
        response = client.post("/mot-de-passe-oublie", data={
            "email": email, "csrf_token": csrf_token(page.text)}, follow_redirects=True)
        answers.append(response.text.split('role="alert">')[1].split("<")[0])
    assert answers[0] == answers[1]
    assert db.session.scalar(select(OutboundMessage).where(
        OutboundMessage.recipient == "personne@exemple.fr")) is None

    link = _link(db, "paul@exemple.fr", "reinitialisation")
    page = client.get(link)
    response = client.post(link, data={"password": "court", "confirmation": "court",
                                       "csrf_token": csrf_token(page.text)})
    assert "12 caractères" in response.text
    response = client.post(link, data={"password": NEW_PASSWORD, "confirmation": NEW_PASSWORD,
                                       "csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    assert client.get(link).status_code == 400  # single use
    other_client(app)
    assert other_browser.get("/mon-compte").status_code == 302  # session ended
    assert login(client, user, NEW_PASSWORD).status_code == 302


def test_reset_link_expires_after_one_hour(client, db):
    clock.set_now(T0)
    factories.create_user(email="paul@exemple.fr")
    db.session.commit()
    page = client.get("/mot-de-passe-oublie")
    client.post("/mot-de-passe-oublie", data={"email": "paul@exemple.fr",
                                              "csrf_token": csrf_token(page.text)})
    link = _link(db, "paul@exemple.fr", "reinitialisation")
    clock.set_now(T0 + dt.timedelta(minutes=61))
    response = client.get(link)
    assert response.status_code == 400 and "expiré" in response.text
