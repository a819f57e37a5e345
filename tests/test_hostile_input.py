"""Hostile input gets a French answer (a field error, 400, 404, 422), never a 500.

Each case is one that crashed (on PostgreSQL at least) before ``input_guard``: a NUL byte
in a text field or a search, non-integer or out-of-range ids and pages in the admin, an
over-large id in a choice field, an impossible date or deep nesting in a rule file.
"""
from __future__ import annotations

import html
import time

import pytest
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.exceptions import InternalServerError

from backoffice import rules_engine
from backoffice.input_guard import CONTROL_MESSAGE, BaseForm
from backoffice.models import Candidate, Membership, StaffRole, Structure, User
from tests.conftest import csrf_token, login
from tests.factories import (create_certification, create_member, create_of_manager,
                             create_prescriber, create_published_session, create_staff,
                             create_structure, create_user)

BIG = "99999999999999999999"


def _page(response) -> str:
    return html.unescape(response.text)


@pytest.fixture
def admin(client, db):
    user = create_staff(StaffRole.ADMIN)
    db.session.commit()
    login(client, user)
    return user


# -- control characters in form fields ------------------------------------------------------
@pytest.mark.parametrize("value", ["Dupont\x00", "Dupont\x1b[2J", "Du\x7fpont"])
def test_control_characters_in_a_front_form_are_refused_on_the_field(client, db, value):
    """« Mon compte »: a NUL, an escape or DEL in the name is refused with a message on
    the field; the name stays as it was."""
    user = create_member(create_structure())
    db.session.commit()
    login(client, user)
    token = csrf_token(client.get("/mon-compte").text)
    response = client.post("/mon-compte", data={
        "action": "profil", "profil-nom": value, "profil-prenom": "Jean",
        "csrf_token": token})
    assert response.status_code == 200
    assert CONTROL_MESSAGE in _page(response)
    db.session.expire_all()
    assert db.session.get(User, user.id).nom == user.nom


def test_control_characters_in_a_definition_form_are_refused_on_the_field(client, db):
    """A form built from ``forms/*.yaml`` (a new candidate): the same message, no row."""
    prescriber = create_prescriber()
    session = create_published_session()
    db.session.commit()
    login(client, prescriber)
    url = f"/prescription/sessions/{session.id}/nouveau-candidat"
    token = csrf_token(client.get(url).text)
    response = client.post(url, data={"nom": "Martin\x00", "prenom": "Léa\x01",
                                      "date_naissance": "17/05/1995", "csrf_token": token})
    assert response.status_code == 200
    assert _page(response).count(CONTROL_MESSAGE) >= 2
    assert db.session.scalar(select(func.count()).select_from(Candidate)) == 0


def test_control_characters_in_an_admin_form_are_refused_on_the_field(client, db, admin):
    structure = create_structure(raison_sociale="Organisme du Sud")
    db.session.commit()
    url = f"/admin/structure/edit/?id={structure.id}"
    token = csrf_token(client.get(url).text)
    response = client.post(url, data={"raison_sociale": "Organisme\x00", "siret": structure.siret,
                                      "kind": structure.kind, "csrf_token": token})
    assert response.status_code == 200
    assert CONTROL_MESSAGE in _page(response)
    db.session.expire_all()
    assert db.session.get(Structure, structure.id).raison_sociale == "Organisme du Sud"


def test_every_form_class_derives_from_the_base_form(app):
    """The check is in the base class: a form added later on plain ``FlaskForm`` fails."""
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    plain = sorted(f"{c.__module__}.{c.__qualname__}" for c in subclasses(FlaskForm)
                   if c.__module__.startswith("backoffice") and not issubclass(c, BaseForm))
    assert plain == []


# -- query strings, paths and raw form values -----------------------------------------------
@pytest.mark.parametrize("url", [
    "/prescription/recherche?q=a%00b",
    "/prescription/recherche?commune=%01",
    "/catalogue/api/communes?q=%00",
    "/admin/structure/?search=%00",
    "/admin/structure/ajax/lookup/?name=commune&query=%00",
    "/admin/regles/publi%00cation/",
    "/connexion?next=%00",
    "/inscription?q=" + "x" * 5_000,
])
def test_control_characters_or_huge_values_in_the_address_get_a_french_400(client, db, url):
    user = create_staff(StaffRole.ADMIN)
    prescriber = create_prescriber()
    db.session.commit()
    login(client, prescriber if url.startswith("/prescription") else user)
    response = client.get(url)
    assert response.status_code == 400
    assert "la requête a été refusée" in _page(response)


def test_a_control_character_read_directly_from_a_form_gets_a_french_400(client, db):
    """A view that reads ``request.form`` itself (the « action » button of « Mon compte »)."""
    user = create_member(create_structure())
    db.session.commit()
    login(client, user)
    token = csrf_token(client.get("/mon-compte").text)
    response = client.post("/mon-compte", data={"action": "profil\x00", "csrf_token": token})
    assert response.status_code == 400
    assert "Le champ « action » contient des caractères de contrôle" in _page(response)


def test_an_over_large_integer_in_the_address_is_404(client, db):
    prescriber = create_prescriber()
    db.session.commit()
    login(client, prescriber)
    for url in (f"/prescription/candidats/{BIG}/modifier", f"/prescription/candidatures/{BIG}",
                "/prescription/candidats/2147483648/modifier"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Page introuvable" in response.text


def test_an_over_large_integer_in_the_query_string_is_ignored(client, db):
    user = create_user()
    db.session.commit()
    response = client.get(f"/inscription?structure_id={BIG}")
    assert response.status_code == 200
    del user


# -- Flask-Admin ids, pages, sorts and filters ----------------------------------------------
@pytest.mark.parametrize("ident", ["abc", BIG, "2147483648", "-1", "1.5", "1,2", ""])
def test_admin_ids_that_are_not_ids_are_404(client, db, admin, ident):
    """edit, details, delete, actions and transitions: 404, never a query with « abc »."""
    structure = create_structure()
    db.session.commit()
    token = csrf_token(client.get(f"/admin/structure/edit/?id={structure.id}").text)
    for response in (
            client.get(f"/admin/structure/edit/?id={ident}"),
            client.get(f"/admin/structure/details/?id={ident}"),
            client.get(f"/admin/user/edit/?id={ident}"),
            client.post("/admin/structure/delete/", data={"id": ident, "csrf_token": token}),
            client.post("/admin/structure/action/", data={
                "action": "delete", "rowid": ident, "csrf_token": token}),
            client.post("/admin/formation/transition/", data={
                "id": ident, "transition": "valider", "csrf_token": token}),
            client.post("/admin/moderation-formations/action/", data={
                "action": "valider", "rowid": ident, "csrf_token": token})):
        assert response.status_code == 404, response.request.url
        assert "Page introuvable" in response.text
    db.session.expire_all()
    assert db.session.get(Structure, structure.id) is not None


@pytest.mark.parametrize("query", ["page=-1", f"page={BIG}", "page=99999999", "sort=999",
                                   "sort=-5", f"page_size={BIG}", "desc=abc",
                                   f"flt0_7={BIG}", "flt0_7=abc", f"flt0_12=1,{BIG}",
                                   "flt1_10=-99999999999", "flt0_4=99999-01-01"])
def test_admin_list_with_an_absurd_page_sort_or_filter_is_a_page(client, db, admin, query):
    create_structure()
    create_certification()
    db.session.commit()
    for view in ("structure", "user", "certification", "formation", "transitionlog",
                 "session"):
        response = client.get(f"/admin/{view}/?{query}")
        assert response.status_code == 200, (view, query)


def test_an_admin_text_filter_with_a_long_number_still_filters(client, db, admin):
    """A SIRET is 14 digits: as a text filter value it is kept (only numbers compared with
    an integer column are bounded)."""
    from backoffice.models import TransitionLog

    db.session.add(TransitionLog(object_type="formation", object_id=1, transition="x",
                                 from_state="a", to_state="b"))
    db.session.commit()
    response = client.get("/admin/transitionlog/?flt0_0=44306184100047")
    assert response.status_code == 200
    assert "Valeur de filtre non valide" not in response.text


def test_admin_ajax_relation_with_a_bad_id_is_a_field_error(client, db, admin):
    """An AJAX relation field (« Utilisateur » of a membership) given « abc » or 10**20."""
    structure = create_structure()
    db.session.commit()
    token = csrf_token(client.get("/admin/membership/new/").text)
    for value in ("abc", BIG, "a\x00"):
        response = client.post("/admin/membership/new/", data={
            "user": value, "structure": str(structure.id), "csrf_token": token})
        assert response.status_code == 200
        assert 'class="form-control is-invalid"' in response.text
        assert 'id="user" name="user"' in response.text
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 0
    lookup = client.get("/admin/membership/ajax/lookup/?name=user&query=a&offset=-5&limit=-1")
    assert lookup.status_code == 200


# -- forms_engine choice fields ---------------------------------------------------------------
@pytest.mark.parametrize("value", [BIG, "2147483648", "12abc", "-3", "１２"])
def test_a_choice_field_with_an_over_large_or_non_integer_id_is_a_field_error(client, db,
                                                                               value):
    """« Certification » of a new formation: an id no row can have → a message on the field."""
    structure = create_structure()
    user = create_of_manager(structure, profile="gestionnaire_of_catalogue")
    db.session.commit()
    login(client, user)
    token = csrf_token(client.get("/catalogue/formations/nouvelle").text)
    response = client.post("/catalogue/formations/nouvelle", data={
        "intitule": "Carreleur", "certification_id": value, "csrf_token": token})
    assert response.status_code == 200
    assert "Choisissez une valeur proposée dans la liste." in _page(response)


def test_an_over_large_integer_in_an_integer_field_is_a_field_error(client, db, admin):
    """« Places » of a session in the admin (a WTForms ``IntegerField``): 10**20 is a
    message on the field, not a database error."""
    from backoffice.input_guard import INTEGER_MESSAGE
    from tests.factories import create_session

    session = create_session()
    db.session.commit()
    url = f"/admin/session/edit/?id={session.id}"
    token = csrf_token(client.get(url).text)
    response = client.post(url, data={"places": BIG, "reference": session.reference,
                                      "csrf_token": token})
    assert response.status_code == 200
    assert INTEGER_MESSAGE in _page(response)
    db.session.expire_all()
    assert db.session.get(type(session), session.id).places == 12


# -- error pages ----------------------------------------------------------------------------
def test_error_pages_are_french(app, client, db, monkeypatch):
    assert "Méthode non autorisée" in client.post("/inscription/envoyee").text
    assert client.post("/inscription/envoyee").status_code == 405
    assert "Page introuvable" in client.get("/nulle-part").text
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 10_000)
    response = client.post("/connexion", data={"email": "x" * 20_000})
    assert response.status_code == 413
    assert "Envoi trop volumineux" in response.text


def test_the_error_page_renders_after_a_failed_transaction(app, db):
    """After a database error the session is unusable; the page (whose menu queries the
    database for a logged-in user) rolls it back first instead of crashing in turn."""
    from flask_login import login_user

    user = create_member(create_structure())
    db.session.commit()
    with app.test_request_context("/"):
        login_user(user)
        db.session.add(User(email=user.email, nom="Doublon", prenom="X", state="actif"))
        with pytest.raises(Exception):
            db.session.flush()
        handler = app._find_error_handler(InternalServerError(), [])
        body, status = handler(InternalServerError())
    assert status == 500
    assert "Erreur interne" in body and user.full_name in body


# -- the rules editor -------------------------------------------------------------------------
def _rules_text(extra: str) -> str:
    return rules_engine.file_version("publication").content + extra


@pytest.mark.parametrize("text, message, line", [
    (_rules_text("\nexemple_date: 2027-02-30\n"), "date impossible « 2027-02-30 »", None),
    ("jeu: publication\nregles:\n  a:\n    message: \"x\x00y\"\n", "caractère de contrôle", 4),
    ("jeu: publication\nx: " + "[" * 10_000 + "]" * 10_000 + "\n", "imbrication trop profonde", 2),
    ("jeu: publication\na: &a [1, 1]\nb: &b [*a, *a]\nc: [*b, *b]\n", "ancres et alias", 2),
    ("jeu: publication\n# " + "x" * 300_000 + "\n", "dépasse 200 ko", None),
])
def test_a_hostile_rule_text_is_a_located_french_error(text, message, line):
    """Refused quickly, with the line, before any parser builds the document."""
    started = time.monotonic()
    with pytest.raises(rules_engine.RuleFileError) as error:
        rules_engine.parse(text, source="publication (version modifiée)",
                           expected_name="publication")
    assert time.monotonic() - started < 5
    problem = error.value.problems[0]
    assert message in problem.message
    if line is not None:
        assert problem.line == line
    if "date" in message:
        assert problem.line == text.count("\n")


def test_the_rules_editor_refuses_an_impossible_date_naming_the_line(client, db):
    """The edited file is checked in the limited child process (« Essayer »): the page
    answers at once, then the run shows the located French error, never a 500."""
    from tests.test_rules_screen import wait_for_tryout

    user = create_staff(StaffRole.RESPONSABLE_REGLES)
    db.session.commit()
    login(client, user)
    url = "/admin/regles/publication/modifier"
    token = csrf_token(client.get(url).text)
    response = client.post(url, data={
        "content": _rules_text("\nexemple_date: 2027-02-30\n"), "action": "essayer",
        "comment": "", "references": "", "csrf_token": token})
    assert response.status_code == 200
    result = wait_for_tryout(client, response.text)
    assert result["status"] == "echec"
    page = html.unescape(result["html"])
    assert "date impossible « 2027-02-30 »" in page
    assert "ligne" in page


def test_a_rule_comment_with_control_characters_is_refused(db):
    user = create_staff(StaffRole.RESPONSABLE_REGLES)
    with pytest.raises(rules_engine.RulesError) as error:
        rules_engine.activate("publication", _rules_text("\n# modifiée\n"), author=user,
                              comment="Nouvelle\x00version")
    assert "caractère de contrôle" in error.value.message


# -- the catalogue CSV import -----------------------------------------------------------------
def test_a_catalogue_file_with_a_control_character_is_refused_naming_the_line(client, db):
    import io

    structure = create_structure()
    user = create_of_manager(structure, profile="gestionnaire_of_catalogue")
    db.session.commit()
    login(client, user)
    token = csrf_token(client.get("/catalogue/import").text)
    content = "intitule;objectif\nCarreleur;Poser du carrelage\nMaçon;Bâtir\x00 des murs\n"
    response = client.post("/catalogue/import", data={
        "fichier": (io.BytesIO(content.encode("utf-8")), "offre.csv"), "csrf_token": token})
    assert response.status_code == 200
    assert "Ligne 3 : le fichier contient un caractère de contrôle invisible" in _page(response)
    from backoffice.models import Formation
    assert db.session.scalar(select(func.count()).select_from(Formation)) == 0
