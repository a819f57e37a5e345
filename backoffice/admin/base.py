"""The one secured base of every Flask-Admin screen.

* Access by staff role, once the second factor passed (``has_role``): anonymous users go
  to the login page with ``next``; a logged-in user without the role gets 403.
* French everywhere (Flask-Admin's own French catalogue through Flask-Babel).
* Forms carry Flask-WTF's CSRF token (the same one ``CSRFProtect`` checks on every POST).
* Large lists use ``simple_list_pager`` (no COUNT over a big table) and eager-load the
  relations they display (no query per row).
* A constraint violation becomes a French error on the field concerned, and the
  transaction is rolled back: nothing half-written stays in the database.
* Hostile input: an id that is not one (``?id=abc``, ``id=99999999999999999999``, in the
  query string or a form, for every view) is a 404 before any query; a page number out of
  range is the first page; a filter number the database cannot hold is dropped. Control
  characters are refused on every form field (``AdminForm`` is an ``input_guard.BaseForm``).
"""
from __future__ import annotations

import datetime as dt
import re

from flask import abort, flash, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_admin.contrib.sqla.form import AdminModelConverter
from flask_admin.contrib.sqla.validators import Unique
from flask_admin.model import filters, typefmt
from flask_admin.model.form import converts
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_login import current_user
from sqlalchemy import UniqueConstraint, func, inspect, select
from sqlalchemy.exc import IntegrityError
from stdnum.fr import siret as stdnum_siret
from wtforms import SelectField
from wtforms.validators import ValidationError

from backoffice import clock, workflow
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


MAX_PAGE = 1_000_000  # beyond, the page of a list is the first one


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
        """The list's page, sort and filters from the query string, made safe: a page out
        of range is the first one, a filter whose number the database cannot hold is
        dropped (with a message), like a value Flask-Admin itself finds invalid."""
        args = super()._get_list_extra_args()
        if not 0 <= (args.page or 0) <= MAX_PAGE:
            args.page = 0
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
