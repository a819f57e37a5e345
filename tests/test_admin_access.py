"""Who may open /admin: staff only; anonymous users go to the login page."""
from __future__ import annotations

import pytest

from backoffice.models import StaffRole, StructureKind
from tests.conftest import login
from tests.factories import create_member, create_staff, create_structure


def test_anonymous_is_sent_to_login_with_next(client):
    response = client.get("/admin/candidature/")
    assert response.status_code == 302
    assert "/connexion?next=/admin/candidature/" in response.headers["Location"]


@pytest.mark.parametrize("membership", [
    {"profile_of": "gestionnaire_of_general"},
    {"profile_prescripteur": "prescripteur_n3"},
])
def test_of_and_prescriber_users_get_403(client, db, membership):
    kind = StructureKind.ORGANISME_FORMATION if "profile_of" in membership \
        else StructureKind.PRESCRIPTEUR
    user = create_member(create_structure(kind=kind), **membership)
    db.session.commit()
    login(client, user)
    for url in ("/admin/", "/admin/candidature/", "/admin/structure/"):
        assert client.get(url).status_code == 403
    assert "Accès refusé" in client.get("/admin/").text


@pytest.mark.parametrize("role", [StaffRole.ADMIN, StaffRole.MODERATEUR])
def test_staff_open_the_admin_in_french(client, db, role):
    user = create_staff(role)
    db.session.commit()
    login(client, user)
    page = client.get("/admin/formation/")
    assert page.status_code == 200
    assert "Formations" in page.text
    assert "Créer" in page.text  # Flask-Admin's own words, in French


def test_rules_owner_sees_rule_versions_but_not_candidatures(client, db):
    user = create_staff(StaffRole.RESPONSABLE_REGLES)
    db.session.commit()
    login(client, user)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/rulesetversion/").status_code == 200
    assert client.get("/admin/candidature/").status_code == 403


def test_moderator_cannot_see_staff_accounts(client, db):
    admin = create_staff(StaffRole.ADMIN, email="chef@exemple.fr")
    moderator = create_staff(StaffRole.MODERATEUR)
    db.session.commit()
    login(client, moderator)
    assert "chef@exemple.fr" not in client.get("/admin/user/").text
    assert client.get(f"/admin/user/edit/?id={admin.id}").status_code in (302, 404)


def test_login_with_wrong_password_gives_french_message(client, db):
    user = create_staff()
    db.session.commit()
    response = login(client, user, password="mauvais-mot-de-passe")
    assert response.status_code == 200
    assert "Identifiant ou mot de passe incorrect." in response.text


def test_post_without_csrf_token_is_refused(client, db):
    user = create_staff()
    db.session.commit()
    response = client.post("/connexion", data={"email": user.email, "password": "x"})
    assert response.status_code == 400
    assert "Formulaire expiré" in response.text


def test_session_cookie_is_httponly_and_samesite_lax(client, db):
    user = create_staff()
    db.session.commit()
    response = login(client, user)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_user_with_several_structures_picks_the_active_one(client, db):
    from backoffice.models import Membership

    first = create_structure(raison_sociale="Afpa Bordeaux")
    second = create_structure(raison_sociale="Greta Sud Aquitaine")
    user = create_member(first, profile_of="gestionnaire_of_general")
    db.session.add(Membership(user=user, structure=second, profile_of="gestionnaire_of_catalogue"))
    db.session.commit()
    response = login(client, user)
    assert response.status_code == 302 and "/structure-active" in response.headers["Location"]
    page = client.get(response.headers["Location"])
    assert "Greta Sud Aquitaine" in page.text
    from tests.conftest import csrf_token
    response = client.post("/structure-active", data={
        "structure_id": second.id, "csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    home = client.get("/")
    assert "Greta Sud Aquitaine" in home.text


def test_pages_acting_for_a_structure_ask_which_one_first(client, db):
    """A user with two structures who has not chosen one yet is sent to the choice, then
    back to the page."""
    from backoffice.models import Membership
    from tests.conftest import csrf_token

    first = create_structure(raison_sociale="Afpa Bordeaux")
    second = create_structure(raison_sociale="Greta Sud Aquitaine")
    user = create_member(first, profile_of="gestionnaire_of_general")
    db.session.add(Membership(user=user, structure=second, profile_of="gestionnaire_of_catalogue"))
    db.session.commit()
    login(client, user)
    response = client.get("/catalogue/")
    assert response.status_code == 302
    assert "/structure-active?next=/catalogue/" in response.headers["Location"]
    page = client.get(response.headers["Location"])
    response = client.post(response.headers["Location"], data={
        "structure_id": first.id, "csrf_token": csrf_token(page.text)})
    assert response.headers["Location"].endswith("/catalogue/")
    assert client.get("/catalogue/").status_code == 200
