"""Mon compte (contact details, password change ending the other sessions, e-mail change
confirmed by a link sent to the new address) and Mes structures (affiliation requests
decided by the target structure's référent, switching the active structure)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from backoffice import clock
from backoffice.models import (AffiliationRequest, Membership, OutboundMessage, RequestState,
                               StructureKind)
from tests import factories
from tests.conftest import csrf_token, login
from tests.test_accounts_registration_and_activation import _link, other_client

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
NEW_PASSWORD = "trois chevaux dans la lande"


def _member(structure=None, **user_fields):
    """An active user of ``structure`` with the given user columns."""
    user = factories.create_user(**user_fields)
    factories._save(Membership(user=user, structure=structure or factories.create_structure()))
    return user


def _account_post(client, action: str, prefix: str, **fields):
    page = client.get("/mon-compte")
    assert page.status_code == 200
    data = {"action": action, f"{prefix}-csrf_token": csrf_token(page.text)}
    data.update({f"{prefix}-{name}": value for name, value in fields.items()})
    return client.post("/mon-compte", data=data, follow_redirects=True)


# -- Mon compte ---------------------------------------------------------------------------------
def test_contact_details_are_edited_and_checked(client, db):
    with clock.frozen(T0):
        user = _member(fonction="Conseillère")
        db.session.commit()
        login(client, user)
        response = _account_post(client, "profil", "profil", nom="Durand", prenom="Anne",
                                 fonction="Chargée d'accueil", telephone="12345")
        assert "Numéro de téléphone non valide" in response.text
        db.session.expire_all()
        assert user.nom != "Durand"

        response = _account_post(client, "profil", "profil", nom="Durand", prenom="Anne",
                                 fonction="Chargée d'accueil", telephone="0556000000")
        assert "Vos coordonnées sont enregistrées" in response.text
        db.session.expire_all()
        assert (user.nom, user.prenom, user.fonction, user.telephone) == (
            "Durand", "Anne", "Chargée d'accueil", "05 56 00 00 00")

        _account_post(client, "profil", "profil", nom="Durand", prenom="Anne", fonction="",
                      telephone="")
        db.session.expire_all()
        assert user.fonction is None and user.telephone is None


def test_password_change_needs_the_current_one_and_ends_other_sessions(app, client, db):
    with clock.frozen(T0):
        user = factories.create_member()
        db.session.commit()
        other_browser = other_client(app)
        login(other_browser, user)
        assert other_browser.get("/mon-compte").status_code == 200

        client = other_client(app)
        login(client, user)
        wrong = _account_post(client, "mot_de_passe", "mdp", current="pas le bon mot de passe",
                              password=NEW_PASSWORD, confirmation=NEW_PASSWORD)
        assert "Mot de passe actuel incorrect" in wrong.text
        weak = _account_post(client, "mot_de_passe", "mdp", current=factories.PASSWORD,
                             password="court", confirmation="court")
        assert "12 caractères" in weak.text
        response = _account_post(client, "mot_de_passe", "mdp", current=factories.PASSWORD,
                                 password=NEW_PASSWORD, confirmation=NEW_PASSWORD)
        assert "vos autres sessions sont fermées" in response.text
        # this browser goes on; the other one is logged out
        assert client.get("/mon-compte").status_code == 200
        other_client(app)
        assert other_browser.get("/mon-compte").status_code == 302

        other_client(app)
        fresh = app.test_client()
        assert login(fresh, user).status_code == 200  # old password refused
        other_client(app)
        assert login(fresh, user, NEW_PASSWORD).status_code == 302


def test_email_change_confirmed_by_a_link_to_the_new_address(app, client, db):
    clock.set_now(T0)
    user = _member(email="ancienne@exemple.fr")
    factories.create_user(email="prise@exemple.fr")
    db.session.commit()
    login(client, user)
    wrong = _account_post(client, "courriel", "courriel", new_email="nouvelle@exemple.fr",
                          current="pas le bon mot de passe")
    assert "Mot de passe actuel incorrect" in wrong.text
    taken = _account_post(client, "courriel", "courriel", new_email="prise@exemple.fr",
                          current=factories.PASSWORD)
    assert "ne peut pas être utilisée" in taken.text
    response = _account_post(client, "courriel", "courriel", new_email="Nouvelle@Exemple.fr",
                             current=factories.PASSWORD)
    assert "lien de confirmation a été envoyé à la nouvelle adresse" in response.text
    db.session.expire_all()
    assert user.email == "ancienne@exemple.fr"  # nothing changes before the link is used
    link = _link(db, "nouvelle@exemple.fr", "confirmation-courriel")

    clock.set_now(T0 + dt.timedelta(hours=47))
    response = client.get(link, follow_redirects=True)
    assert "Votre nouvelle adresse électronique est confirmée" in response.text
    db.session.expire_all()
    assert user.email == "nouvelle@exemple.fr"
    reused = client.get(link)
    assert reused.status_code == 400 and "déjà été utilisé" in reused.text

    other_client(app)
    fresh = app.test_client()
    assert login(fresh, "ancienne@exemple.fr").status_code == 200
    other_client(app)
    assert login(fresh, "nouvelle@exemple.fr").status_code == 302


def test_email_change_link_expires(client, db):
    clock.set_now(T0)
    user = _member(email="ancienne@exemple.fr")
    db.session.commit()
    login(client, user)
    _account_post(client, "courriel", "courriel", new_email="nouvelle@exemple.fr",
                  current=factories.PASSWORD)
    link = _link(db, "nouvelle@exemple.fr", "confirmation-courriel")
    clock.set_now(T0 + dt.timedelta(hours=48, minutes=1))
    response = client.get(link)
    assert response.status_code == 400 and "expiré" in response.text
    db.session.expire_all()
    assert user.email == "ancienne@exemple.fr"


# -- Mes structures -----------------------------------------------------------------------------
def _affiliation_setup(db):
    home = factories.create_structure(raison_sociale="Organisme des Landes")
    user = factories.create_member(home, profile_of="gestionnaire_of_catalogue")
    target = factories.create_structure(raison_sociale="Agence de Dax",
                                        kind=StructureKind.PRESCRIPTEUR,
                                        prescriber_type="france_travail")
    referent = factories.create_referent(target)
    db.session.commit()
    return home, user, target, referent


def _ask_affiliation(client, structure, message="Je travaille aussi à Dax."):
    page = client.get("/mes-structures", query_string={"q": structure.raison_sociale})
    assert structure.raison_sociale in page.text
    return client.post("/mes-structures/rattachement", data={
        "csrf_token": csrf_token(page.text), "structure_id": structure.id, "message": message},
        follow_redirects=True)


def test_affiliation_request_validated_by_the_target_referent(app, client, db):
    with clock.frozen(T0):
        home, user, target, referent = _affiliation_setup(db)
        login(client, user)
        # the structures already joined are not offered
        assert "Demander le rattachement" not in client.get(
            "/mes-structures", query_string={"q": home.raison_sociale}).text
        response = _ask_affiliation(client, target)
        assert "est envoyée à son référent" in response.text
        again = _ask_affiliation(client, target)
        assert "déjà en attente" in again.text
        request_obj = db.session.scalar(select(AffiliationRequest))
        assert request_obj.state == RequestState.EN_ATTENTE
        assert request_obj.structure_id == target.id

        client = other_client(app)
        login(client, referent)
        page = client.get("/referent/")
        assert user.email in page.text and "Je travaille aussi à Dax" in page.text
        response = client.post(f"/referent/demandes/rattachement/{request_obj.id}", data={
            "csrf_token": csrf_token(page.text), f"a{request_obj.id}-decision": "valider",
            f"a{request_obj.id}-profile_prescripteur": "prescripteur_n2"})
        assert response.status_code == 302
        db.session.expire_all()
        assert request_obj.state == RequestState.VALIDEE
        membership = db.session.scalar(select(Membership).where(
            Membership.user_id == user.id, Membership.structure_id == target.id))
        assert membership.profile_prescripteur == "prescripteur_n2"
        assert membership.beneficiaire and not membership.is_referent
        mail = db.session.scalar(select(OutboundMessage).where(
            OutboundMessage.recipient == user.email))
        assert mail is not None and "Valider la demande" in mail.subject

        client = other_client(app)
        login(client, user)
        page = client.get("/mes-structures")
        assert "Agence de Dax" in page.text and "Prescripteur niveau 2" in page.text
        assert "Validée" in page.text


def test_affiliation_request_refused_with_a_reason(app, client, db):
    with clock.frozen(T0):
        _, user, target, referent = _affiliation_setup(db)
        login(client, user)
        _ask_affiliation(client, target)
        request_obj = db.session.scalar(select(AffiliationRequest))

        # a référent of another structure cannot decide it
        client = other_client(app)
        stranger = factories.create_referent()
        db.session.commit()
        login(client, stranger)
        page = client.get("/referent/")
        assert client.post(f"/referent/demandes/rattachement/{request_obj.id}", data={
            "csrf_token": csrf_token(page.text),
            f"a{request_obj.id}-decision": "valider"}).status_code == 403

        client = other_client(app)
        login(client, referent)
        page = client.get("/referent/")
        client.post(f"/referent/demandes/rattachement/{request_obj.id}", data={
            "csrf_token": csrf_token(page.text), f"a{request_obj.id}-decision": "refuser",
            f"a{request_obj.id}-reason": "Inconnue dans notre agence"})
        db.session.expire_all()
        assert request_obj.state == RequestState.REFUSEE
        assert db.session.scalar(select(Membership).where(
            Membership.user_id == user.id, Membership.structure_id == target.id)) is None
        mail = db.session.scalar(select(OutboundMessage).where(
            OutboundMessage.recipient == user.email))
        assert "Inconnue dans notre agence" in mail.body_text
        assert user.state == "actif"  # the account itself is untouched


def test_switching_the_active_structure(app, client, db):
    first = factories.create_structure(raison_sociale="Organisme Alpha")
    second = factories.create_structure(raison_sociale="Organisme Beta")
    foreign = factories.create_structure(raison_sociale="Organisme Gamma")
    user = factories.create_member(first, is_referent=True)
    db.session.add(Membership(user=user, structure=second, is_referent=True))
    db.session.commit()

    response = login(client, user)
    assert "/structure-active" in response.headers["Location"]  # several structures: choose
    page = client.get("/mes-structures")
    token = csrf_token(page.text)
    assert client.post("/mes-structures/active", data={
        "csrf_token": token, "structure_id": first.id}).status_code == 302
    assert "Ma structure : Organisme Alpha" in client.get("/referent/").text

    response = client.post("/mes-structures/active", data={
        "csrf_token": token, "structure_id": second.id}, follow_redirects=True)
    assert "Structure active : Organisme Beta" in response.text
    other_client(app)
    assert "Ma structure : Organisme Beta" in client.get("/referent/").text

    other_client(app)
    assert client.post("/mes-structures/active", data={
        "csrf_token": csrf_token(client.get("/mes-structures").text),
        "structure_id": foreign.id}).status_code == 403
    other_client(app)
    assert "Ma structure : Organisme Beta" in client.get("/referent/").text
