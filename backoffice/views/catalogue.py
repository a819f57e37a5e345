"""« Mon catalogue »: the formations and sessions of the active OF structure.

Only users whose active structure gives them ``gestionnaire_of_catalogue`` or
``gestionnaire_of_general`` come in (403 otherwise); a formation or session of another
structure is a 404. One transaction per user action: the view commits once at the end,
or rolls back on error. The domain work is in ``backoffice.services.catalogue``.
"""
from __future__ import annotations

from functools import wraps

from flask import (Blueprint, abort, flash, g, jsonify, redirect, render_template,
                   request, url_for)
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from backoffice import clock, forms_engine, workflow
from backoffice.auth import current_membership, membership_required
from backoffice.extensions import db
from backoffice.models import (Certification, Commune, Dispositif, EntryPoint, Formation,
                               FormationState, JobRun, JobRunStatus, Session, SessionState,
                               Structure)
from backoffice.services import catalogue as service
from backoffice.views import CsrfForm, run_action

bp = Blueprint("catalogue", __name__, url_prefix="/catalogue")
PAGE_SIZE = 25
TABS = (
    ("alerte", "Alerte"), ("publiees", "Publiées"), ("creees", "Créées"),
    ("modifiees", "Modifiées"), ("brouillons", "Brouillons"), ("archivees", "Archivées"),
    ("supprimees", "Supprimées"), ("import", "Import"),
)
# Rule fields (rules/publication.yaml « champ ») → form field names.
RULE_FIELDS = {"organisme_formateur": "organisme_formateur_id",
               "certification": "certification_id"}
SESSION_RULE_FIELDS = {"date_debut", "date_fin", "adresse", "commune", "sessions"}


@bp.context_processor
def _labels() -> dict:
    return {"formation_states": FormationState.labels(), "session_states": SessionState.labels()}


def catalogue_required(view):
    @wraps(view)
    @membership_required(service.can_manage_catalogue)
    def wrapper(*args, **kwargs):
        g.structure = current_membership().structure
        return view(*args, **kwargs)
    return wrapper


def _formation_or_404(formation_id: int) -> Formation:
    formation = db.session.scalar(
        select(Formation).options(selectinload(Formation.sessions).joinedload(Session.commune),
                                  selectinload(Formation.sessions)
                                  .joinedload(Session.organisme_formateur),
                                  joinedload(Formation.certification),
                                  joinedload(Formation.organisme_formateur))
        .where(Formation.id == formation_id, Formation.structure_id == g.structure.id))
    if formation is None:
        abort(404)
    return formation


def _session_or_404(session_id: int) -> Session:
    session = db.session.scalar(
        select(Session).join(Formation, Formation.id == Session.formation_id)
        .where(Session.id == session_id, Formation.structure_id == g.structure.id))
    if session is None:
        abort(404)
    return session


def _context() -> dict:
    return {"structure": g.structure}


# -- Mon catalogue -------------------------------------------------------------------------
@bp.route("/")
@catalogue_required
def index():
    tab = request.args.get("onglet", "publiees")
    if tab not in dict(TABS):
        tab = "publiees"
    if tab == "import":
        return redirect(url_for(".import_csv"))
    today = clock.today()
    query_text = (request.args.get("q") or "").strip()
    listing = service.catalogue_page(
        g.structure, tab, q=query_text, page=max(request.args.get("page", 1, type=int) or 1, 1),
        per_page=PAGE_SIZE, today=today)
    return render_template("catalogue/index.html", tabs=TABS, tab=tab, rows=listing.rows,
                           total=listing.total, page=listing.page, pages=listing.pages,
                           q=query_text, counts=listing.counts,
                           today=today, dispositifs=Dispositif.labels(),
                           states=FormationState.labels(), post_form=CsrfForm())


# -- formation form -----------------------------------------------------------------------
def _attach_violations(form, violations) -> tuple[list, list]:
    """Put each blocking violation on its field; return (top list, session-level ones)."""
    top, on_sessions = [], []
    for violation in violations:
        field = RULE_FIELDS.get(violation.field, violation.field)
        if violation.field in SESSION_RULE_FIELDS:
            on_sessions.append(violation)
        elif form is not None and field in form._fields and violation.blocking:
            form[field].errors = list(form[field].errors) + [violation.message]
        top.append(violation)
    return top, on_sessions


@bp.route("/formations/nouvelle", methods=["GET", "POST"])
@catalogue_required
def new_formation():
    form = forms_engine.build_form("formation", context=_context())
    if form.validate_on_submit():
        try:
            formation = service.create_formation(form.values(), actor=current_user,
                                                 structure=g.structure)
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            form.form_errors.append("Une autre formation vient d'être créée au même moment : "
                                    "enregistrez de nouveau.")
        else:
            flash(f"Formation {formation.reference} enregistrée en brouillon. Ajoutez ses "
                  "sessions puis publiez-la.", "success")
            return redirect(url_for(".formation", formation_id=formation.id))
    return render_template("catalogue/formation.html", form=form, formation=None,
                           violations=[], session_violations=[], post_form=CsrfForm())


@bp.route("/formations/<int:formation_id>", methods=["GET", "POST"])
@catalogue_required
def formation(formation_id: int):
    formation = _formation_or_404(formation_id)
    form = forms_engine.build_form("formation", obj=formation, context=_context())
    editable = formation.state in service.EDITABLE_STATES
    if request.method == "POST" and editable and form.validate_on_submit():
        if request.form.get("version", type=int) != formation.version:
            form.form_errors.append("Cette formation vient d'être modifiée par quelqu'un "
                                    "d'autre : rechargez la page et recommencez.")
        else:
            try:
                service.update_formation(formation, form.values(), actor=current_user)
                db.session.commit()
            except (service.CatalogueError, workflow.ConflictError) as error:
                db.session.rollback()
                form.form_errors.append(error.message)
            else:
                flash("Formation enregistrée.", "success")
                if request.form.get("action") == "publier":
                    return redirect(url_for(".publish", formation_id=formation.id))
                return redirect(url_for(".formation", formation_id=formation.id))
    return render_template("catalogue/formation.html", form=form, formation=formation,
                           violations=[], session_violations=[], post_form=CsrfForm(),
                           editable=editable)


@bp.route("/formations/<int:formation_id>/publier")
@catalogue_required
def publish(formation_id: int):
    """« Publier »: the publication checks; failures on the form, else the review page."""
    formation = _formation_or_404(formation_id)
    try:
        service.check_publishable(formation)
    except service.CatalogueError as error:
        flash(error.message, "warning")
        return redirect(url_for(".formation", formation_id=formation.id))
    violations = service.publication_check(formation)
    blocking = [v for v in violations if v.blocking]
    if blocking:
        form = forms_engine.build_form("formation", obj=formation, context=_context(),
                                       formdata=None)
        top, on_sessions = _attach_violations(form, violations)
        return render_template("catalogue/formation.html", form=form, formation=formation,
                               violations=top, session_violations=on_sessions,
                               post_form=CsrfForm(), editable=True)
    duplicates = service.duplicate_warnings(formation)
    return render_template("catalogue/review.html", formation=formation,
                           warnings=[v for v in violations if not v.blocking],
                           duplicates=duplicates, post_form=CsrfForm(),
                           dispositifs=Dispositif.labels())


@bp.route("/formations/<int:formation_id>/confirmer", methods=["POST"])
@catalogue_required
def confirm(formation_id: int):
    formation = _formation_or_404(formation_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    try:
        service.confirm_publication(formation, actor=current_user)
        db.session.commit()
    except workflow.GuardFailed:
        db.session.rollback()
        flash("La formation ne remplit plus les conditions de publication : corrigez les "
              "points signalés.", "error")
        return redirect(url_for(".publish", formation_id=formation_id))
    except workflow.WorkflowError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for(".formation", formation_id=formation_id))
    if formation.state == FormationState.MODIFIEE:
        flash("Modification publiée : elle sera visible après validation par les "
              "gestionnaires de l'offre ; la version validée reste visible d'ici là.",
              "success")
    else:
        flash("Publication confirmée : les gestionnaires de l'offre de formation vont "
              "contrôler votre saisie avant de la valider.", "success")
    return redirect(url_for(".index", onglet="modifiees" if formation.state ==
                            FormationState.MODIFIEE else "creees"))


# -- sessions -----------------------------------------------------------------------------
def _session_page(formation, form, session=None, duplicates=(), locked=False):
    return render_template("catalogue/session.html", formation=formation, form=form,
                           session=session, duplicates=duplicates, locked=locked,
                           post_form=CsrfForm(),
                           hsp=formation.dispositif == Dispositif.HSP)


@bp.route("/formations/<int:formation_id>/sessions/nouvelle", methods=["GET", "POST"])
@catalogue_required
def new_session(formation_id: int):
    formation = _formation_or_404(formation_id)
    form = forms_engine.build_form("session", context=_context())
    duplicates = []
    if form.validate_on_submit():
        try:
            session = service.create_session(
                formation, form.values(), actor=current_user,
                refuse_duplicates=not request.form.get("confirmer_doublon"))
            db.session.commit()
            flash(f"Session {session.reference} ajoutée.", "success")
            return redirect(url_for(".formation", formation_id=formation.id) + "#sessions")
        except service.ProbableDuplicate as duplicate:
            db.session.rollback()
            duplicates = duplicate.warnings
        except service.CatalogueError as error:
            db.session.rollback()
            form.form_errors.append(error.message)
        except IntegrityError:
            db.session.rollback()
            form.form_errors.append("Une autre session vient d'être créée au même moment : "
                                    "enregistrez de nouveau.")
        formation = _formation_or_404(formation_id)
    return _session_page(formation, form, duplicates=duplicates)


@bp.route("/sessions/<int:session_id>", methods=["GET", "POST"])
@catalogue_required
def session(session_id: int):
    session = _session_or_404(session_id)
    formation = session.formation
    form = forms_engine.build_form("session", obj=session, context=_context())
    if form.validate_on_submit():
        try:
            service.update_session(session, form.values(), actor=current_user)
            db.session.commit()
        except service.CatalogueError as error:
            db.session.rollback()
            session = _session_or_404(session_id)
            formation = session.formation
            if error.field and error.field in form._fields:
                form[error.field].errors = list(form[error.field].errors) + [error.message]
            else:
                form.form_errors.append(error.message)
        except workflow.ConflictError as error:
            db.session.rollback()
            form.form_errors.append(error.message)
        else:
            flash(f"Session {session.reference} enregistrée.", "success")
            return redirect(url_for(".formation", formation_id=formation.id) + "#sessions")
    return _session_page(formation, form, session=session,
                         locked=service.session_dates_locked(session))


@bp.route("/sessions/<int:session_id>/dupliquer", methods=["POST"])
@catalogue_required
def duplicate(session_id: int):
    session = _session_or_404(session_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    try:
        copy = service.duplicate_session(session, actor=current_user)
        db.session.commit()
    except service.CatalogueError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for(".formation", formation_id=session.formation_id))
    flash(f"Session {session.reference} dupliquée : voici la copie {copy.reference}, "
          "mettez à jour ses données puis enregistrez.", "success")
    return redirect(url_for(".session", session_id=copy.id))


@bp.route("/sessions/<int:session_id>/points-entree", methods=["POST"])
@catalogue_required
def add_entry_point(session_id: int):
    """Entry points of an HSP session: a date and its places."""
    session = _session_or_404(session_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    run_action(service.add_entry_point, session, request.form.get("date_entree"),
               request.form.get("places"), actor=current_user, success="Point d'entrée ajouté.")
    return redirect(url_for(".session", session_id=session_id) + "#points-entree")


def _entry_point_or_404(entry_point_id: int) -> EntryPoint:
    entry_point = db.session.scalar(
        select(EntryPoint).join(Session, Session.id == EntryPoint.session_id)
        .join(Formation, Formation.id == Session.formation_id)
        .where(EntryPoint.id == entry_point_id, Formation.structure_id == g.structure.id))
    if entry_point is None:
        abort(404)
    return entry_point


@bp.route("/points-entree/<int:entry_point_id>", methods=["POST"])
@catalogue_required
def edit_entry_point(entry_point_id: int):
    entry_point = _entry_point_or_404(entry_point_id)
    session_id = entry_point.session_id
    if not CsrfForm().validate_on_submit():
        abort(400)
    run_action(service.update_entry_point, entry_point, request.form.get("date_entree"),
               request.form.get("places"), actor=current_user,
               success="Point d'entrée enregistré.")
    return redirect(url_for(".session", session_id=session_id) + "#points-entree")


@bp.route("/points-entree/<int:entry_point_id>/supprimer", methods=["POST"])
@catalogue_required
def delete_entry_point(entry_point_id: int):
    entry_point = _entry_point_or_404(entry_point_id)
    session_id = entry_point.session_id
    if not CsrfForm().validate_on_submit():
        abort(400)
    run_action(service.delete_entry_point, entry_point, actor=current_user,
               success="Point d'entrée supprimé.")
    return redirect(url_for(".session", session_id=session_id) + "#points-entree")


# -- maintenance: archive, delete, restore; cancel or delete a session ------------------------
def _fire(action, obj, success: str, **kwargs) -> bool:
    """Run a maintenance action (one transaction); flash its outcome in French."""
    return run_action(action, obj, actor=current_user, success=success,
                      refused="Action refusée : ", **kwargs)


@bp.route("/formations/<int:formation_id>/archiver", methods=["POST"])
@catalogue_required
def archive(formation_id: int):
    formation = _formation_or_404(formation_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    if _fire(service.archive_formation, formation,
             f"Formation {formation.reference} archivée : elle n'est plus proposée aux "
             "candidats. Vous la retrouvez dans l'onglet « Archivées »."):
        return redirect(url_for(".index", onglet="archivees"))
    return redirect(url_for(".formation", formation_id=formation_id))


@bp.route("/formations/<int:formation_id>/supprimer", methods=["GET", "POST"])
@catalogue_required
def delete(formation_id: int):
    """« Supprimer »: a confirmation page, then the deletion (a state: it can be restored)."""
    formation = _formation_or_404(formation_id)
    post_form = CsrfForm()
    if request.method == "POST":
        if not post_form.validate_on_submit():
            abort(400)
        if _fire(service.delete_formation, formation,
                 f"Formation {formation.reference} supprimée. Vous pouvez la restaurer depuis "
                 "l'onglet « Supprimées »."):
            return redirect(url_for(".index", onglet="supprimees"))
        return redirect(url_for(".formation", formation_id=formation_id))
    return render_template("catalogue/delete.html", formation=formation, post_form=post_form)


@bp.route("/formations/<int:formation_id>/restaurer", methods=["POST"])
@catalogue_required
def restore(formation_id: int):
    formation = _formation_or_404(formation_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    origin = "archivees" if formation.state == FormationState.ARCHIVEE else "supprimees"
    if _fire(service.restore_formation, formation,
             f"Formation {formation.reference} restaurée en brouillon : vérifiez-la puis "
             "publiez-la de nouveau."):
        return redirect(url_for(".formation", formation_id=formation_id))
    return redirect(url_for(".index", onglet=origin))


@bp.route("/sessions/<int:session_id>/annuler", methods=["POST"])
@catalogue_required
def cancel_session(session_id: int):
    session = _session_or_404(session_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    if _fire(service.cancel_session, session, f"Session {session.reference} annulée.",
             reason=request.form.get("motif", "")):
        return redirect(url_for(".formation", formation_id=session.formation_id) + "#sessions")
    return redirect(url_for(".session", session_id=session_id) + "#maintenance")


@bp.route("/sessions/<int:session_id>/supprimer", methods=["POST"])
@catalogue_required
def delete_session(session_id: int):
    session = _session_or_404(session_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    if _fire(service.delete_session, session, f"Session {session.reference} supprimée."):
        return redirect(url_for(".formation", formation_id=session.formation_id) + "#sessions")
    return redirect(url_for(".session", session_id=session_id) + "#maintenance")


# -- CSV import ---------------------------------------------------------------------------
@bp.route("/import", methods=["GET", "POST"])
@catalogue_required
def import_csv():
    post_form = CsrfForm()
    report, error = None, None
    if request.method == "POST":
        upload = request.files.get("fichier")
        if not post_form.validate_on_submit():
            error = "Le formulaire a expiré : rechargez la page et recommencez."
        elif upload is None or not upload.filename:
            error = "Choisissez un fichier CSV à importer."
        else:
            raw = upload.read()
            all_or_nothing = bool(request.form.get("tout_ou_rien"))
            try:
                rows, _, _ = service.read_csv(raw)
                if len(rows) > service.IMPORT_BACKGROUND_THRESHOLD:
                    run_id = service.start_import(
                        raw, actor=current_user, structure=g.structure,
                        filename=upload.filename, total=len(rows),
                        all_or_nothing=all_or_nothing)
                    return redirect(url_for(".import_progress", run_id=run_id))
                report = service.import_csv(raw, actor=current_user, structure=g.structure,
                                            all_or_nothing=all_or_nothing)
                if report.cancelled:
                    db.session.rollback()
                else:
                    db.session.commit()
            except service.CatalogueError as exc:
                db.session.rollback()
                error = exc.message
    return render_template("catalogue/import.html", tabs=TABS, tab="import",
                           columns=service.IMPORT_COLUMNS, report=report, error=error,
                           post_form=post_form, counts=None,
                           threshold=service.IMPORT_BACKGROUND_THRESHOLD)


def _import_run_or_404(run_id: int):
    """The import job and its state; another structure's job is a 404."""
    run = db.session.get(JobRun, run_id)
    if run is None or run.job != service.IMPORT_JOB:
        abort(404)
    state = service.import_state(run)
    if state.get("structure_id") != g.structure.id:
        abort(404)
    return run, state


def _import_status(run, state) -> dict:
    total = state.get("total") or 0
    done = state.get("traites") or 0
    status = JobRunStatus(run.status).value
    waiting = (JobRunStatus.EN_ATTENTE.value, JobRunStatus.EN_COURS.value)
    return {"statut": status, "termine": status not in waiting,
            "traites": done, "total": total,
            "pourcentage": int(done * 100 / total) if total else 0,
            "tout_ou_rien": bool(state.get("tout_ou_rien")),
            "erreur": state.get("erreur") or run.error}


@bp.route("/import/<int:run_id>")
@catalogue_required
def import_progress(run_id: int):
    run, state = _import_run_or_404(run_id)
    status = _import_status(run, state)
    report = (service.ImportReport.from_dict(state["rapport"])
              if state.get("rapport") else None)
    return render_template("catalogue/import_progress.html", tabs=TABS, tab="import",
                           run=run, state=state, status=status, report=report, counts=None)


@bp.route("/import/<int:run_id>/etat")
@catalogue_required
def import_status(run_id: int):
    run, state = _import_run_or_404(run_id)
    return jsonify(_import_status(run, state))


# -- search endpoints of the form widgets ---------------------------------------------------
def _limit_query() -> str:
    return (request.args.get("q") or "").strip()[:100]


@bp.route("/api/certifications")
@catalogue_required
def api_certifications():
    q = _limit_query()
    if len(q) < 2:
        return jsonify(resultats=[])
    like = f"%{q.lower()}%"
    rows = db.session.scalars(
        select(Certification).where(Certification.active.is_(True),
                                    or_(Certification.code_certifinfo.like(f"{q}%"),
                                        func.lower(Certification.intitule).like(like)))
        .order_by(Certification.intitule).limit(20))
    return jsonify(resultats=[{"id": c.id, "libelle": str(c)} for c in rows])


@bp.route("/api/communes")
@catalogue_required
def api_communes():
    q = _limit_query()
    if len(q) < 2:
        return jsonify(resultats=[])
    condition = (Commune.code_postal.like(f"{q}%") if q.isdigit()
                 else func.lower(Commune.nom).like(f"{q.lower()}%"))
    rows = db.session.scalars(select(Commune).where(condition)
                              .order_by(Commune.nom, Commune.code_postal).limit(20))
    return jsonify(resultats=[{"id": c.id, "libelle": str(c)} for c in rows])


@bp.route("/api/organismes-formateurs")
@catalogue_required
def api_organisations():
    q = _limit_query()
    conditions = forms_engine.CHOICE_SOURCES["organismes_formateurs_meme_siren"].restrict(
        _context())
    if q:
        like = f"%{q.lower()}%"
        conditions.append(or_(func.lower(Structure.raison_sociale).like(like),
                              Structure.siret.like(f"{q}%")))
    rows = db.session.scalars(select(Structure).where(*conditions)
                              .order_by(Structure.raison_sociale).limit(20))
    return jsonify(resultats=[{"id": s.id, "libelle": str(s)} for s in rows])
