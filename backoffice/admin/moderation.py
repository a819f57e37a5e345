"""Moderation queue: formations waiting for a moderator (``en_attente_moderation`` and
``modifiee``), oldest first, with the time waiting; for a modified formation, the
side-by-side view of what changed against the validated version. « Valider » and
« Demander un complément » (comment mandatory, e-mailed to the OF by the workflow side
effect) work on one or many formations; each goes through ``workflow.fire`` via the
catalogue service (``service.moderate``: a savepoint per formation, one commit).
"""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_admin.actions import ActionsMixin, action
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload
from wtforms import HiddenField

from backoffice import clock
from backoffice.admin.base import STAFF, IdCheckMixin, has_role
from backoffice.extensions import db
from backoffice.input_guard import BaseForm
from backoffice.models import (Certification, Dispositif, Formation, FormationState,
                               Structure)
from backoffice.services import catalogue as service

QUEUE_STATES = (FormationState.EN_ATTENTE_MODERATION, FormationState.MODIFIEE)
FIELD_LABELS = {
    "intitule": "Intitulé", "objectif": "Objectif", "programme": "Programme",
    "certification_id": "Certification", "lien_web": "Lien web", "financement": "Financement",
    "dispositif": "Dispositif", "numero_marche": "Numéro du marché",
    "eligible_cpf": "Éligible CPF",
    "modalite_formation_continue": "Formation continue hors alternance",
    "modalite_contrat_pro": "Contrat de professionnalisation",
    "modalite_apprentissage": "Contrat d'apprentissage",
    "annees_cursus": "Années de cursus en apprentissage",
    "organisme_formateur_id": "Organisme formateur",
}


def waiting_time(submitted_at) -> str:
    if submitted_at is None:
        return "—"
    delta = clock.now() - submitted_at
    days, hours = delta.days, delta.seconds // 3600
    if days:
        return f"{days} j {hours} h"
    return f"{hours} h {delta.seconds % 3600 // 60} min"


class ActionForm(BaseForm):
    action = HiddenField()
    url = HiddenField()


class ModerationView(IdCheckMixin, BaseView, ActionsMixin):
    """The queue (a page of its own, not a model list) with bulk actions and the diff."""

    roles = STAFF
    page_size = 50

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.init_actions()

    def is_accessible(self) -> bool:
        return has_role(*self.roles)

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)

    def action_form(self):
        return ActionForm()

    def validate_form(self, form) -> bool:
        return form.validate_on_submit()

    def get_one(self, ident: str):
        formation = db.session.get(Formation, int(ident)) if str(ident).isdigit() else None
        if formation is None or formation.state not in QUEUE_STATES:
            return None
        return formation

    @expose("/")
    def index_view(self):
        page = max(request.args.get("page", 1, type=int) or 1, 1)
        q = (request.args.get("q") or "").strip()
        query = select(Formation).where(Formation.state.in_(QUEUE_STATES))
        if q:
            query = query.where(or_(Formation.reference.like(f"%{q}%"),
                                    func.lower(Formation.intitule).like(f"%{q.lower()}%")))
        total = db.session.scalar(select(func.count()).select_from(query.subquery()))
        rows = db.session.scalars(
            query.options(joinedload(Formation.structure))
            .order_by(Formation.submitted_at.asc().nulls_first(), Formation.id)
            .limit(self.page_size).offset((page - 1) * self.page_size)).all()
        pages = max((total + self.page_size - 1) // self.page_size, 1)
        actions, confirmations = self.get_actions_list()
        return self.render("admin/moderation_list.html", rows=rows, total=total, page=page,
                           pages=pages, q=q, actions=actions, form=ActionForm(),
                           waiting=waiting_time, states=FormationState.labels())

    @expose("/action/", methods=("POST",))
    def action_view(self):
        return self.handle_action()

    # -- actions -------------------------------------------------------------------------
    def _moderate(self, ids, decision: str, done_label: str, comment: str = "") -> None:
        """``service.moderate`` on the selected formations, one commit."""
        try:
            outcome = service.moderate(ids, decision, actor=current_user, comment=comment)
        except service.CatalogueError as error:
            db.session.rollback()
            flash(error.message, "error")
            return
        db.session.commit()
        if outcome.done:
            flash(f"{done_label} : {', '.join(outcome.done)}.", "success")
        for message in outcome.refused:
            flash(message, "error")

    @action("valider", "Valider", "Valider les formations sélectionnées ?")
    def action_validate(self, ids):
        self._moderate(ids, "valider", f"{len(ids)} formation(s) validée(s)")

    @action("demander_complement", "Demander un complément",
            "Demander un complément pour les formations sélectionnées (le commentaire sera "
            "envoyé par courriel à l'organisme) ?")
    def action_request_complement(self, ids):
        self._moderate(ids, "demander_complement", "Complément demandé",
                       comment=(request.form.get("commentaire") or "").strip())

    # -- diff ----------------------------------------------------------------------------
    @expose("/modifications/<int:id>")
    def diff_view(self, id: int):
        formation = self.get_one(str(id))
        if formation is None:
            abort(404)
        lines = [(FIELD_LABELS.get(name, name), self._display(name, before),
                  self._display(name, after))
                 for name, before, after in service.diff(formation)]
        return self.render("admin/moderation_diff.html", formation=formation, lines=lines,
                           waiting=waiting_time(formation.submitted_at))

    @expose("/decision/<int:id>", methods=("POST",))
    def decision_view(self, id: int):
        formation = self.get_one(str(id))
        if formation is None:
            abort(404)
        ids = [str(id)]
        if request.form.get("decision") == "valider":
            self.action_validate(ids)
        else:
            self.action_request_complement(ids)
        return redirect(url_for(".index_view"))

    @staticmethod
    def _display(name: str, value) -> str:
        if value is None or value == "":
            return "—"
        if name == "certification_id":
            certification = db.session.get(Certification, value)
            return str(certification) if certification else str(value)
        if name == "organisme_formateur_id":
            structure = db.session.get(Structure, value)
            return structure.raison_sociale if structure else str(value)
        if name == "dispositif":
            return Dispositif.labels().get(value, value)
        if isinstance(value, bool):
            return "Oui" if value else "Non"
        if isinstance(value, list):
            return ", ".join(str(v) for v in value) or "—"
        return str(value)


def register(admin) -> None:
    admin.add_view(ModerationView(name="File de modération", category="Offre de formation",
                                  endpoint="moderation_formations",
                                  url="moderation-formations"))

