"""The one secured base of every Flask-Admin screen.

* Access by staff role, once the second factor passed (``has_role``): anonymous users go
  to the login page with ``next``; a logged-in user without the role gets 403.
* French everywhere (Flask-Admin's own French catalogue through Flask-Babel).
* Forms carry Flask-WTF's CSRF token (the same one ``CSRFProtect`` checks on every POST).
* Large lists use ``simple_list_pager`` (no COUNT over a big table) and eager-load the
  relations they display (no query per row).
* Every list pages by key (« Précédent / Suivant »): a page is the rows after (or before)
  the last row shown in the list's order, never an OFFSET, so that page 5 000 costs what
  page 1 costs; the order always ends with the id, so that it is total.
* Text search on large lists (``search_exact``, ``search_words``): the whole text equals a
  reference, identifier or e-mail (an index each), or every word typed begins a word of an
  indexed text — candidates' names, formations' titles (``text_index``); other searchable
  columns keep Flask-Admin's substring match.
* A constraint violation becomes a French error on the field concerned, and the
  transaction is rolled back: nothing half-written stays in the database.
* Hostile input: an id that is not one (``?id=abc``, ``id=99999999999999999999``, in the
  query string or a form, for every view) is a 404 before any query; a page cursor that
  is not one gives the first page (and a page number is ignored: lists page by key); a
  filter number the database cannot hold is dropped. Control
  characters are refused on every form field (``AdminForm`` is an ``input_guard.BaseForm``).
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
import re
import secrets
import types

from flask import abort, flash, g, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_admin.contrib.sqla import ModelView, tools
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_admin.contrib.sqla.form import AdminModelConverter
from flask_admin.contrib.sqla.validators import Unique
from flask_admin.model import filters, template, typefmt
from flask_admin.model.form import converts
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import UniqueConstraint, and_, func, inspect, or_, select, union_all
from sqlalchemy.exc import IntegrityError
from stdnum.fr import siret as stdnum_siret
from wtforms import SelectField
from wtforms.validators import ValidationError

from backoffice import clock, workflow
from backoffice.admin import text_index
from backoffice.extensions import db
from backoffice.input_guard import INTEGER_MAX, INTEGER_MIN, BaseForm
from backoffice.models import StaffRole, User
from backoffice.services import DomainError

STAFF = (StaffRole.ADMIN, StaffRole.MODERATEUR)


# French message for each CHECK constraint (by the name given in the model).
CHECK_MESSAGES = {
    "siret_14_chiffres": "Le SIRET doit compter exactement 14 chiffres.",
    "siret_etab_14_chiffres": "Le SIRET de l'établissement doit compter 14 chiffres.",
    "siret_tiers_14_chiffres": "Le SIRET du tiers doit compter 14 chiffres.",
    "siren_du_siret": "Le SIREN doit être les 9 premiers chiffres du SIRET.",
    "email_minuscules": "L'adresse électronique doit être écrite en minuscules.",
    "reference_12_chiffres": "La référence d'une formation compte 12 chiffres.",
    "reference_8_chiffres": "La référence d'une session compte 8 chiffres.",
    "intitule_300": "L'intitulé compte 300 caractères au plus.",
    "fin_apres_debut": "La date de fin doit être postérieure ou égale à la date de début.",
    "places_positives": "Le nombre de places ne peut pas être négatif.",
    "code_postal_5_chiffres": "Le code postal compte 5 chiffres.",
    "annee_cursus_1_a_5": "L'année de cursus est comprise entre 1 et 5.",
    "consentement_obligatoire": "Le consentement du candidat est obligatoire hors brouillon.",
    "beneficiaire_toujours": "Le profil bénéficiaire ne peut pas être retiré.",
}
CHECK_FIELDS = {
    "siren_du_siret": "siret", "fin_apres_debut": "date_fin", "places_positives": "places",
    "consentement_obligatoire": "consentement", "siret_etab_14_chiffres": "siret_etablissement",
    "siret_tiers_14_chiffres": "siret_tiers", "intitule_300": "intitule",
    "reference_12_chiffres": "reference", "reference_8_chiffres": "reference",
    "code_postal_5_chiffres": "code_postal", "annee_cursus_1_a_5": "annee_cursus",
    "email_minuscules": "email", "beneficiaire_toujours": "beneficiaire",
    "siret_14_chiffres": "siret",
}


# The query-string parameters of the pager: the cursor of the row the page starts after
# (« Suivant ») or ends before (« Précédent »).
AFTER, BEFORE = "apres", "avant"


def _is_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and int(value) <= INTEGER_MAX


def _integer_out_of_range(text: str) -> bool:
    try:
        number = int(text.strip())
    except ValueError:
        return False
    return not INTEGER_MIN <= number <= INTEGER_MAX


def has_role(*roles: str) -> bool:
    """The current user holds one of ``roles`` and passed the second factor in this session."""
    from backoffice.auth import second_factor_passed

    return current_user.is_authenticated and current_user.staff_role in roles \
        and second_factor_passed()


def validate_siret(form, field):
    value = (field.data or "").replace(" ", "")
    if not value.isdigit() or len(value) != 14:
        raise ValidationError("Le SIRET doit compter exactement 14 chiffres.")
    if not stdnum_siret.is_valid(value):
        raise ValidationError("Ce SIRET n'est pas valide (clé de contrôle incorrecte).")
    field.data = value


def enum_formatter(enum_cls):
    """Show the French label of a stored code in lists and details."""
    labels = enum_cls.labels()
    return lambda view, context, model, name: labels.get(getattr(model, name),
                                                        getattr(model, name))


def state_filter(column, enum_cls, label="État"):
    return FilterEqual(column, label, options=enum_cls.choices())


class FilterConverter(sqla_filters.FilterConverter):
    """Date-time filters on our ``UTCDateTime`` columns (values typed in Paris time)."""

    @filters.convert("utcdatetime")
    def conv_utc_datetime(self, column, name, **kwargs):
        return self.conv_datetime(column, name, **kwargs)


UNIQUE_MESSAGE = "Cette valeur est déjà utilisée : elle doit être unique."


class ModelConverter(AdminModelConverter):
    def convert(self, model, mapper, name, prop, field_args, hidden_pk):
        """Flask-Admin's ``Unique`` validator (single unique columns) speaks our words
        (its own « Existe déjà. » comes from a catalogue we cannot override)."""
        field = super().convert(model, mapper, name, prop, field_args, hidden_pk)
        for validator in getattr(field, "kwargs", {}).get("validators") or ():
            if isinstance(validator, Unique):
                validator.message = UNIQUE_MESSAGE
        return field

    @converts("UTCDateTime")
    def convert_utc_datetime(self, field_args, **extra):
        return self.convert_datetime(field_args, **extra)


def _local_datetime(view, value, name) -> str:
    return clock.format_local(value)


def _local_date(view, value, name) -> str:
    return value.strftime("%d/%m/%Y")


TYPE_FORMATTERS = {**typefmt.BASE_FORMATTERS, dt.datetime: _local_datetime,
                   dt.date: _local_date}
DETAIL_TYPE_FORMATTERS = {**typefmt.DETAIL_FORMATTERS, dt.datetime: _local_datetime,
                          dt.date: _local_date}


# -- keyset pages ----------------------------------------------------------------------
def encode_cursor(row_id: int, value) -> str:
    """The cursor of a row in a list: its id and the value of the column sorted on."""
    if isinstance(value, (dt.date, dt.datetime)):
        value = value.isoformat()
    elif isinstance(value, decimal.Decimal):
        value = str(value)
    raw = json.dumps([row_id, value], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, column) -> tuple[int, object] | None:
    """(id, sort value) of a cursor made by ``encode_cursor`` for ``column`` (None: the
    list is sorted on the id), or None when ``token`` is not one."""
    try:
        row_id, value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError, binascii.Error):
        return None
    if type(row_id) is not int or not 0 < row_id <= INTEGER_MAX:
        return None
    if column is None or value is None:
        return row_id, None
    type_ = column.type
    type_ = getattr(type_, "impl_instance", type_)  # a TypeDecorator (UTCDateTime): its impl
    try:
        kind = type_.python_type
    except NotImplementedError:
        return None
    try:
        if kind is dt.datetime:
            value = dt.datetime.fromisoformat(value)
        elif kind is dt.date:
            value = dt.date.fromisoformat(value)
        elif kind is decimal.Decimal:
            value = decimal.Decimal(str(value))
        elif kind is int:
            if type(value) is not int or _integer_out_of_range(str(value)):
                return None
        elif kind not in (bool, str, float) or not isinstance(value, kind):
            return None
    except (TypeError, ValueError, decimal.InvalidOperation):
        return None
    return row_id, value


def rows_after(column, value, id_column, row_id: int, *, descending: bool,
               nulls_high: bool):
    """The condition "comes after the row (value, row_id)" in the order ``column, id``
    (both descending or both ascending), NULLs where the database puts them
    (``nulls_high``: PostgreSQL sorts NULL above every value, SQLite below). Written so
    that an index on ``column`` bounds the scan (``column <= value AND …``)."""
    def beyond(a, b):
        return a < b if descending else a > b

    if column is None:
        return beyond(id_column, row_id)
    nulls_last = nulls_high != descending
    if value is None:
        in_nulls = and_(column.is_(None), beyond(id_column, row_id))
        return in_nulls if nulls_last else or_(in_nulls, column.is_not(None))
    not_beyond = column <= value if descending else column >= value
    after = and_(not_beyond, or_(beyond(column, value), beyond(id_column, row_id)))
    return or_(after, column.is_(None)) if nulls_last else after


class AdminForm(BaseForm):
    """Flask-Admin forms on Flask-WTF: CSRF token and French WTForms messages.

    Like Flask-Admin's own ``BaseForm``, the form remembers the object it edits
    (``_obj``): Flask-Admin's ``Unique`` validator and ``_check_unique`` below compare
    with it, so that saving a record unchanged is not refused as a duplicate of itself.
    """

    def __init__(self, *args, **kwargs):
        self._obj = kwargs.get("obj", args[1] if len(args) > 1 else None)
        super().__init__(*args, **kwargs)


class SafeAjaxLoader(QueryAjaxModelLoader):
    """The AJAX relation fields (``form_ajax_refs``): a submitted value that is not an id
    is no row (the field says « choix non valide »), and the lookup's offset and limit
    stay within bounds."""

    def get_one(self, pk):
        return super().get_one(pk) if _is_id(str(pk)) else None

    def get_list(self, term: str, offset: int = 0, limit: int = 10):
        return super().get_list(term, offset=max(offset or 0, 0),
                                limit=min(max(limit or 10, 1), 100))


class SecureIndexView(AdminIndexView):
    roles = tuple(StaffRole)

    def is_accessible(self) -> bool:
        return has_role(*self.roles)

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)

    @expose("/")
    def index(self):
        return self.render("admin/backoffice_index.html")


class IdCheckMixin:
    """Ids come from the query string (``?id=`` of edit, details), the form (``id`` of
    delete and transition, ``rowid`` of actions, ``pk`` of list editing): every one must
    be an id the database can hold, else 404 — checked before any view of the screen (and
    any ``get_one``, overridden or not) runs, so that no query sees "abc" or 10**20."""

    ID_PARAMETERS = ("id", "rowid", "pk")

    def _handle_view(self, name, **kwargs):
        response = super()._handle_view(name, **kwargs)
        if response is not None:
            return response
        for key in self.ID_PARAMETERS:
            for value in (*request.args.getlist(key), *request.form.getlist(key)):
                if not _is_id(value):
                    abort(404)
        return None


class DrawnOnceRowAction(template.TemplateLinkRowAction):
    """A row's « voir », « modifier » or « supprimer » button, drawn by its macro
    (templates/admin/model/row_actions.html) once per page for a stand-in id, then copied
    for each row with the row's id put in: the same HTML, without two URL builds or a
    delete form per row — they were 44 % of the time of a list of 100 rows (cProfile)."""

    STAND_IN = f"rowid{secrets.token_hex(8)}"  # appears nowhere else in a page

    def __init__(self, standard: template.TemplateLinkRowAction):
        super().__init__(standard.template_name, standard.title)

    def render(self, context, row_id, row):
        drawn = g.setdefault("drawn_row_actions", {})
        if self.template_name not in drawn:
            view = context.resolve("admin_view")
            stand_in = types.SimpleNamespace(**{view._primary_key: self.STAND_IN})
            drawn[self.template_name] = str(super().render(context, self.STAND_IN, stand_in))
        return Markup(drawn[self.template_name].replace(self.STAND_IN, str(escape(row_id))))


class SecureModelView(IdCheckMixin, ModelView):
    roles: tuple[str, ...] = STAFF
    form_base_class = AdminForm
    filter_converter = FilterConverter()
    model_form_converter = ModelConverter
    column_type_formatters = TYPE_FORMATTERS
    column_type_formatters_detail = DETAIL_TYPE_FORMATTERS
    can_view_details = True
    can_export = False
    page_size = 20
    can_set_page_size = True
    page_size_options = (20, 50, 100)
    column_display_pk = False
    # Most recent first by default.
    column_default_sort = ("id", True)
    # Never shown, never editable (sealed_links: the secret links of a queued e-mail).
    column_exclude_list = ("password_hash", "token_hash", "nir_chiffre", "version",
                           "sealed_links")
    column_details_exclude_list = column_exclude_list
    column_export_exclude_list = column_exclude_list
    form_excluded_columns = ("password_hash", "token_hash", "nir_chiffre", "version",
                             "sealed_links",
                             "created_at", "updated_at", "nom_normalise", "prenom_normalise")
    column_labels = {
        "id": "Identifiant", "created_at": "Créé le", "updated_at": "Modifié le",
        "state": "État", "structure": "Structure", "user": "Utilisateur",
        "email": "Courriel", "nom": "Nom", "prenom": "Prénom", "siret": "SIRET",
        "siren": "SIREN", "reference": "Référence", "intitule": "Intitulé",
        "departement": "Département", "commune": "Commune", "code_postal": "Code postal",
        "telephone": "Téléphone", "fonction": "Fonction", "adresse": "Adresse",
        "decided_by": "Décidé par", "decided_at": "Décidé le",
        "decision_comment": "Commentaire de décision", "message": "Message",
        "active": "Active", "role": "Rôle", "places": "Places",
    }

    # Code columns shown and edited through their enum: {"state": (CandidatureState, "État")}.
    # Each becomes a select of French labels (empty choice when the column is nullable),
    # a formatter showing the label, and a column label.
    enum_fields: dict[str, tuple] = {}

    def __init__(self, model, name=None, category=None, endpoint=None, **kwargs):
        labels = dict(SecureModelView.column_labels)
        labels.update(type(self).__dict__.get("column_labels", {}))
        self.column_labels = labels
        self._apply_enum_fields(model)
        if workflow.has_workflow(model):
            # States change only through the workflow (buttons on the detail page).
            self.form_columns = tuple(c for c in self.form_columns or () if c != "state") or None
            self.form_excluded_columns = (*self.form_excluded_columns, "state")
        super().__init__(model, db, name=name, category=category,
                         endpoint=endpoint, **kwargs)

    def _apply_enum_fields(self, model) -> None:
        overrides = dict(self.form_overrides or {})
        args = dict(self.form_args or {})
        formatters = dict(self.column_formatters or {})
        for name, (enum_cls, label) in self.enum_fields.items():
            nullable = model.__table__.c[name].nullable
            overrides[name] = SelectField
            choices = enum_cls.choices()
            args[name] = {"label": label, **args.get(name, {}),
                          "choices": [("", "—")] + choices if nullable else choices,
                          "coerce": (lambda v: v or None) if nullable else str}
            formatters.setdefault(name, enum_formatter(enum_cls))
            self.column_labels.setdefault(name, label)
        self.form_overrides, self.form_args = overrides, args
        self.column_formatters = formatters

    # -- workflow: history and transition buttons on the detail page -------------------
    details_template = "admin/backoffice_details.html"

    def workflow_panel(self, model) -> dict | None:
        if not workflow.has_workflow(type(model)):
            return None
        wf = workflow.workflow_for(model)
        logs = workflow.history(model)
        actors = {log.actor_id for log in logs if log.actor_id}
        names = {user.id: user.full_name for user in db.session.scalars(
            select(User).where(User.id.in_(actors)))} if actors else {}
        return {"workflow": wf, "history": logs, "actor_names": names,
                "transitions": workflow.available_transitions(model, current_user)}

    @expose("/transition/", methods=("POST",))
    def transition_view(self):
        object_id = request.form.get("id", "")
        model = self.get_one(object_id) if object_id.isdigit() else None
        if model is None or not workflow.has_workflow(type(model)):
            abort(404)
        back = url_for(".details_view", id=object_id)
        name = request.form.get("transition", "")
        try:
            self.fire_transition(model, name, reason=request.form.get("reason"))
            db.session.commit()
        except workflow.WorkflowError as error:
            db.session.rollback()
            flash(error.message, "error")
            for violation in error.violations:
                flash(f"{violation.message}", "warning")
            return redirect(back)
        except DomainError as error:
            db.session.rollback()
            flash(error.message, "error")
            return redirect(back)
        wf = workflow.workflow_for(model)
        flash(f"{wf.transitions[name].label} : fait. Nouvel état : "
              f"{wf.state_label(model.state)}.", "success")
        return redirect(back)

    def fire_transition(self, model, name: str, *, reason: str | None) -> None:
        """A transition button of the detail page; views whose transitions have more to do
        than a state change call their service instead."""
        workflow.fire(model, name, actor=current_user, reason=reason)

    # -- access -------------------------------------------------------------------------
    def is_accessible(self) -> bool:
        return has_role(*self.roles)

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)

    # -- bad input ----------------------------------------------------------------------
    def _create_ajax_loader(self, name, options):
        remote_model = getattr(self.model, name).property.mapper.class_
        return SafeAjaxLoader(name, self.session, remote_model, **options)

    def _get_list_extra_args(self):
        """The list's cursor, sort and filters from the query string, made safe: the page
        number is ignored (pages go by cursor, see ``get_list``), a filter whose number
        the database cannot hold is dropped (with a message), like a value Flask-Admin
        itself finds invalid. The cursor is kept apart: sort, filter and search links
        start again from the first page."""
        args = super()._get_list_extra_args()
        args.page = 0
        cursor = None
        for direction in (AFTER, BEFORE):
            token = args.extra_args.pop(direction, None)
            if token and cursor is None:
                cursor = (direction, token)
        g.admin_list = {"args": args, "cursor": cursor}
        if args.filters:
            kept = []
            for flt in args.filters:
                numeric = isinstance(self._filters[flt[0]],
                                     (filters.BaseIntFilter, filters.BaseIntListFilter))
                if numeric and any(_integer_out_of_range(part)
                                   for part in str(flt[2]).split(",")):
                    flash(f"Valeur de filtre non valide : {flt[2]}", "error")
                else:
                    kept.append(flt)
            args.filters = kept
        return args

    # -- lists: keyset pages and indexed search -------------------------------------------
    list_template = "admin/backoffice_list.html"
    # Text search, when set: the whole text equals one of ``search_exact`` (column paths,
    # each with an index: references, identifiers, e-mail), or every word typed begins a
    # word of the indexed text (``text_index.INDEXED``) of the row ``search_words`` leads
    # to ("" for the row itself, "candidate" for a candidature's candidate). The other
    # ``column_searchable_list`` columns keep Flask-Admin's substring match.
    search_exact: tuple[str, ...] = ()
    search_words: str | None = None

    def get_list_row_actions(self):
        return [DrawnOnceRowAction(action)
                if isinstance(action, template.TemplateLinkRowAction)
                and action.template_name.startswith("row_actions.") else action
                for action in super().get_list_row_actions()]

    def _apply_filters(self, query, count_query, joins, count_joins, filters):
        """A filter on a related row's column (a candidature's session's formation's
        dispositif, its session's commune's département) is a correlated EXISTS along the
        relations instead of joins into the list's query: the database walks the list's
        order and checks each row on primary keys. Joined, SQLite built a Bloom filter of
        the 50,000 formations then scanned the candidatures (98 ms for « dispositif =
        HSP » at scale 25; EXISTS: 0.3 ms) and PostgreSQL hashed the join (49 → 1.4 ms)."""
        joined = []
        for entry in filters:
            flt = self._filters[entry[0]]
            path = self._filter_joins.get(flt.key_name or flt.column, []) \
                if isinstance(flt, sqla_filters.BaseSQLAFilter) else []
            if not path or not all(hasattr(step, "property") for step in path):
                joined.append(entry)
                continue
            condition = flt.apply(select(self.model.id), flt.clean(entry[2]), None).whereclause
            for relation in reversed(path):
                condition = (relation.any(condition) if relation.property.uselist
                             else relation.has(condition))
            query = query.filter(condition)
            if count_query is not None:
                count_query = count_query.filter(condition)
        return super()._apply_filters(query, count_query, joins, count_joins, joined)

    def _apply_search(self, query, count_query, joins, count_joins, search):
        if not self.search_exact and self.search_words is None:
            return super()._apply_search(query, count_query, joins, count_joins, search)
        condition = self.model.id.in_(self._search_ids(search))
        query = query.filter(condition)
        if count_query is not None:
            count_query = count_query.filter(condition)
        return query, count_query, joins, count_joins

    def _search_ids(self, search: str):
        """``SELECT id`` of the rows found by ``search``, one index each. A text of one
        word with a digit or an « @ » is a reference, an identifier or an e-mail: it is
        looked up exactly (and as words, except in names, which have no digit); any other
        text is words. One branch is one ``IN``, which the database plans by how many rows
        it expects (a common name: the list's order, filtered; a rare one: its index)."""
        exact = search.strip()
        values = {exact, exact.lower()}
        exact_shaped = not any(c.isspace() for c in exact) \
            and any(c.isdigit() or c == "@" for c in exact)
        words_model = None
        if self.search_words is not None:
            words_model = getattr(self.model, self.search_words).property.mapper.class_ \
                if self.search_words else self.model
        selects = []
        for name in self.search_exact if exact_shaped or words_model is None else ():
            column, path = tools.get_field_with_path(self.model, name)
            statement = select(self.model.id)
            for relation in path:
                statement = statement.join(relation)
            selects.append(statement.where(column.in_(values)))
        if words_model is not None and "@" not in exact and not (
                exact_shaped and words_model.__tablename__ in text_index.NAMES):
            relation = getattr(self.model, self.search_words) if self.search_words else None
            found = text_index.rows_matching(words_model, search)
            if found is not None and relation is None:
                selects.append(found)
            elif found is not None:
                local = next(iter(relation.property.local_columns))
                selects.append(select(self.model.id).where(local.in_(found)))
        others = [name for name in self.column_searchable_list or ()
                  if name not in self.search_exact and not self._is_indexed_column(name)]
        terms = [term for term in search.split() if term]
        if others and terms:
            statement, paths = select(self.model.id), []
            conditions = []
            for name in others:
                column, path = tools.get_field_with_path(self.model, name)
                paths.extend(p for p in path if p not in paths)
                conditions.append(column)
            for relation in paths:
                statement = statement.outerjoin(relation)
            selects.append(statement.where(and_(*(
                or_(*(column.ilike(tools.parse_like_term(term)) for column in conditions))
                for term in terms))))
        if not selects:
            return select(self.model.id).where(False)
        return selects[0] if len(selects) == 1 else union_all(*selects)

    def _is_indexed_column(self, name: str) -> bool:
        """A column searched through ``text_index``."""
        if self.search_words is None:
            return False
        prefix = f"{self.search_words}." if self.search_words else ""
        model = getattr(self.model, self.search_words).property.mapper.class_ \
            if self.search_words else self.model
        return name in {prefix + column for column in text_index.INDEXED[model.__tablename__]}

    def _keyset_order(self, sort_column, sort_desc) -> tuple[object, bool]:
        """(column sorted on, None for the id; descending) of the list."""
        column, descending = None, True
        if sort_column is not None and sort_column in self._sortable_columns \
                and not self._sortable_joins.get(sort_column):
            column, descending = self._sortable_columns[sort_column], bool(sort_desc)
        else:
            for attr, path, desc in self._get_default_order():
                if not path:
                    column, descending = attr, bool(desc)
                break
        if isinstance(column, list) or column is None \
                or getattr(column, "key", None) == "id":
            column = None
        return column, descending

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True,
                 page_size=None):
        """One page of the list after (or before) the cursor of the query string, in the
        order of the sorted column then the id: a fixed number of queries (the rows, and
        the count on lists that show one), whatever the page and its size."""
        count, query = super().get_list(None, sort_column, sort_desc, search, filters,
                                        execute=False, page_size=0)
        size = page_size or self.page_size
        column, descending = self._keyset_order(sort_column, sort_desc)
        state = g.get("admin_list") or {"args": None, "cursor": None}
        direction, token = state["cursor"] or (AFTER, None)
        cursor = decode_cursor(token, column) if token else None
        if token and cursor is None:
            flash("Le lien de page n'est plus valide : voici la première page.", "error")
            direction, token = AFTER, None
        backwards = direction == BEFORE and cursor is not None
        order_desc = descending != backwards
        ids = self.model.id
        if cursor is not None:
            query = query.filter(rows_after(
                column, cursor[1], ids, cursor[0], descending=order_desc,
                nulls_high=db.session.get_bind().dialect.name == "postgresql"))
        order = [ids.desc() if order_desc else ids.asc()]
        if column is not None:
            order.insert(0, column.desc() if order_desc else column.asc())
        rows = query.order_by(None).order_by(*order).limit(size + 1).all()
        more, rows = len(rows) > size, rows[:size]
        if backwards:
            rows.reverse()

        def cursor_of(row):
            return encode_cursor(row.id, getattr(row, column.key) if column is not None
                                 else None)

        first, last = (cursor_of(rows[0]), cursor_of(rows[-1])) if rows else (token, token)
        state["pager"] = {
            "previous": (first if (more if backwards else cursor is not None) else None),
            "next": (last if (cursor is not None if backwards else more) else None),
            "first": cursor is not None}
        g.admin_list = state
        return count, rows

    def pager_links(self) -> dict:
        """The links of the list's pager: « Première page », « Précédent », « Suivant »
        (None when there is no such page)."""
        state = g.get("admin_list") or {}
        pager, args = state.get("pager") or {}, state.get("args")
        if args is None:
            return {"first": None, "previous": None, "next": None}

        def link(direction, token):
            extra = {**args.extra_args, **({direction: token} if token else {})}
            return self._get_list_url(args.clone(page=None, extra_args=extra))

        return {"first": link(AFTER, None) if pager.get("first") else None,
                "previous": link(BEFORE, pager["previous"]) if pager.get("previous") else None,
                "next": link(AFTER, pager["next"]) if pager.get("next") else None}

    def validate_form(self, form) -> bool:
        if not super().validate_form(form):
            return False
        if request.method != "POST" or not hasattr(form, "_fields"):
            return True
        return self._check_unique(form)

    def _unique_groups(self) -> list[tuple[str, ...]]:
        table = self.model.__table__
        # Single unique columns are checked by Flask-Admin's Unique (UNIQUE_MESSAGE).
        return [tuple(c.name for c in con.columns) for con in table.constraints
                if isinstance(con, UniqueConstraint) and len(con.columns) > 1]

    def _check_unique(self, form) -> bool:
        """Refuse a duplicate combination before the database does, with a message on the
        field (e.g. a user attached twice to the same structure)."""
        mapper = inspect(self.model)
        edited = getattr(form, "_obj", None)  # None on a creation form
        current_id = edited.id if edited is not None else None
        ok = True
        for columns in self._unique_groups():
            values = {}
            for column in columns:
                attr = self._attribute_for_column(mapper, column)
                if attr is None or attr not in form._fields:
                    break
                field_value = form._fields[attr].data
                if hasattr(field_value, "id") and column.endswith("_id"):
                    field_value = field_value.id
                if field_value in (None, ""):
                    break
                values[column] = field_value
            else:
                query = select(func.count()).select_from(self.model)
                for column, value in values.items():
                    query = query.where(self.model.__table__.c[column] == value)
                if current_id is not None:
                    query = query.where(self.model.id != current_id)
                if db.session.scalar(query):
                    field = form._fields[self._attribute_for_column(mapper, columns[-1])]
                    label = ", ".join(str(form._fields[self._attribute_for_column(mapper, c)]
                                          .label.text) for c in columns)
                    field.errors = list(field.errors) + [
                        f"Cette valeur est déjà utilisée ({label}) : elle doit être unique."]
                    ok = False
        return ok

    @staticmethod
    def _attribute_for_column(mapper, column: str) -> str | None:
        """The form field name for a column: the column itself or its relationship."""
        for rel in mapper.relationships:
            if any(c.name == column for c in rel.local_columns) and rel.direction.name == "MANYTOONE":
                return rel.key
        return column if column in mapper.columns else None

    def create_model(self, form):
        self._form_in_progress = form
        return super().create_model(form)

    def update_model(self, form, model):
        self._form_in_progress = form
        return super().update_model(form, model)

    def handle_view_exception(self, exc: Exception) -> bool:
        if isinstance(exc, IntegrityError):
            message, field_name = self._explain_integrity_error(exc)
            form = getattr(self, "_form_in_progress", None)
            if form is not None and field_name and field_name in form._fields:
                field = form._fields[field_name]
                field.errors = list(field.errors) + [message]
            flash(f"Enregistrement refusé : {message}", "error")
            return True
        return super().handle_view_exception(exc)

    def _explain_integrity_error(self, exc: IntegrityError) -> tuple[str, str | None]:
        text = str(exc.orig)
        for name, message in CHECK_MESSAGES.items():
            if name in text:
                return message, CHECK_FIELDS.get(name)
        match = re.search(r"(?:UNIQUE constraint failed: [\w.]+|Key \((\w+)\))", text)
        if "unique" in text.lower() or "duplicate" in text.lower():
            field = match.group(1) if match and match.group(1) else None
            return UNIQUE_MESSAGE, field
        if "foreign key" in text.lower():
            return ("Cet enregistrement est lié à d'autres données (ou désigne un objet qui "
                    "n'existe pas) : opération impossible.", None)
        if "null" in text.lower():
            return "Un champ obligatoire n'est pas renseigné.", None
        return "Les données ne respectent pas les contraintes de la base.", None


class ReadOnlyModelView(SecureModelView):
    """Audit screens: list and detail only."""

    can_create = False
    can_edit = False
    can_delete = False


def register_views(admin) -> None:
    from backoffice.admin import (accounts, audit, candidatures, catalogue, jobs, messaging,
                                  reference, rules, workflows)

    from backoffice.admin import moderation
    for module in (accounts, reference, catalogue, moderation, candidatures, messaging, audit,
                   workflows, jobs, rules):
        module.register(admin)
