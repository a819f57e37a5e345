"""Every admin edit form saves: unchanged, it changes nothing; with one field changed, that
field is stored; a value already used by another row is still refused as not unique.

The forms are posted back exactly as the page renders them (fields and CSRF token read from
the HTML), as an administrator's browser would.
"""
from __future__ import annotations

import pytest
from sqlalchemy import inspect

from backoffice import siret
from backoffice.models import Structure
from tests import factories
from tests.html_forms import form_data

# One row per admin view that can edit: how to create a record, and one field to change
# (name in the form, new value, attribute of the model that must then hold it).
EDITABLE = {
    "structure": (factories.create_structure, "raison_sociale", "Greta Landes"),
    "user": (factories.create_user, "nom", "Dupont-Modifié"),
    "membership": (factories.create_member, "profile_of", "gestionnaire_of_general"),
    "accountrequest": (factories.create_account_request, "message", "Merci de valider."),
    "affiliationrequest": (factories.create_affiliation_request, "message", "Rattachement."),
    "referencingrequest": (factories.create_referencing_request, "raison_sociale",
                           "Mission locale modifiée"),
    "habilitation": (factories.create_habilitation, "siret", siret.make(55_000_001)),
    "delegation": (lambda: factories.create_delegation(factories.create_user(),
                                                        siret.make(56_000_001)),
                   "email_tiers", "tiers-modifie@exemple.fr"),
    "certification": (factories.create_certification, "intitule", "Titre modifié"),
    "commune": (factories.create_commune, "nom", "Saint-Sever"),
    "formation": (factories.create_formation, "intitule", "Formation modifiée"),
    "session": (factories.create_session, "adresse", "3 place du Marché"),
    "entrypoint": (factories.create_entry_point, "places", "7"),
    "candidate": (factories.create_candidate, "nom", "Martin"),
    "candidature": (factories.create_candidature, "raisons_choix", "Projet confirmé."),
}


def _editable_views(app):
    admin = app.extensions["admin"]
    admin = admin[0] if isinstance(admin, list) else admin
    return {view.endpoint: view for view in admin._views
            if getattr(view, "model", None) is not None and view.can_edit}


def test_every_editable_admin_view_has_a_row(app):
    """A new editable admin screen must be added to EDITABLE (and so be tested)."""
    assert sorted(_editable_views(app)) == sorted(EDITABLE)


def _create(endpoint):
    obj = EDITABLE[endpoint][0]()
    if endpoint == "membership":
        obj = obj.memberships[0]
    return obj


def _snapshot(obj) -> dict:
    skipped = {"updated_at", "version"}
    return {attr.key: getattr(obj, attr.key) for attr in inspect(type(obj)).column_attrs
            if attr.key not in skipped}


def _edit_page(client, endpoint, obj):
    url = f"/admin/{endpoint}/edit/?id={obj.id}"
    page = client.get(url)
    assert page.status_code == 200, page.text
    return url, form_data(page.text, "admin-form")


@pytest.mark.parametrize("endpoint", sorted(EDITABLE))
def test_saving_an_unchanged_record_changes_nothing(admin_client, db, endpoint):
    """Open the edit page, press « Enregistrer »: saved, and the row is as it was."""
    obj = _create(endpoint)
    db.session.commit()
    before = _snapshot(obj)
    url, data = _edit_page(admin_client, endpoint, obj)
    response = admin_client.post(url, data=data)
    assert response.status_code == 302, _errors(response.text)
    db.session.expire_all()
    assert _snapshot(db.session.get(type(obj), obj.id)) == before


@pytest.mark.parametrize("endpoint", sorted(EDITABLE))
def test_changing_one_field_stores_it(admin_client, db, endpoint):
    obj = _create(endpoint)
    db.session.commit()
    _, field, value = EDITABLE[endpoint]
    url, data = _edit_page(admin_client, endpoint, obj)
    assert field in data, f"no field {field!r} in the {endpoint} form"
    data[field] = value
    response = admin_client.post(url, data=data)
    assert response.status_code == 302, _errors(response.text)
    db.session.expire_all()
    stored = getattr(db.session.get(type(obj), obj.id), field)
    assert str(stored) == value


def test_a_value_used_by_another_row_is_still_refused(admin_client, db):
    """Changing a structure's SIRET to another structure's: a message on the field, nothing
    stored."""
    other = factories.create_structure()
    structure = factories.create_structure()
    db.session.commit()
    url, data = _edit_page(admin_client, "structure", structure)
    data["siret"] = other.siret
    response = admin_client.post(url, data=data)
    assert response.status_code == 200
    assert "Cette valeur est déjà utilisée : elle doit être unique." in response.text, \
        _errors(response.text)
    db.session.expire_all()
    assert db.session.get(Structure, structure.id).siret != other.siret


def test_a_combination_used_by_another_row_is_still_refused(admin_client, db):
    """Attaching, by editing a membership, a user to a structure they already belong to."""
    structure = factories.create_structure()
    user = factories.create_member(structure)
    other = factories.create_member().memberships[0]
    db.session.commit()
    url, data = _edit_page(admin_client, "membership", other)
    data["user"], data["structure"] = str(user.id), str(structure.id)
    response = admin_client.post(url, data=data)
    assert response.status_code == 200
    assert "Cette valeur est déjà utilisée (Utilisateur, Structure)" in response.text


def _errors(html: str) -> str:
    """The error messages of a refused form, for the assertion message."""
    import re

    found = re.findall(r'class="(?:invalid-feedback|help-block|alert[^"]*)"[^>]*>(.*?)</',
                       html, re.S)
    return " | ".join(" ".join(text.split()) for text in found) or html[:2000]
