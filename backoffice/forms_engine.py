"""Forms engine: the forms of OF staff and prescribers are data, in ``forms/*.yaml``.

One definition file describes one form in words a non-programmer can edit (see
``forms/README.md``): groups of fields, each with its French label, help text, type, whether
it is required, its choices (a list, or a named *source*), limits, named validators
(``siret``, ``code_postal``, ``telephone``…) and an optional conditional display
(``visible_si``). Each file also carries a few examples (input → expected outcome) that
the tests run.

What this module does:

* ``init_app(app)`` loads and checks every definition when the application starts
  (``load_definitions``); any mistake raises ``FormDefinitionError`` whose French message
  names the file, the line and the field, so a bad file stops start-up.
* ``form_class(definition)`` turns a definition into a Flask-WTF form class (CSRF
  included); ``build_form(name, obj=…, context=…)`` builds a form for a view, prefilled from
  ``obj`` (its columns and its ``extra`` JSON column) on a GET and from the request on a POST.
* Validation speaks French. Every field refuses control characters and an integer field
  a number the database cannot hold (``input_guard.BaseForm``, the base of every form);
  the id of a database source must be a positive integer within that range.
* A field hidden by its ``visible_si`` condition is neither
  required nor validated, and its value is dropped (``None``, ``[]`` or ``False``).
* ``Schema(definition).validate(data, context=…, current=…)`` (or ``clean(name, data,
  context=…, obj=…)``) checks *plain values* — strings as a browser or a CSV file sends
  them, or Python values — with every rule of the definition and returns ``Cleaned``
  (values, French errors by field). It is what services, the CSV import and tasks use;
  the WTForms form delegates its validation to it (its fields only parse the request),
  so a page and a service cannot disagree.
* ``apply_values(definition, values, obj)`` writes cleaned values back (``populate`` does
  it for a validated form): to the model column (or settable property, e.g.
  ``Candidate.nir``) of the same name, else to ``obj.extra`` — so an optional field added
  to a definition needs no Python and no migration.
* Choice sources are named in ``CHOICE_SOURCES``. Enum sources give a fixed list.
  Database sources (certifications, communes, organismes formateurs) are never loaded
  whole: the field is a text input holding an id, with a ``data-source`` attribute for a
  search widget, and the server checks that the id exists — and, for
  ``organismes_formateurs_meme_siren``, that it is in the set allowed by the form's context
  (``context={"structure": structure}``).

Rendering is ``templates/forms/macros.html`` (``render_definition_form``) with
``static/forms.js`` (conditional display, character counter).

A view::

    form = forms_engine.build_form("formation", obj=formation,
                                   context={"structure": current_membership().structure})
    if form.validate_on_submit():
        service.update_formation(formation, form.values(), actor=current_user)
        db.session.commit()
        return redirect(...)
    return render_template("catalogue/formation.html", form=form)
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import inspect as pyinspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from email_validator import EmailNotValidError, validate_email
from flask import Flask, current_app
from markupsafe import Markup
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.exc import NoInspectionAvailable
from stdnum.exceptions import InvalidChecksum
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fr import nir as stdnum_nir
from werkzeug.datastructures import MultiDict
from wtforms import fields as wtf
from wtforms import widgets

from backoffice import clock, crypto, models, passwords
from backoffice import siret as siret_helpers
from backoffice.extensions import db
from backoffice.input_guard import (CONTROL_MESSAGE, INTEGER_MAX, INTEGER_MESSAGE, INTEGER_MIN,
                                    BaseForm, has_control_characters)

DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "forms"
EXTENSION_KEY = "forms_engine"


class FormDefinitionError(ValueError):
    """A definition file is wrong; the message (French) names the file, line and field."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


class FormContextError(LookupError):
    """A view built a form without the context its choice sources need (a programming error)."""


# --------------------------------------------------------------------------- vocabulary

TEXT_TYPES = frozenset({"texte", "texte_long", "email", "url", "telephone", "cache",
                        "mot_de_passe"})
CHOICE_TYPES = frozenset({"liste", "radio", "cases_a_cocher"})
FIELD_TYPES = TEXT_TYPES | CHOICE_TYPES | {"entier", "date", "oui_non", "case_a_cocher"}
# The type already says which check applies: an ``email`` field is checked as an e-mail.
IMPLICIT_VALIDATORS = {"email": "email", "url": "url", "telephone": "telephone"}
# Types a length, a pattern or a counter apply to.
LENGTH_TYPES = TEXT_TYPES

REQUIRED_MESSAGES = {
    "oui_non": "Répondez par Oui ou par Non.",
    "liste": "Choisissez une valeur dans la liste.",
    "radio": "Choisissez une des réponses proposées.",
    "cases_a_cocher": "Cochez au moins une case.",
    "case_a_cocher": "Cochez cette case pour continuer.",
}
DEFAULT_REQUIRED_MESSAGE = "Ce champ est obligatoire."

# Columns that a form never writes: identity, state (the workflow owns it), bookkeeping.
PROTECTED_COLUMNS = frozenset({"id", "reference", "state", "version", "created_at",
                               "updated_at", "extra", "password_hash", "nir_chiffre",
                               "nom_normalise", "prenom_normalise"})

TOP_KEYS = {"nom", "titre", "modele", "introduction", "groupes", "exemples"}
GROUP_KEYS = {"titre", "aide", "champs"}
FIELD_KEYS = {"nom", "libelle", "aide", "type", "obligatoire", "message_obligatoire", "choix",
              "source", "longueur_min", "longueur_max", "min", "max", "motif", "message_motif",
              "validateurs", "visible_si", "defaut", "enregistre", "sensible", "identique_a",
              "posterieure_a", "indication"}
CONDITION_KEYS = {"champ", "contexte", "egal", "parmi"}
EXAMPLE_KEYS = {"titre", "aujourdhui", "contexte", "saisie", "valide", "erreurs", "valeurs"}
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")


def _as_bool(value: Any) -> bool | None:
    """YAML ``true``/``false`` or the French ``oui``/``non``; ``None`` when neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("oui", "non"):
        return value.strip().lower() == "oui"
    return None


# --------------------------------------------------------------------------- named checks

def _compact(value: str) -> str:
    return re.sub(r"[\s.]", "", value)


def _check_siret(value: str) -> str | None:
    if not re.fullmatch(r"\d{14}", value):
        return "Le SIRET doit compter 14 chiffres."
    if not siret_helpers.is_valid(value):
        return "Ce SIRET n'est pas valide (clé de contrôle incorrecte)."
    return None


def _check_code_postal(value: str) -> str | None:
    if not re.fullmatch(r"\d{5}", value):
        return "Le code postal compte 5 chiffres."
    return None


def _phone_digits(value: str) -> str:
    digits = re.sub(r"[\s.\-]", "", value)
    for prefix in ("+33(0)", "+33", "0033"):
        if digits.startswith(prefix):
            return "0" + digits[len(prefix):]
    return digits


def _check_telephone(value: str) -> str | None:
    if not re.fullmatch(r"0[1-9]\d{8}", _phone_digits(value)):
        return "Numéro de téléphone non valide (10 chiffres, ex. 05 56 00 00 00)."
    return None


def _normalise_telephone(value: str) -> str:
    """A valid French number as ``05 56 00 00 00``; anything else untouched (the check says why)."""
    digits = _phone_digits(value)
    if re.fullmatch(r"0[1-9]\d{8}", digits):
        return " ".join(digits[i:i + 2] for i in range(0, 10, 2))
    return value


def _check_url(value: str) -> str | None:
    if not value.lower().startswith(("http://", "https://")):
        return "L'adresse doit commencer par http:// ou https://."
    host = urlsplit(value).hostname or ""
    if "." not in host or re.search(r"\s", value):
        return "Cette adresse web n'est pas valide (ex. https://www.exemple.fr/formation)."
    return None


def _check_email(value: str) -> str | None:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return "Adresse électronique non valide (ex. prenom.nom@exemple.fr)."
    return None


def _check_birth_date(value: dt.date) -> str | None:
    today = clock.today()
    age = today.year - value.year - ((today.month, today.day) < (value.month, value.day))
    if not 15 <= age <= 80:
        return "La date de naissance doit correspondre à un âge entre 15 et 80 ans."
    return None


def _check_cursus_years(value: Any) -> str | None:
    years = value if isinstance(value, list) else [value]
    if any(not isinstance(y, int) or isinstance(y, bool) or not 1 <= y <= 5 for y in years):
        return "Les années du cursus vont de la 1re à la 5e année."
    return None


def _check_nir(value: str) -> str | None:
    number = stdnum_nir.compact(value)
    if len(number) != 15:
        return "Le NIR compte 15 caractères (13 chiffres et une clé de 2 chiffres)."
    try:
        stdnum_nir.validate(number)
    except InvalidChecksum:
        return "Ce NIR n'est pas valide (clé de contrôle incorrecte)."
    except StdnumError:
        return ("Ce NIR n'est pas valide : 13 chiffres (2A ou 2B pour la Corse) "
                "suivis d'une clé de 2 chiffres.")
    return None


@dataclass(frozen=True)
class NamedValidator:
    """A check usable by name in a definition (``validateurs: [siret]``)."""

    check: Callable[[Any], str | None]   # the value (never empty) → French error or None
    types: frozenset[str]                # field types it applies to
    normalise: Callable[[str], str] | None = None  # applied to the typed text first


_PLAIN_TEXT = frozenset({"texte", "cache", "email", "url", "telephone"})
VALIDATORS: dict[str, NamedValidator] = {
    "siret": NamedValidator(_check_siret, _PLAIN_TEXT, _compact),
    "code_postal": NamedValidator(_check_code_postal, _PLAIN_TEXT),
    "telephone": NamedValidator(_check_telephone, _PLAIN_TEXT, _normalise_telephone),
    "url": NamedValidator(_check_url, _PLAIN_TEXT),
    "email": NamedValidator(_check_email, _PLAIN_TEXT, str.lower),
    "nir": NamedValidator(_check_nir, _PLAIN_TEXT, stdnum_nir.compact),
    "date_naissance": NamedValidator(_check_birth_date, frozenset({"date"})),
    "annees_cursus": NamedValidator(_check_cursus_years,
                                    frozenset({"cases_a_cocher", "liste", "radio"})),
    "mot_de_passe_robuste": NamedValidator(passwords.check_password_policy, frozenset({"mot_de_passe"})),
}


# --------------------------------------------------------------------------- choice sources

@dataclass(frozen=True)
class EnumSource:
    """A fixed list of choices taken from one of the models' labelled enums."""

    enum: type

    def choices(self) -> list[tuple[str, str]]:
        return self.enum.choices()


@dataclass(frozen=True)
class DatabaseSource:
    """Choices in a database table, too many for a select: the field holds an id.

    ``restrict(context)`` returns extra SQL conditions the id must meet (the allowed set);
    ``needs`` lists the context keys it reads.
    """

    model: type
    not_found: str
    restrict: Callable[[Mapping[str, Any]], list] | None = None
    not_allowed: str = ""
    needs: tuple[str, ...] = ()

    def get(self, ident: int):
        return db.session.get(self.model, ident)

    def label(self, ident: int | None) -> str:
        obj = None if ident is None else self.get(ident)
        return "" if obj is None else str(obj)

    def check(self, ident: int, context: Mapping[str, Any]) -> str | None:
        if self.get(ident) is None:
            return self.not_found
        if self.restrict is not None:
            allowed = db.session.scalar(select(self.model.id).where(
                self.model.id == ident, *self.restrict(context)))
            if allowed is None:
                return self.not_allowed
        return None


def _same_siren_training_organisations(context: Mapping[str, Any]) -> list:
    structure = context["structure"]
    Structure = models.Structure
    conditions = [Structure.kind.in_([models.StructureKind.ORGANISME_FORMATION,
                                      models.StructureKind.MIXTE]),
                  Structure.active.is_(True)]
    if not structure.autorisee_autre_siren:
        conditions.append(Structure.siren == structure.siren)
    return conditions


CHOICE_SOURCES: dict[str, EnumSource | DatabaseSource] = {
    "dispositifs": EnumSource(models.Dispositif),
    "modes_entree": EnumSource(models.EntryMode),
    "civilites": EnumSource(models.Civilite),
    "types_prescripteur": EnumSource(models.PrescriberType),
    "types_structure": EnumSource(models.StructureKind),
    "etapes_suivi": EnumSource(models.FollowUpStep),
    "certifications": DatabaseSource(
        models.Certification,
        not_found="Cette certification est introuvable dans le référentiel Certif Info."),
    "communes": DatabaseSource(models.Commune, not_found="Cette commune est introuvable."),
    "organismes_formateurs_meme_siren": DatabaseSource(
        models.Structure,
        not_found="Cet organisme est introuvable.",
        restrict=_same_siren_training_organisations,
        not_allowed=("Cet organisme formateur n'est pas autorisé : il doit avoir le même "
                     "numéro SIREN que votre structure (pour un autre SIREN, écrivez à "
                     "apprentissage@cap-metiers.pro)."),
        needs=("structure",)),
}


def register_choice_source(name: str, source: EnumSource | DatabaseSource) -> None:
    """Add a choice source (before ``init_app`` loads the definitions that name it)."""
    CHOICE_SOURCES[name] = source


# --------------------------------------------------------------------------- definitions

def _paragraphs(text: str | None) -> list[str]:
    """A text written in a file, split on its blank lines."""
    return [part.strip() for part in re.split(r"\n\s*\n", text or "") if part.strip()]


@dataclass(frozen=True)
class Condition:
    """``visible_si``: on another field's value, or on a flag of the form's context."""

    field: str | None
    context: str | None
    values: tuple  # the field is shown when the value is one of these


@dataclass(frozen=True)
class FieldDef:
    name: str
    label: str
    type: str
    help: str = ""
    required: bool = False
    required_message: str = DEFAULT_REQUIRED_MESSAGE
    choices: tuple = ()          # ((code, label), …) for enum sources and ``choix``
    source: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    counter: bool = False        # show "0 / 300" under the field
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    pattern_message: str | None = None
    validators: tuple[str, ...] = ()
    visible_if: Condition | None = None
    default: Any = None
    stored: bool = True
    sensitive: bool = False
    same_as: str | None = None
    not_before: str | None = None
    placeholder: str | None = None
    line: int | None = None

    @property
    def is_reference(self) -> bool:
        return isinstance(CHOICE_SOURCES.get(self.source or ""), DatabaseSource)

    @property
    def help_paragraphs(self) -> list[str]:
        return _paragraphs(self.help)

    @property
    def empty_value(self) -> Any:
        return {"cases_a_cocher": [], "case_a_cocher": False}.get(self.type)

    def html_value(self, value: Any) -> str:
        """How a value travels in HTML (radio value, data attribute)."""
        if self.type == "oui_non" and isinstance(value, bool):
            return "oui" if value else "non"
        if self.type == "case_a_cocher":
            return "y" if value else ""
        return "" if value is None else str(value)


@dataclass(frozen=True)
class Group:
    title: str
    help: str
    fields: tuple[FieldDef, ...]

    @property
    def help_paragraphs(self) -> list[str]:
        return _paragraphs(self.help)


@dataclass(frozen=True)
class Example:
    title: str
    today: dt.date | None
    context: dict
    input: dict
    valid: bool
    errors: dict
    values: dict
    line: int | None


@dataclass(eq=False)
class FormDefinition:
    name: str
    title: str
    path: Path
    model: type | None
    introduction: str
    groups: tuple[Group, ...]
    examples: tuple[Example, ...] = ()
    fields: dict[str, FieldDef] = dataclasses.field(init=False)
    _form_class: type | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.fields = {f.name: f for group in self.groups for f in group.fields}

    @property
    def introduction_paragraphs(self) -> list[str]:
        return _paragraphs(self.introduction)


# --------------------------------------------------------------------------- YAML loading

class _Mapping(dict):
    line: int | None = None


class _Loader(yaml.SafeLoader):
    """Safe YAML that remembers the line of every mapping and refuses duplicate keys."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    mapping = _Mapping()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool, dt.date)):
            raise yaml.constructor.ConstructorError(
                None, None, "clé non valide", key_node.start_mark)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"clé « {key} » en double", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Problems:
    """Collects the mistakes of one file, each with its line and field."""

    def __init__(self, path: Path):
        self.where = f"{path.parent.name}/{path.name}"
        self.items: list[str] = []

    def add(self, message: str, *, line: int | None = None, field: str | None = None) -> None:
        parts = [self.where]
        if line:
            parts.append(f"ligne {line}")
        if field:
            parts.append(f"champ « {field} »")
        self.items.append(f"{', '.join(parts)} : {message}")

    def raise_if_any(self) -> None:
        if not self.items:
            return
        if len(self.items) == 1:
            raise FormDefinitionError(f"Définition de formulaire incorrecte — {self.items[0]}",
                                      self.items)
        raise FormDefinitionError(
            f"Définition de formulaire incorrecte ({len(self.items)} erreurs) :\n"
            + "\n".join(f"- {item}" for item in self.items), self.items)


def _line(value: Any, default: int | None = None) -> int | None:
    return getattr(value, "line", None) or default


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _positive_int(raw: Mapping, key: str, problems: _Problems, name: str, *,
                  allow_zero: bool = False, signed: bool = False) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or \
            (not signed and (value < 0 or (value == 0 and not allow_zero))):
        kind = "un nombre entier" if signed else "un nombre entier positif"
        problems.add(f"« {key} » doit être {kind} (reçu : {value!r}).",
                     line=_line(raw), field=name)
        return None
    return value


def _parse_choices(raw: Mapping, problems: _Problems, name: str) -> tuple:
    items = raw.get("choix")
    if not isinstance(items, list) or not items:
        problems.add("« choix » doit être une liste d'éléments « code » et « libelle ».",
                     line=_line(raw), field=name)
        return ()
    choices = []
    for item in items:
        if not isinstance(item, Mapping) or set(item) != {"code", "libelle"}:
            problems.add("chaque choix s'écrit « - code: … » puis « libelle: … ».",
                         line=_line(item, _line(raw)), field=name)
            continue
        code = item["code"]
        if isinstance(code, bool) or not isinstance(code, (str, int)):
            problems.add(f"code de choix non valide : {code!r} (écrivez-le entre guillemets).",
                         line=_line(item), field=name)
            continue
        choices.append((code, _text(item["libelle"])))
    codes = [c for c, _ in choices]
    if len(set(codes)) != len(codes):
        problems.add("deux choix ont le même code.", line=_line(raw), field=name)
    if len({type(c) for c in codes}) > 1:
        problems.add("les codes des choix doivent être tous des nombres ou tous des textes.",
                     line=_line(raw), field=name)
    return tuple(choices)


def _parse_field(raw: Any, problems: _Problems, position: str) -> FieldDef | None:
    if not isinstance(raw, Mapping):
        problems.add(f"{position} : un champ s'écrit comme une liste de clés "
                     "(nom, libelle, type…).", line=_line(raw))
        return None
    line = _line(raw)
    name = raw.get("nom")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.add(f"{position} : « nom » manquant ou non valide ({name!r}) ; lettres "
                     "minuscules, chiffres et _ uniquement, en commençant par une lettre.",
                     line=line)
        return None
    if name in _RESERVED_NAMES:
        problems.add("ce nom est réservé par le moteur de formulaires : choisissez-en un autre.",
                     line=line, field=name)
    for key in sorted(set(raw) - FIELD_KEYS):
        problems.add(f"clé « {key} » inconnue (clés possibles : {', '.join(sorted(FIELD_KEYS))}).",
                     line=line, field=name)
    label = _text(raw.get("libelle"))
    if not label:
        problems.add("« libelle » manquant.", line=line, field=name)
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in FIELD_TYPES:
        problems.add(f"type « {kind} » inconnu (types possibles : "
                     f"{', '.join(sorted(FIELD_TYPES))}).", line=line, field=name)
        return None

    flags = {}
    for key, default in (("obligatoire", kind == "oui_non"), ("enregistre", True),
                         ("sensible", False)):
        value = raw.get(key, default)
        flags[key] = _as_bool(value)
        if flags[key] is None:
            problems.add(f"« {key} » vaut oui ou non (reçu : {value!r}).", line=line, field=name)
            flags[key] = default

    choices: tuple = ()
    source = raw.get("source")
    if kind in CHOICE_TYPES:
        if ("choix" in raw) == (source is not None):
            problems.add(f"un champ de type « {kind} » a soit « choix », soit « source ».",
                         line=line, field=name)
        elif source is not None:
            found = CHOICE_SOURCES.get(source) if isinstance(source, str) else None
            if found is None:
                problems.add(f"source de choix « {source} » inconnue (sources possibles : "
                             f"{', '.join(sorted(CHOICE_SOURCES))}).", line=line, field=name)
            elif isinstance(found, DatabaseSource) and kind != "liste":
                problems.add(f"la source « {source} » est une table de la base : elle "
                             "s'utilise avec le type « liste ».", line=line, field=name)
            elif isinstance(found, EnumSource):
                choices = tuple(found.choices())
        else:
            choices = _parse_choices(raw, problems, name)
    elif "choix" in raw or source is not None:
        problems.add(f"« choix » et « source » ne s'utilisent qu'avec les types "
                     f"{', '.join(sorted(CHOICE_TYPES))}.", line=line, field=name)
        source = None

    min_length = _positive_int(raw, "longueur_min", problems, name)
    max_length = _positive_int(raw, "longueur_max", problems, name)
    minimum = _positive_int(raw, "min", problems, name, signed=True)
    maximum = _positive_int(raw, "max", problems, name, signed=True)
    if (min_length is not None or max_length is not None) and kind not in LENGTH_TYPES:
        problems.add("« longueur_min » et « longueur_max » ne s'utilisent qu'avec un champ "
                     "de texte.", line=line, field=name)
    if min_length and max_length and min_length > max_length:
        problems.add("« longueur_min » dépasse « longueur_max ».", line=line, field=name)
    if (minimum is not None or maximum is not None) and kind != "entier":
        problems.add("« min » et « max » ne s'utilisent qu'avec le type « entier ».",
                     line=line, field=name)
    if minimum is not None and maximum is not None and minimum > maximum:
        problems.add("« min » dépasse « max ».", line=line, field=name)

    pattern = raw.get("motif")
    pattern_message = _text(raw.get("message_motif")) or None
    if pattern is not None:
        if kind not in LENGTH_TYPES:
            problems.add("« motif » ne s'utilise qu'avec un champ de texte.", line=line, field=name)
        try:
            re.compile(str(pattern))
        except re.error as exc:
            problems.add(f"« motif » n'est pas une expression régulière valide ({exc}).",
                         line=line, field=name)
        if not pattern_message:
            problems.add("un « motif » doit être accompagné de son « message_motif » en français.",
                         line=line, field=name)

    raw_validators = raw.get("validateurs") or []
    if isinstance(raw_validators, str):
        raw_validators = [raw_validators]
    if not isinstance(raw_validators, list):
        problems.add("« validateurs » est une liste de noms, ex. [siret].", line=line, field=name)
        raw_validators = []
    validator_names = []
    implicit = IMPLICIT_VALIDATORS.get(kind)
    for validator in ([implicit] if implicit else []) + list(raw_validators):
        named = VALIDATORS.get(validator) if isinstance(validator, str) else None
        if named is None:
            problems.add(f"validateur « {validator} » inconnu (validateurs possibles : "
                         f"{', '.join(sorted(VALIDATORS))}).", line=line, field=name)
        elif kind not in named.types:
            problems.add(f"le validateur « {validator} » ne s'applique pas à un champ de type "
                         f"« {kind} ».", line=line, field=name)
        elif validator not in validator_names:
            validator_names.append(validator)

    if flags["sensible"] and kind not in ("texte", "cache"):
        problems.add("« sensible » ne s'utilise qu'avec un champ de type « texte ».",
                     line=line, field=name)
    if raw.get("posterieure_a") is not None and kind != "date":
        problems.add("« posterieure_a » ne s'utilise qu'avec le type « date ».",
                     line=line, field=name)

    required_message = _text(raw.get("message_obligatoire")) or \
        REQUIRED_MESSAGES.get(kind, DEFAULT_REQUIRED_MESSAGE)
    return FieldDef(
        name=name, label=label, type=kind, help=_text(raw.get("aide")),
        required=flags["obligatoire"], required_message=required_message, choices=choices,
        source=source if kind in CHOICE_TYPES else None, min_length=min_length,
        max_length=max_length,
        counter=max_length is not None and kind in ("texte", "texte_long"),
        minimum=minimum, maximum=maximum,
        pattern=None if pattern is None else str(pattern), pattern_message=pattern_message,
        validators=tuple(validator_names), default=raw.get("defaut"),
        stored=flags["enregistre"], sensitive=flags["sensible"],
        same_as=raw.get("identique_a"), not_before=raw.get("posterieure_a"),
        placeholder=_text(raw.get("indication")) or None, line=line,
        # Kept as written for now: _check_conditions parses it once every field is known.
        visible_if=raw.get("visible_si"))


def _convert(fdef: FieldDef, value: Any) -> Any:
    """A value written in a file (``defaut``, ``egal``, ``valeurs``) or stored in ``extra``,
    as the form gives it. Raises ValueError when it cannot be one."""
    if value is None:
        return fdef.empty_value
    kind = fdef.type
    if kind in ("oui_non", "case_a_cocher"):
        result = _as_bool(value)
        if result is None:
            raise ValueError(value)
        return result
    if kind == "date":
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    if kind == "entier" or fdef.is_reference:
        if isinstance(value, bool):
            raise ValueError(value)
        return int(value)
    if kind == "cases_a_cocher":
        items = value if isinstance(value, list) else [value]
        return [_convert_code(fdef, item) for item in items]
    if kind in ("liste", "radio"):
        return _convert_code(fdef, value)
    return str(value)


def _convert_code(fdef: FieldDef, value: Any) -> Any:
    for code, _ in fdef.choices:
        if fdef.html_value(code) == fdef.html_value(value):
            return code
    raise ValueError(value)


def _check_conditions(fields: dict[str, FieldDef], problems: _Problems) -> dict[str, FieldDef]:
    result = {}
    for name, fdef in fields.items():
        raw = fdef.visible_if
        if raw is None:
            result[name] = fdef
            continue
        line = _line(raw, fdef.line)
        condition = None
        if not isinstance(raw, Mapping) or ("champ" in raw) == ("contexte" in raw) \
                or set(raw) - CONDITION_KEYS or ("egal" in raw and "parmi" in raw):
            problems.add("« visible_si » s'écrit {champ: autre_champ, egal: valeur} (ou parmi: "
                         "[valeurs]) ou {contexte: indicateur}.", line=line, field=name)
        elif "champ" in raw:
            other = fields.get(raw["champ"]) if isinstance(raw["champ"], str) else None
            if other is None:
                problems.add(f"« visible_si » porte sur le champ « {raw['champ']} », qui "
                             "n'existe pas dans ce formulaire.", line=line, field=name)
            elif other.name == name:
                problems.add("« visible_si » ne peut pas porter sur le champ lui-même.",
                             line=line, field=name)
            elif "egal" not in raw and "parmi" not in raw:
                problems.add("« visible_si » doit dire la valeur attendue (egal: … ou parmi: […]).",
                             line=line, field=name)
            else:
                expected = raw["parmi"] if "parmi" in raw else [raw["egal"]]
                # One value each: a code of a list or of checkboxes, oui/non, a number…
                convert = _convert_code if other.type in CHOICE_TYPES and not other.source \
                    or other.type == "cases_a_cocher" else _convert
                try:
                    if not isinstance(expected, list) or not expected:
                        raise ValueError(expected)
                    values = tuple(convert(other, v) for v in expected)
                except (ValueError, TypeError):
                    problems.add(f"« visible_si » attend une valeur impossible pour le champ "
                                 f"« {other.name} » ({expected!r}).", line=line, field=name)
                else:
                    condition = Condition(field=other.name, context=None, values=values)
        else:
            flag = raw["contexte"]
            expected = raw.get("egal", True)
            if not isinstance(flag, str) or not NAME_RE.match(flag) or "parmi" in raw:
                problems.add(f"indicateur de contexte non valide : {flag!r}.",
                             line=line, field=name)
            else:
                boolean = _as_bool(expected)
                condition = Condition(field=None, context=flag,
                                      values=(expected if boolean is None else boolean,))
        result[name] = dataclasses.replace(fdef, visible_if=condition)

    # No loop of conditions (a shown only if b, b only if a).
    for name in result:
        seen, current = {name}, result[name].visible_if
        while current is not None and current.field is not None:
            if current.field in seen:
                problems.add("les conditions « visible_si » forment une boucle.",
                             line=result[name].line, field=name)
                break
            seen.add(current.field)
            current = result[current.field].visible_if
    return result


def _model_columns(model: type) -> tuple[dict, set[str]]:
    mapper = sa_inspect(model)
    return ({attr.key: attr.columns[0] for attr in mapper.column_attrs},
            set(mapper.relationships.keys()))


def _settable_property(model: type, name: str) -> bool:
    attribute = pyinspect.getattr_static(model, name, None)
    return isinstance(attribute, property) and attribute.fset is not None


def _is_model_attribute(obj: Any, name: str) -> bool:
    """Whether ``obj`` takes ``name`` as an attribute (mapped column or settable property);
    otherwise the answer goes to ``obj.extra``."""
    if name in PROTECTED_COLUMNS:
        return False
    try:
        columns, _ = _model_columns(type(obj))
    except NoInspectionAvailable:  # a plain object (a view's own data holder)
        return hasattr(obj, name) and not callable(getattr(obj, name))
    return name in columns or _settable_property(type(obj), name)


def _check_against_model(model: type, fields: dict[str, FieldDef],
                         problems: _Problems) -> dict[str, FieldDef]:
    columns, relationships = _model_columns(model)
    has_extra = "extra" in columns
    result = {}
    for name, fdef in fields.items():
        column = columns.get(name)
        if fdef.stored and name in PROTECTED_COLUMNS:
            problems.add(f"« {name} » ne se saisit pas dans un formulaire (le logiciel le "
                         "gère seul).", line=fdef.line, field=name)
        elif fdef.stored and name in relationships:
            problems.add(f"« {name} » est une relation de {model.__name__} : nommez le champ "
                         f"comme sa colonne (ex. « {name}_id »).", line=fdef.line, field=name)
        elif fdef.stored and column is None and not _settable_property(model, name) \
                and not has_extra:
            problems.add(f"{model.__name__} n'a pas de colonne « {name} » ni de colonne « extra » "
                         "pour les réponses supplémentaires : ajoutez « enregistre: non » si la "
                         "page traite ce champ elle-même.", line=fdef.line, field=name)
        if fdef.stored and column is not None and name not in PROTECTED_COLUMNS:
            may_be_empty = not fdef.required or fdef.visible_if is not None
            if not column.nullable and column.server_default is None and may_be_empty \
                    and fdef.type not in ("case_a_cocher", "cases_a_cocher"):
                problems.add(f"la colonne « {name} » de {model.__name__} ne peut pas rester vide : "
                             "le champ doit être obligatoire et toujours affiché.",
                             line=fdef.line, field=name)
            length = getattr(column.type, "length", None)
            if length and fdef.type in LENGTH_TYPES:
                if fdef.max_length is not None and fdef.max_length > length:
                    problems.add(f"« longueur_max » ({fdef.max_length}) dépasse ce que la "
                                 f"colonne accepte ({length}).", line=fdef.line, field=name)
                elif fdef.max_length is None:
                    fdef = dataclasses.replace(fdef, max_length=length)
        result[name] = fdef
    return result


def _check_references(fields: dict[str, FieldDef], problems: _Problems) -> None:
    for name, fdef in fields.items():
        for key, other in (("identique_a", fdef.same_as), ("posterieure_a", fdef.not_before)):
            if other is None:
                continue
            if not isinstance(other, str) or other not in fields or other == name:
                problems.add(f"« {key} » porte sur le champ « {other} », qui n'existe pas dans ce "
                             "formulaire.", line=fdef.line, field=name)
            elif key == "posterieure_a" and fields[other].type != "date":
                problems.add(f"« posterieure_a » porte sur « {other} », qui n'est pas une date.",
                             line=fdef.line, field=name)
        if fdef.default is not None:
            try:
                _convert(fdef, fdef.default)
            except (ValueError, TypeError):
                problems.add(f"« defaut » non valide pour ce champ : {fdef.default!r}.",
                             line=fdef.line, field=name)


def _parse_examples(raw: Any, fields: dict[str, FieldDef], problems: _Problems) -> tuple:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add("« exemples » est une liste.", line=_line(raw))
        return ()
    examples = []
    for item in raw:
        line = _line(item)
        if not isinstance(item, Mapping):
            problems.add("un exemple a un titre, une saisie et un résultat attendu.", line=line)
            continue
        title = _text(item.get("titre")) or f"exemple ligne {line}"
        for key in sorted(set(item) - EXAMPLE_KEYS):
            problems.add(f"exemple « {title} » : clé « {key} » inconnue.", line=line)
        valid = _as_bool(item.get("valide"))
        if valid is None:
            problems.add(f"exemple « {title} » : « valide » vaut oui ou non.", line=line)
            continue
        sections = {}
        for key in ("saisie", "erreurs", "valeurs", "contexte"):
            section = item.get(key) or {}
            if not isinstance(section, Mapping):
                problems.add(f"exemple « {title} » : « {key} » est une liste de clés.", line=line)
                section = {}
            if key != "contexte":
                for name in section:
                    if name not in fields:
                        problems.add(f"exemple « {title} » : « {key} » nomme le champ « {name} », "
                                     "qui n'existe pas.", line=_line(section, line))
            sections[key] = dict(section)
        if not valid and not sections["erreurs"]:
            problems.add(f"exemple « {title} » : un exemple refusé dit ses « erreurs ».", line=line)
        today = item.get("aujourdhui")
        if today is not None and not isinstance(today, dt.date):
            problems.add(f"exemple « {title} » : « aujourdhui » est une date (2026-01-15).",
                         line=line)
            today = None
        examples.append(Example(title=title, today=today, context=sections["contexte"],
                                input=sections["saisie"], valid=valid,
                                errors=sections["erreurs"], values=sections["valeurs"],
                                line=line))
    return tuple(examples)


def load_definition(path: Path) -> FormDefinition:
    """Read and check one definition file; raise ``FormDefinitionError`` on any mistake."""
    path = Path(path)
    problems = _Problems(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.add(f"le fichier n'est pas du YAML valide ({getattr(exc, 'problem', exc)}).",
                     line=None if mark is None else mark.line + 1)
        problems.raise_if_any()
    if not isinstance(data, Mapping):
        problems.add("le fichier doit contenir nom, titre et groupes.")
        problems.raise_if_any()
    for key in sorted(set(data) - TOP_KEYS):
        problems.add(f"clé « {key} » inconnue (clés possibles : {', '.join(sorted(TOP_KEYS))}).",
                     line=_line(data))
    if data.get("nom") != path.stem:
        problems.add(f"« nom » doit être le nom du fichier sans « .yaml » (« {path.stem} »).",
                     line=_line(data))
    title = _text(data.get("titre"))
    if not title:
        problems.add("« titre » manquant.", line=_line(data))
    model = None
    model_name = data.get("modele")
    if model_name is not None:
        model = getattr(models, str(model_name), None)
        if not (isinstance(model, type) and issubclass(model, db.Model)):
            problems.add(f"modèle « {model_name} » inconnu.", line=_line(data))
            model = None

    groups_raw = data.get("groupes")
    if not isinstance(groups_raw, list) or not groups_raw:
        problems.add("« groupes » doit être une liste d'au moins un groupe.", line=_line(data))
        groups_raw = []
    parsed: list[tuple[str, str, list[FieldDef]]] = []
    seen: dict[str, int | None] = {}
    for number, group in enumerate(groups_raw, start=1):
        if not isinstance(group, Mapping):
            problems.add(f"groupe n° {number} : un groupe a un « titre » et des « champs ».")
            continue
        for key in sorted(set(group) - GROUP_KEYS):
            problems.add(f"groupe n° {number} : clé « {key} » inconnue.", line=_line(group))
        group_title = _text(group.get("titre"))
        if not group_title:
            problems.add(f"groupe n° {number} : « titre » manquant.", line=_line(group))
        fields_raw = group.get("champs")
        if not isinstance(fields_raw, list) or not fields_raw:
            problems.add(f"groupe « {group_title or number} » : « champs » doit être une liste "
                         "d'au moins un champ.", line=_line(group))
            fields_raw = []
        fields = []
        for index, raw in enumerate(fields_raw, start=1):
            fdef = _parse_field(raw, problems,
                                f"champ n° {index} du groupe « {group_title or number} »")
            if fdef is None:
                continue
            if fdef.name in seen:
                problems.add(f"champ en double (déjà défini ligne {seen[fdef.name]}).",
                             line=fdef.line, field=fdef.name)
                continue
            seen[fdef.name] = fdef.line
            fields.append(fdef)
        parsed.append((group_title, _text(group.get("aide")), fields))

    all_fields = {f.name: f for _, _, fields in parsed for f in fields}
    all_fields = _check_conditions(all_fields, problems)
    _check_references(all_fields, problems)
    if model is not None:
        all_fields = _check_against_model(model, all_fields, problems)
    examples = _parse_examples(data.get("exemples"), all_fields, problems)
    problems.raise_if_any()

    groups = tuple(Group(title=t, help=h, fields=tuple(all_fields[f.name] for f in fields))
                   for t, h, fields in parsed)
    definition = FormDefinition(name=path.stem, title=title, path=path, model=model,
                                introduction=_text(data.get("introduction")), groups=groups,
                                examples=examples)
    form_class(definition)
    return definition


def load_definitions(directory: Path | str) -> dict[str, FormDefinition]:
    """Every ``*.yaml`` of ``directory``, by form name. All files are checked and all their
    mistakes reported together in one ``FormDefinitionError``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FormDefinitionError(
            f"Dossier des définitions de formulaires introuvable : {directory}")
    definitions, problems = {}, []
    for path in sorted(directory.glob("*.yaml")):
        try:
            definitions[path.stem] = load_definition(path)
        except FormDefinitionError as exc:
            problems.extend(exc.problems)
    if len(problems) == 1:
        raise FormDefinitionError(f"Définition de formulaire incorrecte — {problems[0]}", problems)
    if problems:
        raise FormDefinitionError(
            f"Définitions de formulaires incorrectes ({len(problems)} erreurs) :\n"
            + "\n".join(f"- {p}" for p in problems), problems)
    return definitions


def init_app(app: Flask) -> None:
    """Load and check every definition of ``FORMS_DIR`` (default: ``forms/``)."""
    directory = app.config.get("FORMS_DIR") or DEFAULT_DIRECTORY
    app.extensions[EXTENSION_KEY] = load_definitions(directory)


def get_definition(name: str) -> FormDefinition:
    try:
        return current_app.extensions[EXTENSION_KEY][name]
    except KeyError:
        raise LookupError(f"Formulaire « {name} » inconnu (aucun fichier forms/{name}.yaml).") \
            from None


# --------------------------------------------------------------------------- plain values

# What an input must look like before any rule runs (shared by the WTForms fields below,
# which parse what a browser sent, and by ``Schema``, which parses plain values).
INTEGER_TEXT_MESSAGE = "Indiquez un nombre entier, en chiffres."
DATE_MESSAGE = "Indiquez une date valide au format jj/mm/aaaa."
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y")
CHOICE_MESSAGE = "Choisissez une valeur dans la liste proposée."
REFERENCE_MESSAGE = "Choisissez une valeur proposée dans la liste."
_FALSE_TEXTS = frozenset({"", "false", "non", "n", "0", "off"})


def _parse_integer(raw: Any) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise ValueError(INTEGER_TEXT_MESSAGE)
    if isinstance(raw, int):
        return raw
    text = re.sub(r"\s", "", str(raw))
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(INTEGER_TEXT_MESSAGE) from None


def _parse_date(raw: Any) -> dt.date | None:
    if raw is None:
        return None
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    text = (" ".join(raw) if isinstance(raw, (list, tuple)) else str(raw)).strip()
    if not text:
        return None
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(DATE_MESSAGE)


def _choice_text(fdef: FieldDef, raw: Any) -> str:
    return raw.strip() if isinstance(raw, str) else fdef.html_value(raw)


def _field_choices(fdef: FieldDef) -> tuple:
    return ((True, "Oui"), (False, "Non")) if fdef.type == "oui_non" else fdef.choices


def _parse_code(fdef: FieldDef, raw: Any) -> Any:
    text = "" if raw is None else _choice_text(fdef, raw)
    if text == "":
        return None
    for code, _ in _field_choices(fdef):
        if fdef.html_value(code) == text:
            return code
    raise ValueError(CHOICE_MESSAGE)


def _parse_codes(fdef: FieldDef, raw: Any) -> list:
    items = raw if isinstance(raw, (list, tuple)) else ([] if raw is None else [raw])
    texts = [text for text in (_choice_text(fdef, item) for item in items) if text]
    known = {fdef.html_value(code) for code, _ in fdef.choices}
    unknown = [text for text in texts if text not in known]
    if unknown:
        raise ValueError(f"Choix non valide : {', '.join(unknown)}.")
    return [code for code, _ in fdef.choices if fdef.html_value(code) in set(texts)]


def _parse_reference(raw: Any) -> int | None:
    if raw is None:
        return None
    text = str(raw).strip() if not isinstance(raw, bool) else "?"
    if not text:
        return None
    # An id is a positive integer the id column can hold (a larger one is no row).
    if not (text.isascii() and text.isdigit()) or int(text) > INTEGER_MAX:
        raise ValueError(REFERENCE_MESSAGE)
    return int(text)


def _parse_checkbox(raw: Any) -> bool:
    if isinstance(raw, str):
        return raw.strip().lower() not in _FALSE_TEXTS
    return bool(raw)


def _parse_text(fdef: FieldDef, raw: Any) -> str | None:
    if raw is None:
        return None
    text = raw if isinstance(raw, str) else str(raw)
    text = (text or None) if fdef.type == "mot_de_passe" else (text.strip() or None)
    for name in fdef.validators:
        normalise = VALIDATORS[name].normalise
        if normalise is not None and text is not None:
            text = normalise(text)
    return text


def parse_value(fdef: FieldDef, raw: Any) -> Any:
    """A plain value (what a browser or a CSV file sends, or a Python value) as the field
    holds it: str (stripped, normalised), int, date, bool, a code or a list of codes; the
    empty value for nothing. Raises ``ValueError`` with the French message otherwise."""
    texts = raw if isinstance(raw, (list, tuple)) else [raw]
    if any(has_control_characters(text) for text in texts):
        raise ValueError(CONTROL_MESSAGE)
    kind = fdef.type
    if fdef.is_reference:
        return _parse_reference(raw)
    if kind in LENGTH_TYPES:
        return _parse_text(fdef, raw)
    if kind == "entier":
        value = _parse_integer(raw)
        if value is not None and not INTEGER_MIN <= value <= INTEGER_MAX:
            raise ValueError(INTEGER_MESSAGE)
        return value
    if kind == "date":
        return _parse_date(raw)
    if kind == "case_a_cocher":
        return _parse_checkbox(raw)
    if kind == "cases_a_cocher":
        return _parse_codes(fdef, raw)
    return _parse_code(fdef, raw)


def _is_empty_value(fdef: FieldDef, value: Any) -> bool:
    if fdef.type == "case_a_cocher":
        return not value
    return value is None or value == "" or value == []


def _condition_holds(definition: FormDefinition, condition: Condition,
                     values: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    if condition.context is not None:
        value = context.get(condition.context)
        expected = condition.values[0]
        return bool(value) == expected if isinstance(expected, bool) else value == expected
    fdef = definition.fields[condition.field]
    value = values.get(condition.field)
    current = value if isinstance(value, list) else [value]
    wanted = {fdef.html_value(v) for v in condition.values}
    return any(fdef.html_value(v) in wanted for v in current)


def _is_visible(definition: FormDefinition, name: str, values: Mapping[str, Any],
                context: Mapping[str, Any]) -> bool:
    """Whether the field is shown: its condition, and the condition of the field it
    depends on, hold for ``values`` and ``context``."""
    condition = definition.fields[name].visible_if
    while condition is not None:
        if not _condition_holds(definition, condition, values, context):
            return False
        if condition.field is None:
            return True
        condition = definition.fields[condition.field].visible_if
    return True


def _length_check(fdef: FieldDef) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        n = len(value)
        if fdef.max_length is not None and n > fdef.max_length:
            return f"Ce champ compte {n} caractères, {fdef.max_length} au plus."
        if fdef.min_length is not None and n < fdef.min_length:
            return f"Ce champ compte {n} caractère{'s' if n > 1 else ''}, " \
                   f"{fdef.min_length} au moins."
        return None
    return check


def _range_check(fdef: FieldDef) -> Callable[[int], str | None]:
    def check(value: int) -> str | None:
        low, high = fdef.minimum, fdef.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                return f"La valeur doit être comprise entre {low} et {high}."
            if low is not None:
                return f"La valeur doit être au moins {low}."
            return f"La valeur doit être au plus {high}."
        return None
    return check


def _pattern_check(fdef: FieldDef) -> Callable[[str], str | None]:
    compiled = re.compile(fdef.pattern)
    return lambda value: None if compiled.fullmatch(value) else fdef.pattern_message


def _value_checks(fdef: FieldDef) -> list[Callable[[Any], str | None]]:
    """The checks of a non-empty value, in order (a field gets the first failing one's
    message)."""
    checks = []
    if fdef.type in LENGTH_TYPES:
        if fdef.min_length is not None or fdef.max_length is not None:
            checks.append(_length_check(fdef))
        if fdef.pattern is not None:
            checks.append(_pattern_check(fdef))
    if fdef.type == "entier" and (fdef.minimum is not None or fdef.maximum is not None):
        checks.append(_range_check(fdef))
    checks.extend(VALIDATORS[name].check for name in fdef.validators)
    return checks


def _check_context(definition: FormDefinition, context: Mapping[str, Any]) -> None:
    for fdef in definition.fields.values():
        source = CHOICE_SOURCES.get(fdef.source or "")
        missing = [key for key in getattr(source, "needs", ()) if key not in context]
        if missing:
            raise FormContextError(
                f"Le formulaire « {definition.name} » a besoin de « {missing[0]} » dans son "
                f"contexte (champ « {fdef.name} », source « {fdef.source} »).")


@dataclass
class Cleaned:
    """What ``Schema.validate`` returns: every field's value (hidden ones empty) and the
    French errors by field name (one message a field)."""

    definition: FormDefinition
    values: dict[str, Any]
    errors: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        return not self.errors

    def messages(self) -> list[tuple[str, str, str]]:
        """(field name, label, message), in the order of the form."""
        return [(name, fdef.label, message) for name, fdef in self.definition.fields.items()
                for message in self.errors.get(name, ())]

    def summary(self) -> str:
        """« Label : message ; Label : message » (the CSV import's line message)."""
        return " ; ".join(f"{label} : {message}" for _, label, message in self.messages())


class Schema:
    """The rules of a definition over plain values: what a page, the CSV import, a task
    or an API call gives is validated the same way (the WTForms form delegates to it).

    ``validate(data, context=…, current=…)``: ``data`` maps field names to strings or
    Python values (a missing name is empty); ``current`` holds the values the edited object
    has (``initial_values``): an id a restricted source no longer allows stays acceptable
    when it is the one already stored."""

    def __init__(self, definition: FormDefinition):
        self.definition = definition

    def validate(self, data: Mapping[str, Any], *, context: Mapping[str, Any] | None = None,
                 current: Mapping[str, Any] | None = None,
                 parse_errors: Mapping[str, str] | None = None) -> Cleaned:
        definition, context, current = self.definition, dict(context or {}), current or {}
        _check_context(definition, context)
        values: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for name, fdef in definition.fields.items():
            try:
                values[name] = parse_value(fdef, data.get(name))
            except ValueError as error:
                values[name], errors[name] = fdef.empty_value, [str(error)]
            if parse_errors and name in parse_errors:
                errors[name] = [parse_errors[name]]
        for name, fdef in definition.fields.items():
            if not _is_visible(definition, name, values, context):
                values[name] = fdef.empty_value
                errors.pop(name, None)
            elif name not in errors:
                message = self._check(fdef, values, context, current)
                if message:
                    errors[name] = [message]
        return Cleaned(definition, values, errors)

    def _check(self, fdef: FieldDef, values: Mapping[str, Any], context: Mapping[str, Any],
               current: Mapping[str, Any]) -> str | None:
        value = values[fdef.name]
        if _is_empty_value(fdef, value):
            return fdef.required_message if fdef.required else None
        for check in _value_checks(fdef):
            message = check(value)
            if message:
                return message
        if fdef.same_as and value != values.get(fdef.same_as):
            return (f"Cette saisie ne correspond pas au champ "
                    f"« {self.definition.fields[fdef.same_as].label} ».")
        if fdef.not_before:
            start = values.get(fdef.not_before)
            if isinstance(start, dt.date) and value < start:
                return (f"Cette date doit être égale ou postérieure à "
                        f"« {self.definition.fields[fdef.not_before].label} ».")
        if fdef.is_reference:
            source: DatabaseSource = CHOICE_SOURCES[fdef.source]
            # The value the object already has stays acceptable (set earlier by a moderator).
            if source.restrict is not None and value != current.get(fdef.name):
                return source.check(value, context)
            return None if source.get(value) is not None else source.not_found
        return None


def schema(definition: FormDefinition | str) -> Schema:
    return Schema(_resolve(definition))


def clean(definition: FormDefinition | str, data: Mapping[str, Any], *,
          context: Mapping[str, Any] | None = None, obj=None) -> Cleaned:
    """Validate plain ``data`` for a new object, or for ``obj`` (whose stored values fill
    the names ``data`` does not give)."""
    definition = _resolve(definition)
    current = initial_values(definition, obj) if obj is not None else {}
    return Schema(definition).validate({**current, **data}, context=context, current=current)


def apply_values(definition: FormDefinition | str, values: Mapping[str, Any], obj) -> None:
    """Write cleaned ``values`` to ``obj``: a column (or settable property) of the same
    name, else ``obj.extra[name]``. A blank sensitive field keeps the stored value; fields
    with ``enregistre: non`` are left to the caller."""
    definition = _resolve(definition)
    extra: dict | None = None
    for name, fdef in definition.fields.items():
        if not fdef.stored or name not in values:
            continue
        value = values[name]
        if fdef.sensitive and value in (None, ""):
            continue
        if _is_model_attribute(obj, name):
            setattr(obj, name, value)
            continue
        if extra is None:
            if not hasattr(obj, "extra"):
                raise TypeError(f"{type(obj).__name__} n'a ni attribut « {name} » ni colonne "
                                "« extra » : le formulaire ne peut pas y enregistrer ce champ.")
            extra = dict(obj.extra or {})
        extra[name] = _to_json(value)
    if extra is not None:
        obj.extra = extra  # a new dict, so that SQLAlchemy sees the change


# --------------------------------------------------------------------------- WTForms fields
# The fields only parse what a browser sent (with the functions ``Schema`` uses) and render
# it; every rule is the schema's (``DefinitionForm.validate``).

class _ParsingField:
    """Mixin: ``process_formdata`` through a parse function; a failure is the field's
    parse error (``process_errors``)."""

    def _parse(self, valuelist):
        raise NotImplementedError

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        try:
            self.data = self._parse(valuelist)
        except ValueError:
            self.data = None
            raise


class _IntegerField(_ParsingField, wtf.IntegerField):
    def _parse(self, valuelist):
        return _parse_integer(valuelist[0])


class _DateField(_ParsingField, wtf.DateField):
    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, format=list(DATE_FORMATS), **kwargs)

    def _parse(self, valuelist):
        return _parse_date(valuelist)


class _ChoiceField(_ParsingField, wtf.Field):
    """One code among ``choices``; the macro renders it as a select or radio buttons."""

    widget = widgets.Select()

    def __init__(self, label=None, validators=None, fdef=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.fdef = fdef
        self.choices = list(_field_choices(fdef))

    def process_data(self, value):
        self.data = value

    def _parse(self, valuelist):
        return _parse_code(self.fdef, valuelist[0])

    def options(self) -> list[tuple[str, str, bool]]:
        """(HTML value, label, selected) for each choice."""
        current = None if self.data is None else self.fdef.html_value(self.data)
        return [(self.fdef.html_value(code), label, self.fdef.html_value(code) == current)
                for code, label in self.choices]

    def has_groups(self) -> bool:
        return False

    def iter_choices(self):
        for html, label, selected in self.options():
            yield html, label, selected, {}

    def _value(self):
        return "" if self.data is None else self.fdef.html_value(self.data)


class _MultiChoiceField(_ChoiceField):
    """Several codes (checkboxes); the data is a list in the order of the choices."""

    def process_data(self, value):
        self.data = list(value or [])

    def process_formdata(self, valuelist):
        try:
            self.data = _parse_codes(self.fdef, valuelist)
        except ValueError:
            # The known codes stay ticked; the unknown ones are the error.
            self.data = _parse_codes(self.fdef, [v for v in valuelist if v.strip() in {
                self.fdef.html_value(code) for code, _ in self.choices}])
            raise

    def options(self) -> list[tuple[str, str, bool]]:
        current = {self.fdef.html_value(v) for v in self.data or []}
        return [(self.fdef.html_value(code), label, self.fdef.html_value(code) in current)
                for code, label in self.choices]


class _ReferenceField(_ParsingField, wtf.Field):
    """The id of a row of a database source, typed (or set by a search widget) as text."""

    widget = widgets.TextInput()

    def process_data(self, value):
        self.data = value if isinstance(value, int) and not isinstance(value, bool) else None

    def _parse(self, valuelist):
        return _parse_reference(valuelist[0])

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else str(self.data)


class _CheckboxField(wtf.BooleanField):
    """One checkbox; unticked counts as empty for ``obligatoire`` (consent)."""


def _unbound_field(definition: FormDefinition, fdef: FieldDef):
    options = dict(label=fdef.label, description=fdef.help)
    kind = fdef.type
    if fdef.is_reference:
        return _ReferenceField(**options)
    if kind in LENGTH_TYPES:
        options["filters"] = [lambda value: _parse_text(fdef, value)]
    simple = {"texte": wtf.StringField, "texte_long": wtf.TextAreaField,
              "email": wtf.EmailField, "url": wtf.URLField, "telephone": wtf.TelField,
              "cache": wtf.HiddenField, "mot_de_passe": wtf.PasswordField,
              "entier": _IntegerField, "date": _DateField, "case_a_cocher": _CheckboxField}
    if kind in simple:
        return simple[kind](**options)
    field_class = _MultiChoiceField if kind == "cases_a_cocher" else _ChoiceField
    return field_class(fdef=fdef, **options)


# --------------------------------------------------------------------------- the form class

class DefinitionForm(BaseForm):
    """Base of the generated form classes. ``context`` holds what the view knows (the active
    structure, flags such as ``formation_apprentissage``)."""

    definition: FormDefinition

    def __init__(self, *args, context: Mapping[str, Any] | None = None, **kwargs):
        self.context = dict(context or {})
        super().__init__(*args, **kwargs)

    # Conditional display --------------------------------------------------

    def _data(self) -> dict[str, Any]:
        return {name: self[name].data for name in self.definition.fields}

    def _condition_holds(self, condition: Condition) -> bool:
        return _condition_holds(self.definition, condition, self._data(), self.context)

    def is_visible(self, name: str) -> bool:
        """Whether the field is shown (its condition, and the condition of the field it
        depends on, hold for the current data and context)."""
        return _is_visible(self.definition, name, self._data(), self.context)

    def is_rendered(self, name: str) -> bool:
        """False when a *context* condition hides the field: it is then not in the page."""
        condition = self.definition.fields[name].visible_if
        while condition is not None:
            if condition.context is not None:
                return self._condition_holds(condition)
            condition = self.definition.fields[condition.field].visible_if
        return True

    def rendered_names(self) -> list[str]:
        return [name for name in self.definition.fields if self.is_rendered(name)]

    def hidden_names(self) -> set[str]:
        return {name for name in self.definition.fields if not self.is_visible(name)}

    # Validation and values -------------------------------------------------

    def validate(self, extra_validators=None) -> bool:
        """CSRF by Flask-WTF; the definition's fields by the definition's ``Schema``, from
        what the fields parsed (a parse error stays the field's message). Hidden fields
        lose their value and their errors."""
        self.form_errors = []
        success = True
        for name, field in self._fields.items():
            if name not in self.definition.fields:  # csrf_token
                success = field.validate(self, (extra_validators or {}).get(name, ())) \
                    and success
        parse_errors = {}
        for name in self.definition.fields:
            field = self[name]
            if any(has_control_characters(raw) for raw in field.raw_data or ()):
                parse_errors[name] = CONTROL_MESSAGE
            elif field.process_errors:
                parse_errors[name] = field.process_errors[0]
        cleaned = Schema(self.definition).validate(
            self._data(), context=self.context, parse_errors=parse_errors,
            current={name: self[name].object_data for name in self.definition.fields})
        for name in self.definition.fields:
            field = self[name]
            field.errors = list(cleaned.errors.get(name, ()))
            if name not in cleaned.errors:
                field.data = cleaned.values[name]
        return success and cleaned.ok

    def values(self) -> dict[str, Any]:
        """The answers by field name, as Python values (date, bool, int, list); a hidden
        field gives its empty value."""
        hidden = self.hidden_names()
        return {name: fdef.empty_value if name in hidden else self[name].data
                for name, fdef in self.definition.fields.items()}

    def populate(self, obj) -> None:
        populate(self.definition, self, obj)

    # Rendering helpers (used by templates/forms/macros.html) ---------------

    def error_items(self) -> list[tuple[str | None, str, str]]:
        """(anchor, label, message) for the summary at the top, in the order of the page."""
        items: list[tuple[str | None, str, str]] = []
        if "csrf_token" in self and self["csrf_token"].errors:
            items.append((None, "", "Le formulaire a expiré : rechargez la page et recommencez."))
        items.extend((None, "", message) for message in self.form_errors)
        for name, fdef in self.definition.fields.items():
            field = self[name]
            for message in field.errors:
                items.append((self.anchor(name), fdef.label, message))
        return items

    def anchor(self, name: str) -> str:
        kind = self.definition.fields[name].type
        field = self[name]
        return f"{field.id}-0" if kind in ("radio", "oui_non", "cases_a_cocher") else field.id

    def input_attributes(self, name: str) -> dict[str, Any]:
        fdef = self.definition.fields[name]
        field = self[name]
        attributes: dict[str, Any] = {
            "class": "form-control" + (" is-invalid" if field.errors else "")}
        described = []
        if field.errors:  # announced with the field: its errors first (templates/forms)
            described.append(f"erreur-{field.id}")
            attributes["aria-invalid"] = "true"
        if fdef.help:
            described.append(f"aide-{field.id}")
        if fdef.counter:
            described.append(f"compteur-{field.id}")
        if described:
            attributes["aria-describedby"] = " ".join(described)
        if fdef.required:
            attributes["aria-required"] = "true"
        if fdef.placeholder:
            attributes["placeholder"] = fdef.placeholder
        if fdef.type == "texte_long":
            attributes["rows"] = 5
        if fdef.type == "mot_de_passe":
            attributes["autocomplete"] = "new-password"
        if fdef.sensitive:
            # Never echoed back, not even what was just typed when another field is wrong.
            attributes["autocomplete"] = "off"
            attributes["value"] = ""
        if fdef.is_reference:
            attributes["data-source"] = fdef.source
            attributes["inputmode"] = "numeric"
            attributes["autocomplete"] = "off"
        return attributes

    def sensitive_hint(self, name: str) -> str:
        """« NIR enregistré » beside a sensitive field when the edited object holds a value
        (which the form never shows), « NIR illisible : … » when no key can read it."""
        state = getattr(self, "stored_sensitive", {}).get(name)
        if state is None:
            return ""
        if state == "illisible":
            return crypto.UNREADABLE_MESSAGE + " (une nouvelle saisie le remplace)."
        label = self.definition.fields[name].label.split(" (")[0]
        return f"{label} enregistré : laissez ce champ vide pour le conserver."

    def text_length(self, name: str) -> int:
        return len(self[name]._value() or "")

    def reference_label(self, name: str) -> str:
        fdef = self.definition.fields[name]
        field = self[name]
        if not fdef.is_reference or field.data is None or field.errors:
            return ""
        return CHOICE_SOURCES[fdef.source].label(field.data)

    def condition_attributes(self, name: str) -> Markup:
        """``data-visible-si-*`` attributes read by static/forms.js."""
        condition = self.definition.fields[name].visible_if
        if condition is None or condition.field is None:
            return Markup("")
        other = self.definition.fields[condition.field]
        html_values = [other.html_value(v) for v in condition.values]
        return Markup(' data-visible-si-champ="{}" data-visible-si-valeurs="{}"').format(
            self[condition.field].name, "|".join(html_values))


_RESERVED_NAMES = frozenset(name for name in dir(DefinitionForm) if not name.startswith("_")) \
    | {"csrf_token", "context", "definition", "extra"}


def form_class(definition: FormDefinition) -> type[DefinitionForm]:
    """The Flask-WTF form class of a definition (built once, then reused)."""
    if definition._form_class is None:
        attributes: dict[str, Any] = {"definition": definition}
        for fdef in definition.fields.values():
            attributes[fdef.name] = _unbound_field(definition, fdef)
        class_name = "".join(part.capitalize() for part in definition.name.split("_")) + "Form"
        definition._form_class = type(class_name, (DefinitionForm,), attributes)
    return definition._form_class


_FROM_REQUEST = object()


def _resolve(definition: FormDefinition | str) -> FormDefinition:
    return get_definition(definition) if isinstance(definition, str) else definition


def build_form(definition: FormDefinition | str, obj=None, *, formdata: Any = _FROM_REQUEST,
               context: Mapping[str, Any] | None = None, prefix: str = "",
               meta: dict | None = None) -> DefinitionForm:
    """A form for a view. Without ``formdata``, it reads the request on a POST (Flask-WTF);
    otherwise it starts from ``obj`` (columns and ``extra``) or from the definition's
    defaults. ``context`` is what choice sources and ``visible_si: {contexte: …}`` read."""
    definition = _resolve(definition)
    context = dict(context or {})
    _check_context(definition, context)
    data = initial_values(definition, obj) if obj is not None else default_values(definition)
    options: dict[str, Any] = {"data": data, "context": context, "prefix": prefix}
    if formdata is not _FROM_REQUEST:
        options["formdata"] = formdata
    if meta is not None:
        options["meta"] = meta
    form = form_class(definition)(**options)
    form.stored_sensitive = stored_sensitive_names(definition, obj) if obj is not None else {}
    return form


def stored_sensitive_names(definition: FormDefinition, obj) -> dict[str, str]:
    """The sensitive fields for which ``obj`` holds a value: ``"enregistre"``, or
    ``"illisible"`` when the stored value cannot be decrypted (a missing NIR key)."""
    names = {}
    for name, fdef in definition.fields.items():
        if not fdef.sensitive or not _is_model_attribute(obj, name):
            continue
        try:
            if getattr(obj, name) not in (None, ""):
                names[name] = "enregistre"
        except crypto.NirDecryptionError:
            names[name] = "illisible"
    return names


# --------------------------------------------------------------------------- object <-> form

def _to_json(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def default_values(definition: FormDefinition) -> dict[str, Any]:
    return {name: _convert(fdef, fdef.default)
            for name, fdef in definition.fields.items() if fdef.default is not None}


def initial_values(definition: FormDefinition, obj) -> dict[str, Any]:
    """What the form shows for ``obj``: its columns (and settable properties) of the same
    name, else its ``extra`` answers. Sensitive fields (NIR) are never shown again."""
    data: dict[str, Any] = {}
    extra = getattr(obj, "extra", None) or {}
    for name, fdef in definition.fields.items():
        if not fdef.stored or fdef.sensitive:
            continue
        if _is_model_attribute(obj, name):
            value = getattr(obj, name)
        elif name in extra:
            try:
                value = _convert(fdef, extra[name])
            except (ValueError, TypeError):
                value = None  # an answer that no longer fits the definition: asked again
        else:
            continue
        if value is not None:
            data[name] = value
    return data


def populate(definition: FormDefinition, form: DefinitionForm, obj) -> None:
    """Write the answers of a validated ``form`` to ``obj`` (``apply_values``)."""
    apply_values(definition, form.values(), obj)


# --------------------------------------------------------------------------- examples

def example_formdata(definition: FormDefinition, values: Mapping[str, Any]) -> MultiDict:
    """What a browser would send for answers written in a file (``saisie`` of an example)."""
    formdata = MultiDict()
    for name, value in values.items():
        fdef = definition.fields[name]
        items = value if isinstance(value, list) else [value]
        for item in items:
            if fdef.type == "case_a_cocher":
                if _as_bool(item):
                    formdata.add(name, "y")
            elif fdef.type == "oui_non" and isinstance(_as_bool(item), bool):
                formdata.add(name, fdef.html_value(_as_bool(item)))
            elif isinstance(item, dt.date):
                formdata.add(name, item.strftime("%d/%m/%Y"))
            elif item is not None:
                formdata.add(name, str(item))
    return formdata


def run_example(definition: FormDefinition, example: Example, *,
                context: Mapping[str, Any] | None = None) -> list[str]:
    """Submit an example's input (without CSRF) and compare with its expected outcome.
    Returns the discrepancies, in French; an empty list means the example holds."""
    where = f"{definition.path.name}, exemple « {example.title} » (ligne {example.line})"
    flags = {key: _as_bool(value) if _as_bool(value) is not None else value
             for key, value in example.context.items()}
    frozen = clock.frozen(dt.datetime.combine(example.today, dt.time(12), tzinfo=clock.PARIS)) \
        if example.today else contextlib.nullcontext()
    with frozen:
        form = build_form(definition, formdata=example_formdata(definition, example.input),
                          context={**(context or {}), **flags}, meta={"csrf": False})
        accepted = form.validate()
    errors = {name: list(form[name].errors) for name in definition.fields if form[name].errors}
    problems = []
    if example.valid and not accepted:
        problems.append(f"{where} : refusé alors qu'il devait être accepté ({errors}).")
    if not example.valid:
        if accepted:
            problems.append(f"{where} : accepté alors qu'il devait être refusé.")
        for name, message in example.errors.items():
            if str(message).strip() not in errors.get(name, []):
                problems.append(f"{where} : erreur attendue sur « {name} » : « {message} » ; "
                                f"obtenu : {errors.get(name, [])}.")
        for name in set(errors) - set(example.errors):
            problems.append(f"{where} : erreur inattendue sur « {name} » : {errors[name]}.")
    values = form.values()
    for name, expected in example.values.items():
        try:
            expected = _convert(definition.fields[name], expected)
        except (ValueError, TypeError):
            pass
        if values[name] != expected:
            problems.append(f"{where} : « {name} » vaut {values[name]!r}, attendu {expected!r}.")
    return problems

