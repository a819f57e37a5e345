"""Prescribers: search the offer, find or register a candidate, write and submit a
candidature, follow and manage the candidatures (« Gestion des candidatures »)."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import contains_eager, joinedload

from backoffice import clock, forms_engine, permissions, search
from backoffice.auth import current_membership, membership_required
from backoffice.extensions import db
from backoffice.models import (DEPARTEMENTS_NOUVELLE_AQUITAINE, Candidate, Candidature,
                               CandidatureState, Dispositif, EntryMode, FollowUpStep,
                               Formation, PrescriberProfile, Session, SessionState)
from backoffice.services import candidatures as service
from backoffice.services import personal_data
from backoffice.views import CsrfForm

bp = Blueprint("prescription", __name__, url_prefix="/prescription")
PER_PAGE = 20

S = CandidatureState
TABS = [
    # (code, label, states, group)
    ("brouillons", "Mes brouillons", (S.BROUILLON,), "en_cours"),
    ("attente_validation", "En attente de validation", (S.EN_ATTENTE_VALIDATION,), "en_cours"),
    ("attente_avis", "Validées en attente d'avis", (S.EN_ATTENTE_AVIS,), "en_cours"),
    ("annulees", "Candidatures annulées", (S.ANNULEE,), "en_cours"),
    ("corbeille", "Corbeille", (S.CORBEILLE,), "en_cours"),
    ("retenues", "Retenues", (S.RETENUE,), "traitees"),
    ("non_retenues", "Non retenues", (S.NON_RETENUE,), "traitees"),
    ("avis_non_transmis", "Avis non transmis", (S.AVIS_NON_TRANSMIS,), "traitees"),
    ("refus_complete", "Refus : session complète", (S.REFUS_SESSION_COMPLETE,), "traitees"),
    ("refus_annulee", "Refus : session annulée", (S.REFUS_SESSION_ANNULEE,), "traitees"),
]
TAB_STATES = {code: states for code, _, states, _ in TABS}


prescriber_required = membership_required(service.is_prescriber)


@bp.app_template_global()
def candidature_state_label(code: str) -> str:
    return S.labels().get(code, code)


@bp.app_template_global()
def follow_up_label(code: str | None) -> str:
    return FollowUpStep.labels().get(code or "", "")


@bp.app_template_global()
def follow_up_steps() -> list:
    return list(FollowUpStep)


@bp.app_template_global()
def formation_title(formation: Formation) -> str:
    return search.display_intitule(formation)


# -- search of the offer ---------------------------------------------------------------------
def _criteria_from_request() -> search.Criteria:
    communes = [c.strip() for value in request.args.getlist("commune")
                for c in value.split(",") if c.strip()]
    organismes = []
    for value in request.args.getlist("organisme"):
        if value.strip().isdigit():
            organismes.append(int(value))
    return search.Criteria(
        q=request.args.get("q", "").strip()[:200],
        dispositif=request.args.get("dispositif") or None,
        departements=[d for d in request.args.getlist("departement") if d],
        communes=communes, organismes=organismes,
        exclude_started=request.args.get("exclure_commencees") == "1",
        include_ended=request.args.get("inclure_terminees") == "1")


def _page() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


@bp.route("/recherche")
@prescriber_required
def search_offer():
    criteria = _criteria_from_request()
    result, errors = None, []
    try:
        result = search.search_sessions(criteria, page=_page(), per_page=PER_PAGE)
    except search.SearchError as error:
        errors = error.messages
    return render_template(
        "prescription/search.html", criteria=criteria, result=result, errors=errors,
        dispositifs=Dispositif.choices(), departements=DEPARTEMENTS_NOUVELLE_AQUITAINE,
        entry_modes=EntryMode.labels(), today=clock.today()), 400 if errors else 200


def _open_session(session_id: int) -> Session:
    session = db.session.scalar(
        select(Session).join(Formation).options(contains_eager(Session.formation)).where(
            Session.id == session_id, Session.state == SessionState.ACTIVE,
            Formation.state.in_(search.SEARCHABLE_FORMATION_STATES)))
    if session is None:
        abort(404)
    return session


# -- « Ajouter » : find the candidate -----------------------------------------------------------
def _parse_date(value: str | None) -> dt.date | None:
    value = (value or "").strip()
    for pattern in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    return None


@bp.route("/sessions/<int:session_id>/ajouter")
@prescriber_required
def find_candidate(session_id: int):
    session = _open_session(session_id)
    args = request.args
    searched = any(args.get(k) for k in ("nom", "prenom", "date_naissance",
                                         "identifiant_france_travail", "identifiant_regional"))
    birth = _parse_date(args.get("date_naissance"))
    errors = []
    if args.get("date_naissance") and birth is None:
        errors.append("La date de naissance doit être au format jj/mm/aaaa.")
    candidates = service.search_candidates(
        membership=current_membership(), nom=args.get("nom", ""), prenom=args.get("prenom", ""), date_naissance=birth,
        identifiant_france_travail=args.get("identifiant_france_travail", ""),
        identifiant_regional=args.get("identifiant_regional", "")) if searched else []
    full_files = permissions.with_personal_information(current_membership(),
                                                       (c.id for c in candidates))
    return render_template("prescription/find_candidate.html", session=session,
                           candidates=candidates, searched=searched, errors=errors,
                           full_files=full_files,
                           highlight=args.get("doublon", type=int))


@bp.route("/sessions/<int:session_id>/nouveau-candidat", methods=["GET", "POST"])
@prescriber_required
def new_candidate(session_id: int):
    session = _open_session(session_id)
    form = forms_engine.build_form("candidate")
    if request.method == "GET":
        for name in ("nom", "prenom", "identifiant_france_travail", "identifiant_regional"):
            if request.args.get(name):
                form[name].data = request.args[name]
        if _parse_date(request.args.get("date_naissance")):
            form.date_naissance.data = _parse_date(request.args.get("date_naissance"))
    if form.validate_on_submit():
        try:
            candidate = service.create_candidate(form.values(),
                                                 membership=current_membership())
        except service.DuplicateCandidate as duplicate:
            db.session.rollback()
            for message in duplicate.messages:
                flash(message, "warning")
            match = duplicate.match
            params = {"doublon": match.id, "nom": match.nom, "prenom": match.prenom,
                      "date_naissance": f"{match.date_naissance:%d/%m/%Y}"} if match else {}
            return redirect(url_for(".find_candidate", session_id=session.id, **params))
        db.session.commit()
        flash("Le candidat est inscrit dans l'annuaire.", "success")
        return redirect(url_for(".new_candidature", session_id=session.id,
                                candidate_id=candidate.id))
    return render_template("prescription/candidate_form.html", form=form, session=session,
                           candidate=None)


def shows_personal_data(candidate: Candidate, what: str) -> bool:
    """Whether the current structure may see ``candidate``'s full file; when it may and the
    user is a staff member, the read is written to the RGPD access log, committed at once
    (call it before the view changes anything)."""
    allowed = permissions.can_edit_personal_information(current_membership(), candidate)
    if allowed and personal_data.is_traced(current_user):
        personal_data.record_access(actor=current_user, candidate_id=candidate.id, what=what,
                                    location=f"{request.method} {request.full_path}")
        db.session.commit()
    return allowed


def _candidate_file(candidate_id: int) -> Candidate:
    """The full file of a candidate, for a structure allowed to see it; 404 otherwise (the
    person's existence is not leaked)."""
    candidate = db.session.get(Candidate, candidate_id)
    if candidate is None or not shows_personal_data(candidate, "Fiche du candidat"):
        abort(404)
    return candidate


@bp.route("/candidats/<int:candidate_id>/modifier", methods=["GET", "POST"])
@prescriber_required
def edit_candidate(candidate_id: int):
    candidate = _candidate_file(candidate_id)
    back = request.args.get("retour", "")
    if not back.startswith("/prescription/"):
        back = url_for(".candidatures")
    form = forms_engine.build_form("candidate", obj=candidate)
    if form.validate_on_submit():
        try:
            service.update_candidate(candidate, form.values())
        except service.DuplicateCandidate as duplicate:
            db.session.rollback()
            form.form_errors.extend(duplicate.messages)
        else:
            db.session.commit()
            flash("La fiche du candidat est enregistrée.", "success")
            return redirect(back)
    return render_template("prescription/candidate_form.html", form=form, session=None,
                           candidate=candidate)


# -- the candidature form ------------------------------------------------------------------------
def _candidature_form(candidature: Candidature | None, session: Session):
    return forms_engine.build_form("candidature", obj=candidature,
                                   context=service.candidature_context(session))


def _apply_errors(form, error: service.CandidatureError) -> None:
    for field, messages in error.fields.items():
        if field in form and field != "csrf_token":
            form[field].errors = list(form[field].errors) + messages
        else:
            form.form_errors.extend(messages)
    shown = {m for messages in error.fields.values() for m in messages}
    form.form_errors.extend(m for m in error.messages if m not in shown)


def _handle_candidature_form(candidature: Candidature, form, session: Session):
    """POST of the candidature form: « brouillon » or « valider ». Returns a response
    on success, ``None`` to show the form again with its errors."""
    action = request.form.get("action", "brouillon")
    submit = action == "valider"
    valid = form.validate_on_submit()
    if not valid and not submit and "csrf_token" not in form.errors:
        # What a draft may lack (the service decides) is not an error for a draft.
        others = {k for k, v in form.errors.items() if v and k not in service.DRAFT_MAY_LACK}
        if not others:
            for name in service.DRAFT_MAY_LACK:
                form[name].errors = []
            valid = True
    if not valid:
        return None
    try:
        service.save(candidature, form.values(), actor=current_user,
                     membership=current_membership(), submit=submit)
    except service.CandidatureError as error:
        db.session.rollback()
        _apply_errors(form, error)
        return None
    state, candidature_id = candidature.state, candidature.id  # not reloaded after the commit
    db.session.commit()
    if action == "valider":
        if state == S.EN_ATTENTE_VALIDATION:
            flash("La candidature est enregistrée : elle attend la validation d'un "
                  "prescripteur de niveau 3 de votre structure.", "success")
        else:
            flash("La candidature est validée et transmise à l'organisme de formation.",
                  "success")
    else:
        flash("Le brouillon est enregistré.", "success")
    return redirect(url_for(".candidature", candidature_id=candidature_id))


@bp.route("/sessions/<int:session_id>/candidats/<int:candidate_id>/candidature",
          methods=["GET", "POST"])
@prescriber_required
def new_candidature(session_id: int, candidate_id: int):
    session = _open_session(session_id)
    candidate = db.session.get(Candidate, candidate_id)
    if candidate is None or candidate.anonymised_at is not None:
        abort(404)
    full_file = shows_personal_data(candidate, "Nouvelle candidature")
    form = _candidature_form(None, session)
    status = 200
    if request.method == "POST":
        candidature = service.new_candidature(candidate, session, actor=current_user,
                                              membership=current_membership())
        response = _handle_candidature_form(candidature, form, session)
        if response is not None:
            return response
        status = 422
    return render_template("prescription/candidature_form.html", form=form, session=session,
                           candidate=candidate, candidature=None,
                           full_file=full_file,
                           history=_candidate_history(candidate)), status


def _candidate_history(candidate: Candidate) -> list[Candidature]:
    membership = current_membership()
    return list(db.session.scalars(
        select(Candidature).options(joinedload(Candidature.session))
        .where(Candidature.candidate_id == candidate.id, service.prescriber_scope(membership))
        .order_by(Candidature.created_at.desc()).limit(20)))


def _get(candidature_id: int) -> Candidature:
    candidature = service.get_for_prescriber(candidature_id, current_membership())
    if candidature is None:
        abort(404)
    return candidature


@bp.route("/candidatures/<int:candidature_id>", methods=["GET", "POST"])
@prescriber_required
def candidature(candidature_id: int):
    candidature = _get(candidature_id)
    full_file = shows_personal_data(candidature.candidate, "Candidature (prescripteur)")
    session = candidature.session
    editable = (candidature.state == S.BROUILLON
                and candidature.prescriber_user_id == current_user.id)
    form = _candidature_form(candidature, session) if editable else None
    status = 200
    if request.method == "POST":
        if not editable:
            abort(404)
        response = _handle_candidature_form(candidature, form, session)
        if response is not None:
            return response
        status = 422
    from backoffice import workflow
    actions = {t.name for t in workflow.available_transitions(candidature, current_user)}
    return render_template("prescription/candidature.html", candidature=candidature,
                           form=form, session=session, candidate=candidature.candidate,
                           full_file=full_file,
                           actions=actions, confirm=CsrfForm(),
                           history=workflow.history(candidature)), status


def _action(candidature_id: int, operation, success: str):
    candidature = _get(candidature_id)
    form = CsrfForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        operation(candidature, actor=current_user)
    except service.CandidatureError as error:
        db.session.rollback()
        for message in error.messages:
            flash(message, "danger")
    else:
        db.session.commit()
        flash(success, "success")
    return redirect(url_for(".candidature", candidature_id=candidature_id))


@bp.route("/candidatures/<int:candidature_id>/annuler", methods=["GET", "POST"])
@prescriber_required
def cancel(candidature_id: int):
    if request.method == "GET":
        return render_template("prescription/confirm_cancel.html",
                               candidature=_get(candidature_id), form=CsrfForm())
    return _action(candidature_id, service.cancel, "La candidature est annulée.")


@bp.route("/candidatures/<int:candidature_id>/valider", methods=["POST"])
@prescriber_required
def validate(candidature_id: int):
    return _action(candidature_id, service.validate_level1,
                   "La candidature est validée et transmise à l'organisme de formation.")


@bp.route("/candidatures/<int:candidature_id>/corbeille", methods=["POST"])
@prescriber_required
def discard(candidature_id: int):
    return _action(candidature_id, service.discard, "Le brouillon est mis à la corbeille.")


# -- « Gestion des candidatures » -----------------------------------------------------------------
@bp.route("/candidatures")
@prescriber_required
def candidatures():
    membership = current_membership()
    tab = request.args.get("onglet", "attente_avis")
    if tab not in TAB_STATES:
        tab = "attente_avis"
    if membership.profile_prescripteur == PrescriberProfile.N1 and "onglet" not in request.args:
        tab = "attente_validation"
    scope = service.prescriber_scope(membership)
    items, total, page, pages = service.candidature_list(
        scope, TAB_STATES[tab], q=request.args.get("q", ""),
        session_id=request.args.get("session", type=int), page=_page())
    counts = service.count_by_state(scope)
    return render_template("prescription/candidatures.html", tabs=TABS, tab=tab, items=items,
                           total=total, page=page, pages=pages,
                           counts={code: sum(counts.get(s, 0) for s in states)
                                   for code, _, states, _ in TABS},
                           q=request.args.get("q", ""),
                           session_id=request.args.get("session", type=int))
