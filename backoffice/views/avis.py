"""OF side of the candidatures: the candidatures received on the OF's sessions, the avis
(one by one or in bulk) and the six-step follow-up."""
from __future__ import annotations


from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from backoffice.auth import current_membership, membership_required
from backoffice.extensions import db
from backoffice.models import CandidatureState
from backoffice.services import candidatures as service
from backoffice.views import CsrfForm
from backoffice.views.prescribers import _page, shows_personal_data

bp = Blueprint("avis", __name__, url_prefix="/candidatures-of")

S = CandidatureState
TABS = [
    ("a_traiter", "À traiter (en attente d'avis)", (S.EN_ATTENTE_AVIS,)),
    ("retenues", "Retenues", (S.RETENUE,)),
    ("non_retenues", "Non retenues", (S.NON_RETENUE,)),
    ("refus_complete", "Refus : session complète", (S.REFUS_SESSION_COMPLETE,)),
    ("refus_annulee", "Refus : session annulée", (S.REFUS_SESSION_ANNULEE,)),
    ("annulees", "Annulées par le prescripteur", (S.ANNULEE,)),
    ("avis_non_transmis", "Avis non transmis", (S.AVIS_NON_TRANSMIS,)),
]
TAB_STATES = {code: states for code, _, states in TABS}
AVIS_CHOICES = [(S.RETENUE.value, "Retenue"), (S.NON_RETENUE.value, "Non retenue"),
                (S.REFUS_SESSION_COMPLETE.value, "Refus : session complète"),
                (S.REFUS_SESSION_ANNULEE.value, "Refus : session annulée")]


of_required = membership_required(service.is_of_manager)


@bp.route("/")
@of_required
def candidatures():
    membership = current_membership()
    tab = request.args.get("onglet", "a_traiter")
    if tab not in TAB_STATES:
        tab = "a_traiter"
    scope = service.of_scope(membership)
    items, total, page, pages = service.candidature_list(
        scope, TAB_STATES[tab], q=request.args.get("q", ""),
        session_id=request.args.get("session", type=int), page=_page())
    counts = service.count_by_state(scope)
    return render_template("prescription/of_candidatures.html", tabs=TABS, tab=tab,
                           items=items, total=total, page=page, pages=pages,
                           counts={code: sum(counts.get(s, 0) for s in states)
                                   for code, _, states in TABS},
                           q=request.args.get("q", ""), avis_choices=AVIS_CHOICES,
                           form=CsrfForm())


def _get(candidature_id: int):
    candidature = service.get_for_of(candidature_id, current_membership())
    if candidature is None:
        abort(404)
    return candidature


@bp.route("/<int:candidature_id>")
@of_required
def candidature(candidature_id: int):
    candidature = _get(candidature_id)
    return render_template("prescription/of_candidature.html", candidature=candidature,
                           candidate=candidature.candidate, session=candidature.session,
                           full_file=shows_personal_data(candidature.candidate,
                                                         "Candidature (organisme)"),
                           avis_choices=AVIS_CHOICES, form=CsrfForm())


@bp.route("/<int:candidature_id>/avis", methods=["POST"])
@of_required
def give_avis(candidature_id: int):
    candidature = _get(candidature_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    try:
        service.give_avis(candidature, request.form.get("avis", ""), actor=current_user,
                          motif=request.form.get("motif"))
    except service.CandidatureError as error:
        db.session.rollback()
        for message in error.messages:
            flash(message, "danger")
    else:
        db.session.commit()
        flash(f"Avis enregistré : {S(candidature.state).label}.", "success")
    return redirect(url_for(".candidature", candidature_id=candidature_id))


@bp.route("/<int:candidature_id>/suivi", methods=["POST"])
@of_required
def follow_up(candidature_id: int):
    candidature = _get(candidature_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    try:
        service.set_follow_up(candidature, request.form.get("etape", ""))
    except service.CandidatureError as error:
        db.session.rollback()
        for message in error.messages:
            flash(message, "danger")
    else:
        db.session.commit()
        flash("L'étape du suivi est enregistrée.", "success")
    return redirect(url_for(".candidature", candidature_id=candidature_id))


@bp.route("/avis-groupe", methods=["POST"])
@of_required
def bulk_avis():
    """The same avis on several candidatures (``service.give_avis_to_many``), one commit."""
    if not CsrfForm().validate_on_submit():
        abort(400)
    try:
        outcome = service.give_avis_to_many(
            request.form.getlist("ids", type=int), request.form.get("avis", ""),
            actor=current_user, membership=current_membership(),
            motif=request.form.get("motif"))
    except service.CandidatureNotFound:
        db.session.rollback()
        abort(404)
    except service.CandidatureError as error:
        db.session.rollback()
        flash(error.message, "danger")
        return redirect(url_for(".candidatures"))
    db.session.commit()
    if outcome.done:
        flash(f"{outcome.done} avis enregistré(s).", "success")
    for message in outcome.refused:
        flash(message, "danger")
    return redirect(url_for(".candidatures"))
