"""The form definitions of forms/: each is loaded at start-up, renders with the shared macro
(labels, help texts, CSRF, counter, conditional display), and holds its examples."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import render_template_string
from markupsafe import escape

from backoffice import create_app, forms_engine
from backoffice.config import TestingConfig
from tests.conftest import csrf_token
from tests.factories import create_structure

FORMS_DIR = Path(__file__).resolve().parent.parent / "forms"
DEFINITION_NAMES = sorted(path.stem for path in FORMS_DIR.glob("*.yaml"))
EXAMPLES = [(name, index) for name in DEFINITION_NAMES
            for index in range(len(forms_engine.load_definition(FORMS_DIR / f"{name}.yaml")
                                   .examples))]
MACRO = ('{% from "forms/macros.html" import render_definition_form %}'
         '{{ render_definition_form(form) }}')


def render(app, name: str, obj=None, context: dict | None = None, formdata=None) -> str:
    with app.test_request_context():
        form = forms_engine.build_form(name, obj=obj, context=context, formdata=formdata)
        if formdata is not None:
            form.validate()
        return render_template_string(MACRO, form=form)


def full_context() -> dict:
    return {"structure": create_structure(), "formation_apprentissage": True}


def test_the_five_first_definitions_are_loaded_at_start_up(app):
    assert {"formation", "session", "candidate", "candidature", "account_registration"} <= \
        set(app.extensions["forms_engine"])
    assert set(app.extensions["forms_engine"]) == set(DEFINITION_NAMES)


@pytest.mark.parametrize("name", DEFINITION_NAMES)
def test_every_definition_renders_its_labels_help_texts_and_csrf(app, name):
    """Each form shows every label and help text of its file, its groups as fieldsets and a
    CSRF token; with nothing submitted, no error summary."""
    definition = forms_engine.get_definition(name)
    html = render(app, name, context=full_context())
    assert csrf_token(html)
    assert "Le formulaire contient" not in html
    assert 'novalidate data-formulaire="{}"'.format(name) in html
    assert html.count("<legend class=\"w-auto px-2 h5\">") == len(definition.groups)
    for group in definition.groups:
        assert str(escape(group.title)) in html
        for paragraph in group.help_paragraphs:
            assert str(escape(paragraph)) in html
    for fdef in definition.fields.values():
        if fdef.type != "cache":
            assert str(escape(fdef.label)) in html, fdef.name
        for paragraph in fdef.help_paragraphs:
            assert str(escape(paragraph)) in html, fdef.name
        if fdef.is_reference:
            assert f'data-source="{fdef.source}"' in html
    assert "forms.js" in html


@pytest.mark.parametrize("name, index", EXAMPLES)
def test_every_example_of_every_definition_holds(app, name, index):
    """The examples written at the end of each file (input → accepted, or refused with
    these French messages on these fields) are what the form does."""
    definition = forms_engine.get_definition(name)
    assert forms_engine.run_example(definition, definition.examples[index],
                                    context={"structure": create_structure()}) == []


def test_every_definition_has_good_and_bad_examples():
    for name in DEFINITION_NAMES:
        definition = forms_engine.load_definition(FORMS_DIR / f"{name}.yaml")
        assert {example.valid for example in definition.examples} == {True, False}, name


def test_formation_form_shows_the_title_counter_and_hides_cursus_years(app):
    """The OF sees "0 / 300" under the title; the cursus years are in the page but hidden
    until apprenticeship is "Oui" (static/forms.js switches them)."""
    html = render(app, "formation", context={"structure": create_structure()})
    assert re.search(r'data-compteur-pour="intitule" data-max="300"[^>]*>0 / 300<', html)
    years = re.search(r'<div class="form-group( d-none)?" id="champ-annees_cursus"[^>]*>', html)
    assert years.group(1) == " d-none"
    assert 'data-visible-si-champ="modalite_apprentissage"' in years.group(0)
    assert 'data-visible-si-valeurs="oui"' in years.group(0)
    for year in ("1re année", "2e année", "3e année", "4e année", "5e année"):
        assert year in html


def test_formation_form_prefilled_from_an_apprenticeship_formation_shows_its_years(app):
    from tests.factories import create_formation
    structure = create_structure()
    formation = create_formation(structure=structure, intitule="BTS MCO",
                                 modalite_apprentissage=True, annees_cursus=[2, 3])
    html = render(app, "formation", obj=formation, context={"structure": structure})
    assert re.search(r'<div class="form-group" id="champ-annees_cursus"', html)
    assert re.search(r'name="annees_cursus" value="2" checked', html)
    assert not re.search(r'name="annees_cursus" value="1" checked', html)
    assert re.search(r'name="modalite_apprentissage" value="oui" checked', html)
    assert ">7 / 300<" in html
    assert f"Sélection : {escape(str(structure))}" in html


def test_errors_are_summarised_at_the_top_and_shown_on_each_field(app):
    """A refused form lists every error at the top (linked to its field) and repeats each
    message under its field, in French."""
    from werkzeug.datastructures import MultiDict
    html = render(app, "formation", context={"structure": create_structure()},
                  formdata=MultiDict({"intitule": "x" * 312, "lien_web": "www.exemple.fr",
                                      "modalite_formation_continue": "oui",
                                      "modalite_contrat_pro": "non",
                                      "modalite_apprentissage": "oui"}))
    summary_at = html.index("Le formulaire contient 4 erreurs :")
    assert summary_at < html.index("<fieldset")
    summary = html[summary_at:html.index("</div>", summary_at)]
    assert '<a href="#intitule" class="alert-link">Intitulé</a> : ' \
           'Ce champ compte 312 caractères, 300 au plus.' in summary
    assert '<a href="#lien_web" class="alert-link">Lien web</a> : ' \
           "L&#39;adresse doit commencer par http:// ou https://." in summary
    assert '<a href="#annees_cursus-0" class="alert-link">' in summary
    assert "Cochez au moins une année du cursus ouverte à l&#39;apprentissage." in summary
    field = html[html.index('id="champ-intitule"'):html.index('id="champ-objectif"')]
    assert 'class="form-control is-invalid"' in field
    # the error is announced with the field: aria-invalid, aria-describedby naming it first
    assert 'aria-invalid="true"' in field
    assert 'aria-describedby="erreur-intitule aide-intitule compteur-intitule"' in field
    assert '<div class="invalid-feedback d-block" id="erreur-intitule">Ce champ compte 312 ' \
           'caractères, 300 au plus.</div>' in field
    assert ">312 / 300<" in field and "text-danger" in field


def test_cursus_year_of_a_candidature_is_asked_only_for_apprenticeship(app):
    """The candidature form asks for the cursus year only when the page says the formation
    is open to apprenticeship."""
    assert 'name="annee_cursus"' not in render(app, "candidature")
    html = render(app, "candidature", context={"formation_apprentissage": True})
    assert 'name="annee_cursus"' in html
    assert "Le prescripteur déclare avoir dûment recueilli le consentement" in \
        html.replace("\n", " ").replace("le prescripteur", "Le prescripteur")


def test_account_registration_shows_the_data_protection_notice(app):
    html = render(app, "account_registration")
    assert "Règlement général sur la protection des données (RGPD)" in html
    assert 'type="password"' in html and 'autocomplete="new-password"' in html
    prescriber = re.search(r'<div class="form-group( d-none)?" id="champ-prescriber_type"[^>]*>',
                           html)
    assert prescriber.group(1) == " d-none"
    assert 'data-visible-si-valeurs="prescripteur|mixte"' in prescriber.group(0)


def test_the_candidate_form_never_shows_the_nir(app):
    from tests.factories import create_candidate
    candidate = create_candidate()
    candidate.nir = "295053306312384"
    html = render(app, "candidate", obj=candidate)
    assert candidate.nom in html
    assert "295053306312384" not in html
    assert 'name="nir" type="text" value=""' in html


# --------------------------------------------------------------------------- through HTTP

@pytest.fixture(scope="module")
def form_app(database_url):
    """An application with one page built on the "candidate" definition, as a view of a
    later issue will be, to go through the test client with CSRF."""
    from backoffice.extensions import db
    app = create_app(type("Config", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": database_url}))

    @app.route("/essai-formulaire", methods=["GET", "POST"])
    def candidate_page():
        form = forms_engine.build_form("candidate")
        if form.validate_on_submit():
            values = form.values()
            return f"Fiche enregistrée : {values['nom']} {values['date_naissance']:%d/%m/%Y}"
        return render_template_string(
            '{% extends "base.html" %}{% from "forms/macros.html" import '
            'render_definition_form %}{% block content %}'
            '{{ render_definition_form(form) }}{% endblock %}', form=form)

    yield app
    with app.app_context():
        db.engine.dispose()


def test_a_prescriber_submits_the_candidate_form_with_csrf(form_app):
    """Through the browser: the page shows the form; a wrong birth date comes back with the
    message at the top and on the field, the typed values kept; a corrected form is
    accepted; a post without the CSRF token is refused."""
    client = form_app.test_client()
    page = client.get("/essai-formulaire")
    assert page.status_code == 200
    assert 'href="/static/forms.js"' not in page.text and "/static/forms.js" in page.text
    data = {"csrf_token": csrf_token(page.text), "civilite": "Mme", "nom": "Dupont",
            "prenom": "Élodie", "date_naissance": "17/05/1890", "telephone": "05 56 00 00 00",
            "inscrit_france_travail": "oui"}

    refused = client.post("/essai-formulaire", data=data)
    assert refused.status_code == 200
    assert "Le formulaire contient 1 erreur :" in refused.text
    assert refused.text.count(
        "La date de naissance doit correspondre à un âge entre 15 et 80 ans.") == 2
    assert 'value="Dupont"' in refused.text

    accepted = client.post("/essai-formulaire", data={**data, "date_naissance": "17/05/1995"})
    assert accepted.text == "Fiche enregistrée : Dupont 17/05/1995"

    without_token = client.post("/essai-formulaire",
                                data={k: v for k, v in data.items() if k != "csrf_token"})
    assert without_token.status_code == 400
    with client.get("/static/forms.js") as script:
        assert script.status_code == 200
