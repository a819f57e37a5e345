"""Staff accounts are admins' business: a moderator neither sees nor attaches them through
memberships (list, count, detail, edit, AJAX user lookup, a posted id); an admin can."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from backoffice.models import Membership, StaffRole
from tests.conftest import csrf_token, login
from tests.factories import create_member, create_staff, create_structure


@pytest.fixture
def setting(db):
    structure = create_structure(raison_sociale="Agence du Lac")
    chief = create_staff(StaffRole.ADMIN, email="chef@exemple.fr", nom="Chefadmin")
    chief_membership = Membership(user=chief, structure=structure,
                                  profile_of="gestionnaire_of_general")
    db.session.add(chief_membership)
    plain = create_member(structure, profile_of="gestionnaire_of_catalogue")
    moderator = create_staff(StaffRole.MODERATEUR)
    admin = create_staff(StaffRole.ADMIN)
    target = create_structure(raison_sociale="Autre structure")
    db.session.commit()
    return dict(structure=structure, chief=chief, chief_membership=chief_membership,
                plain=plain, moderator=moderator, admin=admin, target=target)


def lookup(client, term):
    response = client.get(f"/admin/membership/ajax/lookup/?name=user&query={term}")
    assert response.status_code == 200
    return [label for _, label in json.loads(response.text)]


def test_a_moderator_neither_sees_nor_attaches_staff_accounts(client, db, setting):
    s = setting
    login(client, s["moderator"])
    listing = client.get("/admin/membership/")
    assert listing.status_code == 200
    assert "chef@exemple.fr" not in listing.text and "CHEFADMIN" not in listing.text.upper()
    assert s["plain"].email in listing.text
    membership_id = s["chief_membership"].id
    for url in (f"/admin/membership/details/?id={membership_id}",
                f"/admin/membership/edit/?id={membership_id}"):
        response = client.get(url)
        assert response.status_code in (302, 404)
        assert "chef@exemple.fr" not in response.text
    assert lookup(client, "Chefadmin") == []
    assert lookup(client, s["plain"].nom) != []
    page = client.get("/admin/membership/new/")
    response = client.post("/admin/membership/new/", data={
        "csrf_token": csrf_token(page.text), "user": str(s["chief"].id),
        "structure": str(s["target"].id), "profile_of": "", "profile_prescripteur": "",
        "profile_parcourspro": ""})
    assert response.status_code == 200  # the form again, with an error on « Utilisateur »
    assert db.session.scalar(select(func.count(Membership.id)).where(
        Membership.user_id == s["chief"].id)) == 1


def test_an_admin_sees_and_attaches_staff_accounts(client, db, setting):
    s = setting
    login(client, s["admin"])
    assert "chef@exemple.fr" in client.get("/admin/membership/").text
    assert client.get(
        f"/admin/membership/details/?id={s['chief_membership'].id}").status_code == 200
    assert lookup(client, "Chefadmin") != []
    page = client.get("/admin/membership/new/")
    response = client.post("/admin/membership/new/", data={
        "csrf_token": csrf_token(page.text), "user": str(s["chief"].id),
        "structure": str(s["target"].id), "profile_of": "", "profile_prescripteur": "",
        "profile_parcourspro": ""})
    assert response.status_code == 302
    assert db.session.scalar(select(func.count(Membership.id)).where(
        Membership.user_id == s["chief"].id)) == 2


def test_the_user_lookup_of_every_admin_form_hides_staff_from_a_moderator(client, db, setting):
    login(client, setting["moderator"])
    for url in ("/admin/candidature/ajax/lookup/?name=prescriber_user&query=Chefadmin",
                "/admin/habilitation/ajax/lookup/?name=user&query=Chefadmin",
                "/admin/delegation/ajax/lookup/?name=granted_by&query=Chefadmin",
                "/admin/accountrequest/ajax/lookup/?name=user&query=Chefadmin"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert json.loads(response.text) == [], url


@pytest.mark.parametrize("role, may_set", [(StaffRole.MODERATEUR, False), (StaffRole.ADMIN, True)])
def test_only_an_admin_sets_someone_s_password(client, db, role, may_set):
    """A moderator's user form has no « Nouveau mot de passe » and a posted one is ignored:
    setting a password would let them log in as that person."""
    from tests.factories import PASSWORD
    from tests.html_forms import form_data

    member = create_member(create_structure(), profile_of="gestionnaire_of_general")
    staff = create_staff(role)
    db.session.commit()
    login(client, staff)
    url = f"/admin/user/edit/?id={member.id}"
    page = client.get(url)
    assert ('name="new_password"' in page.text) is may_set
    data = form_data(page.text, "admin-form")
    data["new_password"] = "Prise-de-controle-du-compte-2026"
    response = client.post(url, data=data)
    assert response.status_code == 302
    db.session.expire_all()
    assert member.check_password(PASSWORD) is not may_set
    assert member.check_password("Prise-de-controle-du-compte-2026") is may_set
