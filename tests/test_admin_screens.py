"""Every admin screen renders with data, hides secrets, lists without one query per row,
and turns bad input into French errors on the right field."""
from __future__ import annotations

import datetime as dt

import pytest
from flask_admin.contrib.sqla import ModelView
from sqlalchemy import event, func, select

from backoffice import clock
from backoffice.models import (AccountRequest, AffiliationRequest, Delegation, Habilitation,
                               JobRun, MfaRecoveryCode, OutboundMessage, RateLimit,
                               ReferencingRequest, RuleSetVersion, Structure, Token,
                               TransitionLog)
from tests.conftest import csrf_token
from tests.factories import (create_candidate, create_candidature, create_commune,
                             create_entry_point, create_formation, create_member,
                             create_session, create_structure, create_user)

NIR = "295057512345678"


def _model_views(app):
    admin = app.extensions["admin"][0]
    return [view for view in admin._views if isinstance(view, ModelView)]


@pytest.fixture
def one_of_everything(db):
    """At least one row in every table."""
    structure = create_structure(raison_sociale="Organisme Sud-Ouest")
    referent = create_member(structure, is_referent=True, profile_of="gestionnaire_of_general")
    newcomer = create_user(state="en_attente_validation")
    db.session.add_all([
        AccountRequest(user=newcomer, structure=structure),
        AffiliationRequest(user=referent, structure=create_structure()),
        ReferencingRequest(raison_sociale="Nouvelle structure", siret="44306184100047",
                           kind="prescripteur", prescriber_type="mission_locale"),
        Habilitation(siret=structure.siret, user=referent, role="gestionnaire", state="active"),
        Delegation(granted_by=referent, siret_etablissement=structure.siret,
                   siret_tiers="44306184100047", email_tiers="tiers@exemple.fr",
                   role="declarant", end_date=dt.date(2027, 6, 30)),
        Token.issue(purpose="activation", lifetime=dt.timedelta(hours=48), user=newcomer)[0],
        RuleSetVersion(ruleset="publication", version=1, content="{}", active=True),
        JobRun(job="expiration_brouillons", run_for=clock.now(), status="succes"),
        OutboundMessage(recipient="of@exemple.fr", subject="Votre formation est validée",
                        body_text="Bonjour"),
        RateLimit(scope="connexion_adresse", key="192.0.2.10", count=6,
                  window_start=clock.now()),
        MfaRecoveryCode(user=referent, code_hash="0" * 64),
    ])
    entry_point = create_entry_point()
    entry_point.session.commune = create_commune(nom="Mont-de-Marsan", code_postal="40000",
                                                 code_insee="40192", departement="40")
    candidate = create_candidate(nom="Martin-Lefèvre")
    candidate.nir = NIR
    candidature = create_candidature(candidate=candidate, session=entry_point.session,
                                     entry_point=entry_point)
    db.session.add(TransitionLog(object_type="candidature", object_id=candidature.id,
                                 transition="soumettre", from_state="brouillon",
                                 to_state="en_attente_avis", actor=referent))
    db.session.commit()


def test_every_entity_has_an_admin_screen(app):
    from backoffice.extensions import db

    covered = {view.model for view in _model_views(app)}
    missing = [mapper.class_.__name__ for mapper in db.Model.registry.mappers
               if mapper.class_ not in covered]
    assert missing == []


def test_every_admin_list_and_detail_renders_with_data(app, admin_client, one_of_everything):
    for view in _model_views(app):
        base = f"/admin/{view.endpoint}/"
        page = admin_client.get(base)
        assert page.status_code == 200, base
        assert "details/?id=" in page.text, f"{base} shows no row"
        assert "password_hash" not in page.text and "nir_chiffre" not in page.text
        object_id = app.extensions["sqlalchemy"].session.scalar(select(func.min(view.model.id)))
        detail = admin_client.get(f"{base}details/?id={object_id}")
        assert detail.status_code == 200, base
        assert "scrypt:" not in detail.text and NIR not in detail.text, base
        if view.can_edit:
            assert admin_client.get(f"{base}edit/?id={object_id}").status_code == 200, base
        if view.can_create:
            assert admin_client.get(f"{base}new/").status_code == 200, base


def _queries_for(client, db, url) -> list[str]:
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return statements


@pytest.mark.parametrize("url, make_row", [
    ("/admin/candidature/", lambda: create_candidature()),
    ("/admin/session/", lambda: create_session()),
    ("/admin/formation/", lambda: create_formation()),
    ("/admin/membership/", lambda: create_member()),
    ("/admin/transitionlog/", lambda: db_add(TransitionLog(
        object_type="formation", object_id=1, transition="publier", to_state="validee",
        actor=create_user()))),
])
def test_lists_issue_no_query_per_row(admin_client, db, url, make_row):
    """A list page issues as many queries for 2 rows as for 15."""
    for _ in range(2):
        make_row()
    db.session.commit()
    few = _queries_for(admin_client, db, url)
    for _ in range(13):
        make_row()
    db.session.commit()
    many = _queries_for(admin_client, db, url)
    assert len(few) == len(many), many


@pytest.mark.parametrize("url, table", [("/admin/candidature/", "candidature"),
                                        ("/admin/session/", "session"),
                                        ("/admin/candidate/", "candidate"),
                                        ("/admin/formation/", "formation"),
                                        ("/admin/transitionlog/", "transition_log")])
def test_big_lists_never_count_their_table(admin_client, db, url, table):
    statements = _queries_for(admin_client, db, url)
    assert not [s for s in statements if "count(" in s.lower() and f"from {table}" in s.lower()]


def db_add(obj):
    from backoffice.extensions import db

    db.session.add(obj)
    return obj


def _post_form(client, url, data):
    page = client.get(url)
    assert page.status_code == 200
    return client.post(url, data={**data, "csrf_token": csrf_token(page.text)})


def test_duplicate_siret_in_admin_form_is_a_field_error(admin_client, db):
    existing = create_structure()
    db.session.commit()
    response = _post_form(admin_client, "/admin/structure/new/", {
        "raison_sociale": "Doublon", "siret": existing.siret, "kind": "prescripteur"})
    assert response.status_code == 200
    assert "Cette valeur est déjà utilisée : elle doit être unique." in response.text
    assert "Impossible de créer l&#39;enregistrement." in response.text
    assert db.session.scalar(select(func.count()).select_from(Structure)) == 1


def test_user_attached_twice_to_a_structure_is_a_field_error(admin_client, db):
    from backoffice.models import Membership

    structure = create_structure()
    user = create_member(structure)
    db.session.commit()
    response = _post_form(admin_client, "/admin/membership/new/", {
        "user": user.id, "structure": structure.id})
    assert response.status_code == 200
    assert "Cette valeur est déjà utilisée (Utilisateur, Structure)" in response.text
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 1


def test_invalid_siret_in_admin_form_is_a_field_error(admin_client, db):
    response = _post_form(admin_client, "/admin/structure/new/", {
        "raison_sociale": "Clé fausse", "siret": "12345678901234", "kind": "prescripteur"})
    assert response.status_code == 200
    assert "clé de contrôle incorrecte" in response.text
    assert db.session.scalar(select(func.count()).select_from(Structure)) == 0


def test_valid_structure_is_created_from_the_admin(admin_client, db):
    response = _post_form(admin_client, "/admin/structure/new/", {
        "raison_sociale": "Mission locale des Landes", "siret": "443 061 841 00047",
        "kind": "prescripteur", "prescriber_type": "mission_locale", "departement": "40"})
    assert response.status_code == 302
    structure = db.session.scalar(select(Structure))
    assert (structure.siret, structure.siren) == ("44306184100047", "443061841")


def test_session_ending_before_start_is_a_field_error(admin_client, db):

    formation = create_formation()
    db.session.commit()
    response = _post_form(admin_client, "/admin/session/new/", {
        "reference": "12345678", "formation": formation.id, "date_debut": "2027-03-01",
        "date_fin": "2027-02-01", "mode_entree": "date_fixe", "state": "active"})
    assert response.status_code == 200
    assert "La date de fin doit être postérieure" in response.text


def test_required_field_message_is_french(admin_client, db):
    response = _post_form(admin_client, "/admin/structure/new/", {"siret": "44306184100047"})
    assert response.status_code == 200
    assert "Ce champ est requis." in response.text


def test_check_constraint_violation_is_a_field_error_and_nothing_is_written(admin_client, db):
    """A negative number of places passes the form but not the database: the user gets
    the French message on the field, and no session is stored."""
    formation = create_formation()
    db.session.commit()
    response = _post_form(admin_client, "/admin/session/new/", {
        "reference": "12345678", "formation": formation.id, "date_debut": "2027-03-01",
        "date_fin": "2027-06-01", "mode_entree": "date_fixe", "state": "active",
        "places": "-3"})
    assert response.status_code == 200
    assert "Le nombre de places ne peut pas être négatif." in response.text
    from backoffice.models import Session
    assert db.session.scalar(select(func.count()).select_from(Session)) == 0


def test_no_admin_form_loads_a_whole_related_table(app, admin_client):
    """Every relation in an admin form is an AJAX lookup, never a select of all rows."""
    from flask_admin.contrib.sqla.fields import QuerySelectField, QuerySelectMultipleField

    offenders = []
    for view in _model_views(app):
        if not (view.can_create or view.can_edit):
            continue
        with app.test_request_context(f"/admin/{view.endpoint}/new/"):
            form = view.create_form()
            for field in form:
                if isinstance(field, (QuerySelectField, QuerySelectMultipleField)):
                    offenders.append(f"{view.endpoint}.{field.name}")
    assert offenders == []
