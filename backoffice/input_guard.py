"""Hostile input: what is refused before it reaches a form, a query or the database.

PostgreSQL refuses a NUL byte in a text value and an integer beyond its column's range;
each would be a 500 in the middle of a request (and the error page would then crash on
the failed transaction). This module keeps such values away from SQL, in these places:

* **Every field of every form** — front forms, the forms built by ``forms_engine`` and
  Flask-Admin's ``AdminForm`` all derive from ``BaseForm``, whose ``Meta.bind_field`` puts
  ``refuse_control_characters`` first on every field: a control character (C0 except tab,
  line feed and carriage return; DEL) is refused with a French message on the field, and
  the field's other validators (which may query the database) do not run. An integer field
  also refuses a number outside the 32-bit range of the database's integer columns.
* **Everything else the client names** — the URL path, the query string (search pages,
  filters, AJAX lookups), form keys and uploaded file names: ``check_request`` (a
  ``before_request`` hook) answers 400 with a French page; so does a query-string value
  longer than ``MAX_QUERY_VALUE``.
* **A form value read directly by a view** (``request.form["motif"]``,
  ``request.form.get(…)``, ``request.values``), not through a form field:
  ``RequestValues.__getitem__`` answers 400 with a French page, while the form fields
  still read the raw value (``getlist``) and put their message on the field.
  ``get(…, type=int)`` and ``getlist(…, type=int)`` on the query string or the form treat
  a number outside the integer range as absent.
* **Integers in the URL** — ``<int:…>`` segments above the integer range: 404
  (``BoundedIntegerConverter`` replaces Flask's ``int`` converter).

Elsewhere: the error pages (``views/main.py``: French, rolled-back session, a plain page
if even that fails, and a last-resort 400 for a ``DataError`` that got through, logged);
admin ids, pages and filters (``admin/base.py``); rule texts (``rules_engine._check_text``:
size, control characters, depth, aliases); the catalogue CSV (``services/catalogue``).
"""
from __future__ import annotations

import re

from flask import Flask, Request, request
from flask_wtf import FlaskForm
from werkzeug.datastructures import CombinedMultiDict, ImmutableMultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter
from werkzeug.utils import cached_property
from wtforms import fields as wtf
from wtforms.validators import StopValidation

# C0 control characters except tab (\x09), line feed (\x0a) and carriage return (\x0d); DEL.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The range of an ``Integer`` column (PostgreSQL ``integer``): every id, count and number.
INTEGER_MIN, INTEGER_MAX = -(2 ** 31), 2 ** 31 - 1

CONTROL_MESSAGE = ("Ce champ contient des caractères de contrôle (invisibles, par exemple "
                   "issus d'un copier-coller) : retirez-les et recommencez.")
# A search term, a filter or an id is short; a longer value is an attack (and a LIKE pattern
# that long is refused by SQLite).
MAX_QUERY_VALUE = 1_000
INTEGER_MESSAGE = f"Ce nombre est trop grand : il doit être compris entre {INTEGER_MIN} " \
                  f"et {INTEGER_MAX}."


def has_control_characters(value: object) -> bool:
    return isinstance(value, str) and CONTROL_CHARACTERS.search(value) is not None


# -- forms ---------------------------------------------------------------------------------
def refuse_control_characters(form, field) -> None:
    """WTForms validator: no control character in what the user typed (``raw_data``)."""
    if any(has_control_characters(value) for value in field.raw_data or ()):
        field.errors[:] = [error for error in field.errors if error != CONTROL_MESSAGE]
        raise StopValidation(CONTROL_MESSAGE)


def refuse_out_of_range_integer(form, field) -> None:
    """WTForms validator: an integer the database can store."""
    if isinstance(field.data, int) and not INTEGER_MIN <= field.data <= INTEGER_MAX:
        raise StopValidation(INTEGER_MESSAGE)


class BaseForm(FlaskForm):
    """The base of every form: CSRF (Flask-WTF) and the checks above on every field."""

    class Meta(FlaskForm.Meta):
        def bind_field(self, form, unbound_field, options):
            field = super().bind_field(form, unbound_field, options)
            checks = [refuse_control_characters]
            if isinstance(field, wtf.IntegerField):
                checks.append(refuse_out_of_range_integer)
            field.validators = [*checks, *field.validators]
            return field


# -- request values ------------------------------------------------------------------------
class Refused(BadRequest):
    """A request refused by the guard; its French description is shown on the error page."""


def refuse(what: str) -> Refused:
    return Refused(f"{what} contient des caractères de contrôle (invisibles) : la requête "
                      "a été refusée. Retirez-les et recommencez.")


def _in_range(value) -> bool:
    return not isinstance(value, int) or INTEGER_MIN <= value <= INTEGER_MAX


class _BoundedGet:
    def get(self, key, default=None, type=None):
        value = super().get(key, default, type)
        return value if type is not int or _in_range(value) else default

    def getlist(self, key, type=None):
        values = super().getlist(key, type)
        return values if type is not int else [v for v in values if _in_range(v)]


class RequestValues(_BoundedGet, ImmutableMultiDict):
    """The query string and the form of a request (``Request.parameter_storage_class``)."""

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if has_control_characters(value):
            raise refuse(f"Le champ « {key} »")
        return value


class CombinedRequestValues(_BoundedGet, CombinedMultiDict):
    """``request.values``: the query string then the form, with the same checks."""


class GuardedRequest(Request):
    parameter_storage_class = RequestValues

    @cached_property
    def values(self) -> CombinedRequestValues:
        sources = [self.args] if self.method == "GET" else [self.args, self.form]
        return CombinedRequestValues(sources)


class BoundedIntegerConverter(IntegerConverter):
    """``<int:…>`` within the range of the id columns (a larger one matches no route: 404)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", INTEGER_MAX)
        super().__init__(map, *args, **kwargs)


def check_request():
    """``before_request``: the path, the query string, form keys and file names."""
    if has_control_characters(request.path):
        raise refuse("L'adresse de la page")
    for key, value in request.args.items(multi=True):
        if has_control_characters(key) or has_control_characters(value):
            raise refuse("L'adresse de la page (paramètre de recherche)")
        if len(key) + len(value) > MAX_QUERY_VALUE:
            raise Refused(f"Un paramètre de l'adresse dépasse {MAX_QUERY_VALUE} caractères : "
                          "la requête a été refusée. Raccourcissez la recherche.")
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        for key in request.form:
            if has_control_characters(key):
                raise refuse("Le formulaire")
        for key, upload in request.files.items(multi=True):
            if has_control_characters(key) or has_control_characters(upload.filename):
                raise refuse("Le nom du fichier envoyé")
    return None


def init_app(app: Flask) -> None:
    """Before any route is added: the request class, the ``int`` converter, the guard."""
    app.request_class = GuardedRequest
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.before_request(check_request)
