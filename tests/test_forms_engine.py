"""The forms engine: definition files checked at start-up, French validation, conditional
display, and answers written to columns or to the ``extra`` JSON column."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from backoffice import clock, create_app, forms_engine
from backoffice.forms_engine import FormContextError, FormDefinitionError
from backoffice.models import Formation
from tests.factories import (create_certification, create_commune, create_formation,
                             create_structure)

FORMS_DIR = Path(__file__).resolve().parent.parent / "forms"
PARIS_NOON = dt.time(12, tzinfo=clock.PARIS)


def write_definition(tmp_path: Path, text: str, name: str = "essai") -> Path:
    directory = tmp_path / "forms"
    directory.mkdir(exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, name: str = "essai") -> forms_engine.FormDefinition:
    return forms_engine.load_definition(write_definition(tmp_path, text, name))


def submit(definition, data: dict, context: dict | None = None):
    """Submit ``data`` as a browser would (lists for multiple values), without CSRF."""
    formdata = MultiDict()
    for key, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            formdata.add(key, item)
    form = forms_engine.build_form(definition, formdata=formdata, context=context,
                                   meta={"csrf": False})
    form.validate()
    return form


# --------------------------------------------------------------------------- malformed files

BASE = """\
nom: essai
titre: Essai
modele: Formation
groupes:
  - titre: Description
    champs:
      - nom: intitule
        libelle: Intitulé
        type: texte
        obligatoire: oui
      - nom: modalite_apprentissage
        libelle: Contrat d'apprentissage
        type: oui_non
"""


@pytest.mark.parametrize("change, expected", [
    (("", "      - {nom: duree, libelle: Durée, type: nombre}\n"),
     ["ligne 14", "champ « duree »", "type « nombre » inconnu"]),
    (("", "      - {nom: siret_of, libelle: SIRET, type: texte, validateurs: [siren]}\n"),
     ["champ « siret_of »", "validateur « siren » inconnu"]),
    (("", "      - {nom: region, libelle: Région, type: liste, source: regions}\n"),
     ["champ « region »", "source de choix « regions » inconnue"]),
    (("", "      - nom: annees\n        libelle: Années\n        type: texte\n"
          "        visible_si: {champ: apprentissage, egal: oui}\n"),
     ["champ « annees »", "porte sur le champ « apprentissage », qui n'existe pas"]),
    (("", "      - nom: annees\n        libelle: Années\n        type: texte\n"
          "        visible_si: {champ: modalite_apprentissage, egal: peut-être}\n"),
     ["champ « annees »", "valeur impossible pour le champ « modalite_apprentissage »"]),
    (("", "      - nom: annees\n        libelle: Années\n        type: texte\n"
          "        visible_si: modalite_apprentissage\n"),
     ["champ « annees »", "« visible_si » s'écrit"]),
    (("", "      - {nom: intitule, libelle: Autre intitulé, type: texte}\n"),
     ["ligne 14", "champ « intitule »", "champ en double (déjà défini ligne 7)"]),
    (("", "      - {nom: objectif, libelle: Objectif, type: texte_long, obligatoir: oui}\n"),
     ["champ « objectif »", "clé « obligatoir » inconnue"]),
    (("", "      - {nom: debut, libelle: Début, type: date, validateurs: [siret]}\n"),
     ["champ « debut »", "le validateur « siret » ne s'applique pas à un champ de type « date »"]),
    (("", "      - {nom: code, libelle: Code, type: texte, motif: '[A-Z]+'}\n"),
     ["champ « code »", "« message_motif »"]),
    (("", "      - {nom: certification, libelle: Certification, type: texte}\n"),
     ["champ « certification »", "relation de Formation", "« certification_id »"]),
    (("", "      - {nom: state, libelle: État, type: texte}\n"),
     ["champ « state »", "ne se saisit pas"]),
    (("", "      - {nom: intitule_court, libelle: Court, type: date, longueur_max: 30}\n"),
     ["champ « intitule_court »", "« longueur_max » ne s'utilisent qu'avec un champ de texte"]),
    (("        obligatoire: oui\n", "        obligatoire: non\n"),
     ["champ « intitule »", "la colonne « intitule » de Formation ne peut pas rester vide"]),
    (("        type: texte\n", "        type: texte\n        longueur_max: 400\n"),
     ["champ « intitule »", "« longueur_max » (400) dépasse ce que la colonne accepte (300)"]),
    (("modele: Formation", "modele: Formations"), ["modèle « Formations » inconnu"]),
    (("nom: essai", "nom: autre"), ["« nom » doit être le nom du fichier"]),
    (("        type: oui_non\n", "        type: oui_non\n        type: texte\n"),
     ["ligne 14", "clé « type » en double"]),
    (("", "      - nom: [oops\n"), ["n'est pas du YAML valide", "ligne"]),
])
def test_a_malformed_definition_is_refused_with_file_line_and_field(tmp_path, change, expected):
    """A mistake in a definition file is reported in French, naming the file, the line and
    the field, so that whoever edited the file can fix it."""
    old, new = change
    text = BASE + new if old == "" else BASE.replace(old, new, 1)
    with pytest.raises(FormDefinitionError) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    assert "forms/essai.yaml" in message
    for fragment in expected:
        assert fragment in message, message


def test_every_mistake_of_a_file_is_listed_at_once(tmp_path):
    """Two mistakes in a file: both are listed in one message."""
    text = BASE + ("      - {nom: duree, libelle: Durée, type: nombre}\n"
                   "      - {nom: siret_of, libelle: SIRET, type: texte, validateurs: [siren]}\n")
    with pytest.raises(FormDefinitionError) as caught:
        load(tmp_path, text)
    assert "(2 erreurs)" in str(caught.value)
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize("old, new, expected", [
    ("        type: texte_long\n        aide: Ce que la personne",
     "        type: paragraphe\n        aide: Ce que la personne",
     ["champ « objectif »", "type « paragraphe » inconnu"]),
    ("        validateurs: [annees_cursus]", "        validateurs: [annees_apprentissage]",
     ["champ « annees_cursus »", "validateur « annees_apprentissage » inconnu"]),
    ("        source: dispositifs", "        source: dispositifs_region",
     ["champ « dispositif »", "source de choix « dispositifs_region » inconnue"]),
    ("visible_si: {champ: modalite_apprentissage, egal: oui}",
     "visible_si: {champ: apprentissage, egal: oui}",
     ["champ « annees_cursus »", "« visible_si » porte sur le champ « apprentissage »"]),
])
def test_create_app_refuses_to_start_with_a_bad_definition(tmp_path, old, new, expected):
    """A mistake in forms/formation.yaml stops the application at start-up, with a French
    message naming the file and the field."""
    directory = tmp_path / "forms"
    shutil.copytree(FORMS_DIR, directory)
    path = directory / "formation.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(FormDefinitionError) as caught:
        create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://",
                    "FORMS_DIR": str(directory)})
    message = str(caught.value)
    assert message.startswith("Définition de formulaire incorrecte — forms/formation.yaml, ligne ")
    for fragment in expected:
        assert fragment in message, message


def test_an_unknown_form_name_is_a_clear_error(app):
    with pytest.raises(LookupError, match="Formulaire « inconnu » inconnu"):
        forms_engine.get_definition("inconnu")


# --------------------------------------------------------------------------- named validators

VALIDATORS_FORM = """\
nom: essai
titre: Essai des validateurs
groupes:
  - titre: Tout
    champs:
      - {nom: siret, libelle: SIRET, type: texte, validateurs: [siret]}
      - {nom: code_postal, libelle: Code postal, type: texte, validateurs: [code_postal]}
      - {nom: telephone, libelle: Téléphone, type: telephone}
      - {nom: lien, libelle: Lien, type: url}
      - {nom: courriel, libelle: Courriel, type: email}
      - {nom: naissance, libelle: Naissance, type: date, validateurs: [date_naissance]}
      - {nom: nir, libelle: NIR, type: texte, validateurs: [nir]}
      - {nom: passe, libelle: Mot de passe, type: mot_de_passe, longueur_min: 12,
         validateurs: [mot_de_passe_robuste]}
      - {nom: annees, libelle: Années, type: cases_a_cocher, validateurs: [annees_cursus],
         choix: [{code: 1, libelle: "1re"}, {code: 2, libelle: "2e"}, {code: 6, libelle: "6e"}]}
      - {nom: places, libelle: Places, type: entier, min: 1, max: 30}
      - {nom: code, libelle: Code, type: texte, motif: "[A-Z]{3}",
         message_motif: "Le code compte 3 lettres majuscules."}
"""

SIRET_OK = "732 829 320 00074"
BAD_PHONE = "Numéro de téléphone non valide (10 chiffres, ex. 05 56 00 00 00)."
BAD_URL = "Cette adresse web n'est pas valide (ex. https://www.exemple.fr/formation)."
NIR_LENGTH = "Le NIR compte 15 caractères (13 chiffres et une clé de 2 chiffres)."


@pytest.mark.parametrize("field, value, message", [
    ("siret", "7328293200007", "Le SIRET doit compter 14 chiffres."),
    ("siret", "73282932000075", "Ce SIRET n'est pas valide (clé de contrôle incorrecte)."),
    ("siret", SIRET_OK, None),
    ("code_postal", "3300", "Le code postal compte 5 chiffres."),
    ("code_postal", "33 000", "Le code postal compte 5 chiffres."),
    ("code_postal", "33000", None),
    ("telephone", "05 56 00 00", BAD_PHONE),
    ("telephone", "00 56 00 00 00", BAD_PHONE),
    ("telephone", "05.56.00.00.00", None),
    ("telephone", "+33 6 12 34 56 78", None),
    ("lien", "www.exemple.fr", "L'adresse doit commencer par http:// ou https://."),
    ("lien", "ftp://exemple.fr/f", "L'adresse doit commencer par http:// ou https://."),
    ("lien", "javascript:alert(1)", "L'adresse doit commencer par http:// ou https://."),
    ("lien", "https://exemple", BAD_URL),
    ("lien", "https://www.exemple.fr/formation?id=3", None),
    ("courriel", "prenom.nom@", "Adresse électronique non valide (ex. prenom.nom@exemple.fr)."),
    ("courriel", "prenom.nom@exemple.fr", None),
    ("nir", "29505330631238", NIR_LENGTH),
    ("nir", "295053306312385", "Ce NIR n'est pas valide (clé de contrôle incorrecte)."),
    ("nir", "2 95 05 33 063 123 84", None),
    ("nir", "1 80 01 2A 012 345 66", None),
    ("passe", "court", "Ce champ compte 5 caractères, 12 au moins."),
    ("passe", "motdepasse123!", "Ce mot de passe est trop courant ou trop simple : choisissez-en "
                                "un autre, par exemple une phrase de plusieurs mots."),
    ("passe", "aaaaaaaaaaaaaa", "Ce mot de passe est trop courant ou trop simple : choisissez-en "
                                "un autre, par exemple une phrase de plusieurs mots."),
    ("passe", "123456789012", "Ce mot de passe est trop courant ou trop simple : choisissez-en "
                              "un autre, par exemple une phrase de plusieurs mots."),
    ("passe", "une girafe sur un vélo", None),
    ("annees", ["1", "6"], "Les années du cursus vont de la 1re à la 5e année."),
    ("annees", ["9"], "Choix non valide : 9."),
    ("annees", ["1", "2"], None),
    ("places", "0", "La valeur doit être comprise entre 1 et 30."),
    ("places", "12,5", "Indiquez un nombre entier, en chiffres."),
    ("places", "12", None),
    ("code", "ab", "Le code compte 3 lettres majuscules."),
    ("code", "ABC", None),
])
def test_named_validators_speak_french(tmp_path, field, value, message):
    definition = load(tmp_path, VALIDATORS_FORM)
    form = submit(definition, {field: value})
    assert form[field].errors == ([message] if message else [])
    assert all(not form[name].errors for name in definition.fields if name != field)


@pytest.mark.parametrize("birth, accepted", [
    (dt.date(2011, 3, 10), True),    # 15 today
    (dt.date(2011, 3, 11), False),   # 15 tomorrow
    (dt.date(1945, 3, 11), True),    # 80, 81 tomorrow
    (dt.date(1945, 3, 10), False),   # 81 today
    (dt.date(2027, 1, 1), False),    # not born yet
])
def test_birth_date_must_give_an_age_between_15_and_80_at_the_clock_s_today(
        tmp_path, birth, accepted):
    definition = load(tmp_path, VALIDATORS_FORM)
    with clock.frozen(dt.datetime.combine(dt.date(2026, 3, 10), PARIS_NOON)):
        form = submit(definition, {"naissance": birth.strftime("%d/%m/%Y")})
    expected = [] if accepted else [
        "La date de naissance doit correspondre à un âge entre 15 et 80 ans."]
    assert form["naissance"].errors == expected


def test_typed_values_are_normalised(tmp_path):
    """SIRET and NIR lose their spaces, phone numbers take the usual French layout, e-mail
    addresses are lower case."""
    definition = load(tmp_path, VALIDATORS_FORM)
    form = submit(definition, {"siret": SIRET_OK, "telephone": "+33 6 12 34 56 78",
                               "nir": "2 95 05 33 063 123 84",
                               "courriel": " Prenom.Nom@Exemple.FR "})
    values = form.values()
    assert values["siret"] == "73282932000074"
    assert values["telephone"] == "06 12 34 56 78"
    assert values["nir"] == "295053306312384"
    assert values["courriel"] == "prenom.nom@exemple.fr"


def test_required_messages_depend_on_the_kind_of_field(tmp_path):
    definition = load(tmp_path, """\
nom: essai
titre: Essai
groupes:
  - titre: Tout
    champs:
      - {nom: texte, libelle: Texte, type: texte, obligatoire: oui}
      - {nom: reponse, libelle: Réponse, type: oui_non}
      - {nom: liste, libelle: Liste, type: liste, obligatoire: oui, source: dispositifs}
      - {nom: cases, libelle: Cases, type: cases_a_cocher, obligatoire: oui, source: dispositifs}
      - {nom: accord, libelle: Accord, type: case_a_cocher, obligatoire: oui}
      - {nom: facultatif, libelle: Facultatif, type: oui_non, obligatoire: non}
""")
    form = submit(definition, {"texte": "   "})
    assert {name: form[name].errors for name in definition.fields} == {
        "texte": ["Ce champ est obligatoire."],
        "reponse": ["Répondez par Oui ou par Non."],
        "liste": ["Choisissez une valeur dans la liste."],
        "cases": ["Cochez au moins une case."],
        "accord": ["Cochez cette case pour continuer."],
        "facultatif": [],
    }


def test_oui_non_gives_booleans_and_checkboxes_give_lists(tmp_path):
    definition = load(tmp_path, VALIDATORS_FORM + """\
      - {nom: reponse, libelle: Réponse, type: oui_non}
""")
    form = submit(definition, {"reponse": "non", "annees": ["2", "1"],
                               "naissance": "2001-03-15"})
    values = form.values()
    assert values["reponse"] is False
    assert values["annees"] == [1, 2]
    assert values["naissance"] == dt.date(2001, 3, 15)


# --------------------------------------------------------------------------- conditional display

def test_cursus_years_are_required_only_when_apprenticeship_is_yes(app):
    """Apprenticeship "Oui" without a cursus year: the years are asked for; "Non": the
    ticked years are ignored and stored as an empty list."""
    definition = forms_engine.get_definition("formation")
    context = {"structure": create_structure()}
    base = {"intitule": "CAP Boulanger", "modalite_formation_continue": "non",
            "modalite_contrat_pro": "non"}

    form = submit(definition, {**base, "modalite_apprentissage": "oui"}, context)
    assert form.annees_cursus.errors == [
        "Cochez au moins une année du cursus ouverte à l'apprentissage."]
    assert form.is_visible("annees_cursus")

    form = submit(definition, {**base, "modalite_apprentissage": "non",
                               "annees_cursus": ["1", "9"]}, context)
    assert form.validate()
    assert not form.is_visible("annees_cursus")
    assert form.values()["annees_cursus"] == []

    formation = create_formation(modalite_apprentissage=True, annees_cursus=[1, 2])
    forms_engine.populate(definition, form, formation)
    assert formation.annees_cursus == []
    assert formation.modalite_apprentissage is False


def test_a_field_depending_on_a_hidden_field_is_hidden_too(tmp_path):
    definition = load(tmp_path, """\
nom: essai
titre: Essai
groupes:
  - titre: Tout
    champs:
      - {nom: a, libelle: A, type: oui_non}
      - {nom: b, libelle: B, type: oui_non, visible_si: {champ: a, egal: oui}}
      - {nom: c, libelle: C, type: texte, obligatoire: oui, visible_si: {champ: b, egal: oui}}
""")
    form = submit(definition, {"a": "non", "b": "oui"})
    assert form.validate()
    assert form.values() == {"a": False, "b": None, "c": None}
    form = submit(definition, {"a": "oui", "b": "oui"})
    assert form.c.errors == ["Ce champ est obligatoire."]


def test_a_loop_of_conditions_is_refused(tmp_path):
    with pytest.raises(FormDefinitionError, match="forment une boucle"):
        load(tmp_path, """\
nom: essai
titre: Essai
groupes:
  - titre: Tout
    champs:
      - {nom: a, libelle: A, type: oui_non, visible_si: {champ: b, egal: oui}}
      - {nom: b, libelle: B, type: oui_non, visible_si: {champ: a, egal: oui}}
""")


# --------------------------------------------------------------------------- choice sources

def test_database_sources_check_that_the_id_exists(app):
    definition = forms_engine.get_definition("session")
    structure = create_structure()
    commune = create_commune()
    good = {"date_debut": "2026-09-01", "date_fin": "2027-06-30", "mode_entree": "date_fixe"}
    form = submit(definition, {**good, "commune_id": str(commune.id)}, {"structure": structure})
    assert form.validate(), form.errors
    form = submit(definition, {**good, "commune_id": str(commune.id + 1000)},
                  {"structure": structure})
    assert form.commune_id.errors == ["Cette commune est introuvable."]
    form = submit(definition, {**good, "commune_id": "Bordeaux"}, {"structure": structure})
    assert form.commune_id.errors == ["Choisissez une valeur proposée dans la liste."]


def test_organisme_formateur_must_share_the_siren_of_the_user_s_structure(app):
    """The organisme formateur is one of the structure's own establishments (same SIREN),
    unless Cap Métiers allowed another SIREN; a value already set stays acceptable."""
    from backoffice import siret
    definition = forms_engine.get_definition("formation")
    structure = create_structure(siret=siret.make(55_000_001, 1))
    sibling = create_structure(siret=siret.make(55_000_001, 2))
    stranger = create_structure(siret=siret.make(66_000_001, 1))
    data = {"intitule": "BTS MCO", "modalite_formation_continue": "oui",
            "modalite_contrat_pro": "non", "modalite_apprentissage": "non"}

    form = submit(definition, {**data, "organisme_formateur_id": str(sibling.id)},
                  {"structure": structure})
    assert form.validate(), form.errors

    form = submit(definition, {**data, "organisme_formateur_id": str(stranger.id)},
                  {"structure": structure})
    assert form.organisme_formateur_id.errors == [
        "Cet organisme formateur n'est pas autorisé : il doit avoir le même numéro SIREN que "
        "votre structure (pour un autre SIREN, écrivez à apprentissage@cap-metiers.pro)."]

    formation = create_formation(structure=structure, organisme_formateur=stranger)
    form = forms_engine.build_form(definition, obj=formation, context={"structure": structure},
                                   formdata=MultiDict({**data, "organisme_formateur_id":
                                                       str(stranger.id)}),
                                   meta={"csrf": False})
    assert form.validate(), form.errors

    structure.autorisee_autre_siren = True
    form = submit(definition, {**data, "organisme_formateur_id": str(stranger.id)},
                  {"structure": structure})
    assert form.validate(), form.errors


def test_a_form_whose_source_needs_the_structure_cannot_be_built_without_it(app):
    with pytest.raises(FormContextError, match="besoin de « structure »"):
        forms_engine.build_form("formation", formdata=None)


def test_certification_must_exist(app):
    definition = forms_engine.get_definition("formation")
    data = {"intitule": "BTS MCO", "modalite_formation_continue": "oui",
            "modalite_contrat_pro": "non", "modalite_apprentissage": "non"}
    certification = create_certification()
    context = {"structure": create_structure()}
    assert submit(definition, {**data, "certification_id": str(certification.id)},
                  context).validate()
    form = submit(definition, {**data, "certification_id": str(certification.id + 99)}, context)
    assert form.certification_id.errors == [
        "Cette certification est introuvable dans le référentiel Certif Info."]


# --------------------------------------------------------------------------- populate / prefill

def test_populate_writes_columns_and_prefill_reads_them_back(app, db):
    definition = forms_engine.get_definition("formation")
    structure = create_structure()
    certification = create_certification()
    formation = create_formation(structure=structure)
    form = submit(definition, {
        "intitule": "  BTS Management commercial opérationnel  ",
        "certification_id": str(certification.id), "lien_web": "https://exemple.fr/bts",
        "dispositif": "apprentissage", "eligible_cpf": "y",
        "modalite_formation_continue": "non", "modalite_contrat_pro": "oui",
        "modalite_apprentissage": "oui", "annees_cursus": ["3", "1"],
        "organisme_formateur_id": str(structure.id)}, {"structure": structure})
    assert form.validate(), form.errors
    forms_engine.populate(definition, form, formation)
    db.session.commit()
    db.session.expire_all()

    formation = db.session.get(Formation, formation.id)
    assert formation.intitule == "BTS Management commercial opérationnel"
    assert formation.certification_id == certification.id
    assert formation.dispositif == "apprentissage"
    assert formation.eligible_cpf is True
    assert (formation.modalite_formation_continue, formation.modalite_contrat_pro,
            formation.modalite_apprentissage) == (False, True, True)
    assert formation.annees_cursus == [1, 3]
    assert formation.objectif is None
    assert formation.extra in ({}, None)

    initial = forms_engine.initial_values(definition, formation)
    assert initial["annees_cursus"] == [1, 3]
    assert initial["modalite_contrat_pro"] is True
    assert initial["organisme_formateur_id"] == structure.id


def test_an_optional_field_added_to_a_definition_lands_in_extra_without_python(
        app, db, tmp_path):
    """A policy owner adds two optional questions to a copy of formation.yaml: the form asks
    them, and the answers are stored in the formation's ``extra`` column (no migration),
    then shown again when the formation is edited."""
    directory = tmp_path / "forms"
    shutil.copytree(FORMS_DIR, directory)
    path = directory / "formation.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("\nexemples:", """
  - titre: Accessibilité
    champs:
      - nom: referent_handicap
        libelle: Référent handicap
        type: texte
        aide: Nom et coordonnées de la personne à contacter.
      - nom: prochaine_information_collective
        libelle: Prochaine information collective
        type: date

exemples:""", 1), encoding="utf-8")
    definition = forms_engine.load_definitions(directory)["formation"]
    structure = create_structure()
    formation = create_formation(structure=structure)

    form = submit(definition, {
        "intitule": "CAP Boulanger", "modalite_formation_continue": "oui",
        "modalite_contrat_pro": "non", "modalite_apprentissage": "non",
        "referent_handicap": "Mme Morel, 05 56 00 00 00",
        "prochaine_information_collective": "04/05/2026"}, {"structure": structure})
    assert form.validate(), form.errors
    forms_engine.populate(definition, form, formation)
    db.session.commit()
    db.session.expire_all()

    formation = db.session.get(Formation, formation.id)
    assert formation.extra == {"referent_handicap": "Mme Morel, 05 56 00 00 00",
                               "prochaine_information_collective": "2026-05-04"}
    assert formation.intitule == "CAP Boulanger"
    edit = forms_engine.build_form(definition, obj=formation, formdata=None,
                                   context={"structure": structure}, meta={"csrf": False})
    assert edit.referent_handicap.data == "Mme Morel, 05 56 00 00 00"
    assert edit.prochaine_information_collective.data == dt.date(2026, 5, 4)


def test_the_nir_is_never_shown_again_and_a_blank_keeps_it(app, db):
    """The NIR is encrypted by the model; the edit form never shows it, and leaving it blank
    keeps the stored number."""
    from tests.factories import create_candidate
    definition = forms_engine.get_definition("candidate")
    candidate = create_candidate()
    candidate.nir = "295053306312384"
    edit = forms_engine.build_form(definition, obj=candidate, formdata=None,
                                   meta={"csrf": False})
    assert edit.nir.data is None and edit.nom.data == candidate.nom

    data = {"civilite": "Mme", "nom": "Dupont", "prenom": "Élodie",
            "date_naissance": "17/05/1995", "inscrit_france_travail": "non", "nir": ""}
    form = submit(definition, data)
    assert form.validate(), form.errors
    forms_engine.populate(definition, form, candidate)
    assert candidate.nir == "295053306312384"
    assert candidate.nom_normalise == "dupont"

    form = submit(definition, {**data, "nir": "1 80 01 2A 012 345 66"})
    assert form.validate(), form.errors
    forms_engine.populate(definition, form, candidate)
    db.session.commit()
    assert candidate.nir == "180012A01234566"
    assert "2A012345" not in candidate.nir_chiffre
