"""Accounts area: registration, activation, forgotten password, Mon compte, Mes structures,
the référent pages (Ma structure), the moderators' first-account page, habilitations and
delegations. Thin views over ``backoffice.services.accounts``; one transaction per action."""
from __future__ import annotations

from functools import wraps

from flask import (Blueprint, abort, flash, g, redirect, render_template, request,
                   session, url_for)
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from wtforms import (BooleanField, DateField, EmailField, HiddenField, PasswordField,
                     SelectField, StringField, TextAreaField)
from wtforms.validators import DataRequired, Email, Length, Optional, ValidationError

from backoffice import csv_export, forms_engine, workflow
from backoffice.auth import (ACTIVE_STRUCTURE_KEY, current_membership, current_user_session,
                             staff_required)
from backoffice.extensions import db
from backoffice.input_guard import BaseForm
from backoffice.models import (AccountRequest, AffiliationRequest, Delegation, Habilitation,
                               HabilitationRole, HabilitationState, Membership, OfProfile,
                               ParcoursProProfile, PrescriberProfile, PrescriberType,
                               ReferencingRequest, RequestState, SessionEndReason, StaffRole,
                               Structure, StructureKind, User, UserState)
from backoffice.passwords import PasswordPolicy
from backoffice.services import accounts as service, sessions
from backoffice.views import CsrfForm, run_action

bp = Blueprint("accounts", __name__)

# Pages an account waiting for validation may still see (« accès limité »).
PENDING_ALLOWED = {"accounts.pending", "accounts.my_account", "auth.logout", "auth.login",
                   "static", "accounts.activate", "accounts.confirm_email"}


def _same_as(other: str, label: str):
    def check(form, field):
        if field.data != form[other].data:
            raise ValidationError(f"Cette saisie ne correspond pas au champ « {label} ».")
    return check


# The account's e-mail and names are checked again by the service (it knows the account).
PASSWORD_VALIDATORS = [DataRequired("Indiquez un mot de passe."), PasswordPolicy()]


def _siret_field(label: str, required: bool = True):
    def check(form, field):
        try:
            field.data = service.check_siret(field.data)
        except service.AccountError as error:
            raise ValidationError(error.message) from None
    return StringField(label, validators=[
        DataRequired(f"Indiquez le {label.lower()}.") if required else Optional(), check])


# -- forms ------------------------------------------------------------------------------------
class ReferencingForm(BaseForm):
    class Meta:
        csrf = False  # part of the registration form, which carries the token

    raison_sociale = StringField("Raison sociale", validators=[
        DataRequired("Indiquez la raison sociale."), Length(max=200)])
    sigle = StringField("Sigle", validators=[Optional(), Length(max=60)])
    siret = _siret_field("SIRET")
    adresse = StringField("Adresse", validators=[Optional(), Length(max=250)])
    code_postal = StringField("Code postal", validators=[Optional(), Length(min=5, max=5,
                              message="Le code postal compte 5 chiffres.")])
    commune_nom = StringField("Commune", validators=[Optional(), Length(max=100)])


class EmailForm(BaseForm):
    email = EmailField("Adresse électronique", validators=[
        DataRequired("Indiquez votre adresse électronique."),
        Email("Cette adresse électronique n'est pas valide.")])


class NewPasswordForm(BaseForm):
    password = PasswordField("Nouveau mot de passe", validators=PASSWORD_VALIDATORS)
    confirmation = PasswordField("Confirmation du mot de passe", validators=[
        DataRequired("Confirmez le mot de passe."), _same_as("password", "Nouveau mot de passe")])


class ChangePasswordForm(NewPasswordForm):
    current = PasswordField("Mot de passe actuel", validators=[
        DataRequired("Indiquez votre mot de passe actuel.")])


class ProfileForm(BaseForm):
    nom = StringField("Nom", validators=[DataRequired("Indiquez votre nom."), Length(max=100)])
    prenom = StringField("Prénom", validators=[DataRequired("Indiquez votre prénom."),
                                               Length(max=100)])
    fonction = StringField("Fonction", validators=[Optional(), Length(max=150)])
    telephone = StringField("Téléphone", validators=[Optional(), Length(max=20)])

    def validate_telephone(self, field):
        if field.data:
            message = forms_engine._check_telephone(field.data)
            if message:
                raise ValidationError(message)
            field.data = forms_engine._normalise_telephone(field.data)


class ChangeEmailForm(BaseForm):
    new_email = EmailField("Nouvelle adresse électronique", validators=[
        DataRequired("Indiquez la nouvelle adresse."),
        Email("Cette adresse électronique n'est pas valide.")])
    current = PasswordField("Mot de passe actuel", validators=[
        DataRequired("Indiquez votre mot de passe actuel.")])


class DecisionForm(BaseForm):
    decision = HiddenField(validators=[DataRequired()])
    reason = TextAreaField("Motif (obligatoire pour un refus)", validators=[Optional()])
    profile_of = SelectField("Profil OF", validate_choice=False)
    profile_prescripteur = SelectField("Profil prescripteur", validate_choice=False)
    profile_parcourspro = SelectField("Profil ParcoursPro", validate_choice=False)


class RightsForm(BaseForm):
    profile_of = SelectField("Profil OF", validate_choice=False)
    profile_prescripteur = SelectField("Profil prescripteur", validate_choice=False)
    profile_parcourspro = SelectField("Profil ParcoursPro", validate_choice=False)
    is_referent = BooleanField("Référent de la structure")


class StructureIdForm(BaseForm):
    structure_id = HiddenField(validators=[DataRequired()])
    message = TextAreaField("Message au référent", validators=[Optional(), Length(max=1000)])


class ActivationCodeForm(BaseForm):
    siret = _siret_field("SIRET")
    code = StringField("Code d'activation", validators=[DataRequired("Indiquez le code reçu.")])


class AccessRequestForm(BaseForm):
    siret = _siret_field("SIRET")
    role = SelectField("Rôle demandé", choices=[(r.value, r.label) for r in HabilitationRole],
                       validators=[DataRequired("Choisissez un rôle.")])


class DelegationForm(BaseForm):
    siret_etablissement = SelectField("SIRET de l'établissement", validators=[
        DataRequired("Choisissez un SIRET.")])
    siret_tiers = _siret_field("SIRET du tiers")
    email_tiers = EmailField("Courriel du tiers", validators=[
        DataRequired("Indiquez le courriel du tiers."),
        Email("Cette adresse électronique n'est pas valide.")])
    role = SelectField("Rôle délégué", choices=[(r.value, r.label) for r in HabilitationRole])
    end_date = DateField("Date de fin (facultative)", validators=[Optional()],
                         render_kw={"type": "date"})


class RoleForm(BaseForm):
    role = SelectField("Rôle", choices=[(r.value, r.label) for r in HabilitationRole])


class CodeIssueForm(BaseForm):
    siret = _siret_field("SIRET")


def _profile_choices(form, structure: Structure) -> None:
    allowed = service.allowed_profiles(structure)
    for family in service.FAMILIES:
        form[family].choices = [("", "— aucun —")] + allowed[family]


def _profiles_from(form) -> dict:
    return {family: form[family].data or None for family in service.FAMILIES}


def _error(message: str, status: int = 400, title: str = "Action impossible"):
    return render_template("error.html", code=status, title=title, text=message), status


PROFILE_LABELS = {p.value: p.label for enum in (OfProfile, PrescriberProfile, ParcoursProProfile)
                  for p in enum} | {"beneficiaire": "Bénéficiaire ParcoursPro"}


@bp.app_context_processor
def _account_labels():
    def profile_labels(membership) -> str:
        return ", ".join(PROFILE_LABELS.get(code, code) for code in membership.profiles)

    def state_label(enum_name: str, code: str | None) -> str:
        enum = {"user": UserState, "request": RequestState}[enum_name]
        return enum(code).label if code in {e.value for e in enum} else (code or "")
    return {"profile_labels": profile_labels, "state_label": state_label}


# -- limited access while the account waits for validation ----------------------------------------
@bp.before_app_request
def _limit_pending_accounts():
    if current_user.is_authenticated and current_user.state == UserState.EN_ATTENTE_VALIDATION \
            and request.endpoint not in PENDING_ALLOWED:
        return redirect(url_for("accounts.pending"))
    return None


def active_account_required(view):
    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if current_user.state != UserState.ACTIF:
            return redirect(url_for("accounts.pending"))
        return view(*args, **kwargs)
    return wrapper


@bp.route("/compte-en-attente")
@login_required
def pending():
    return render_template("accounts/pending.html")


# -- registration -------------------------------------------------------------------------------
@bp.route("/inscription", methods=["GET", "POST"])
def register():
    query = request.args.get("q", "").strip()
    new_structure = request.values.get("nouvelle") == "1"
    structure = None
    structure_id = request.values.get("structure_id", type=int)
    if structure_id:
        structure = db.session.get(Structure, structure_id)
        if structure is None or not structure.active:
            abort(404)
    if structure is None and not new_structure:
        results = service.search_structures(query) if query else []
        return render_template("accounts/register_search.html", query=query, results=results)

    form = forms_engine.build_form("account_registration")
    referencing = ReferencingForm(prefix="ref") if new_structure else None
    if request.method == "GET" and structure is not None:
        form.structure_recherche.data = structure.raison_sociale
        form.kind.data = structure.kind
        if structure.prescriber_type:
            form.prescriber_type.data = structure.prescriber_type
    if request.method == "POST":
        valid = form.validate_on_submit()
        valid = (referencing.validate() if referencing is not None else True) and valid
        if valid:
            values = {"kind": form.kind.data, "prescriber_type": form.prescriber_type.data,
                      "raison_sociale": form.structure_recherche.data} if new_structure else None
            if referencing is not None:
                values.update({k: (referencing[k].data or None) for k in (
                    "raison_sociale", "sigle", "siret", "adresse", "code_postal", "commune_nom")})
            try:
                service.register(email=form.email.data, password=form.mot_de_passe.data,
                                 nom=form.nom.data, prenom=form.prenom.data,
                                 fonction=form.fonction.data or None,
                                 telephone=form.telephone.data or None, structure=structure,
                                 referencing=values, address=request.remote_addr)
            except service.AccountError as error:  # the password policy, knowing the names
                db.session.rollback()
                form.mot_de_passe.errors = [*form.mot_de_passe.errors, error.message]
            else:
                db.session.commit()
                return redirect(url_for("accounts.registered"))
    return render_template("accounts/register.html", form=form, referencing=referencing,
                           structure=structure, new_structure=new_structure)


@bp.route("/inscription/envoyee")
def registered():
    return render_template("accounts/registered.html")


@bp.route("/activation/<secret>")
def activate(secret):
    try:
        user = service.activate(secret)
    except (service.AccountError, workflow.WorkflowError) as error:
        db.session.rollback()
        return _error(getattr(error, "message", str(error)), 400, "Lien invalide")
    db.session.commit()
    return render_template("accounts/pending.html", activated_user=user)


# -- forgotten password -------------------------------------------------------------------------
@bp.route("/mot-de-passe-oublie", methods=["GET", "POST"])
def forgotten_password():
    form = EmailForm()
    if form.validate_on_submit():
        service.request_password_reset(form.email.data, address=request.remote_addr)
        db.session.commit()
        flash("Si un compte correspond à cette adresse, un courriel vient de lui être envoyé "
              "avec un lien de réinitialisation valable 1 heure.", "info")
        return redirect(url_for("auth.login"))
    return render_template("accounts/forgotten_password.html", form=form)


@bp.route("/reinitialisation/<secret>", methods=["GET", "POST"])
def reset_password(secret):
    if service.find_token(secret, "reinitialisation") is None:
        return _error(service.INVALID_LINK, 400, "Lien invalide")
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            service.reset_password(secret, form.password.data)
        except service.AccountError as error:
            db.session.rollback()
            if service.find_token(secret, "reinitialisation") is None:
                return _error(error.message, 400, "Lien invalide")
            form.password.errors.append(error.message)  # the policy, knowing the account
            return render_template("accounts/reset_password.html", form=form)
        db.session.commit()
        flash("Votre mot de passe a été changé ; vos autres sessions sont fermées. "
              "Connectez-vous avec le nouveau mot de passe.", "success")
        return redirect(url_for("auth.login"))
    return render_template("accounts/reset_password.html", form=form)


# -- Mon compte ------------------------------------------------------------------------------------
@bp.route("/mon-compte", methods=["GET", "POST"])
@login_required
def my_account():
    user = current_user._get_current_object()
    action = request.form.get("action")
    profile_form = ProfileForm(obj=user if request.method == "GET" or action != "profil" else None,
                               prefix="profil")
    password_form = ChangePasswordForm(prefix="mdp")
    email_form = ChangeEmailForm(prefix="courriel")
    if action == "profil" and profile_form.validate_on_submit():
        profile_form.populate_obj(user)
        user.fonction = user.fonction or None
        user.telephone = user.telephone or None
        db.session.commit()
        flash("Vos coordonnées sont enregistrées.", "success")
        return redirect(url_for("accounts.my_account"))
    if action == "mot_de_passe" and password_form.validate_on_submit():
        if not user.check_password(password_form.current.data):
            password_form.current.errors.append("Mot de passe actuel incorrect.")
        else:
            try:
                service.set_password(user, password_form.password.data,
                                     keep_session=current_user_session())
            except service.AccountError as error:  # the policy, knowing the account
                db.session.rollback()
                password_form.password.errors.append(error.message)
            else:
                db.session.commit()
                flash("Votre mot de passe est changé ; vos autres sessions sont fermées.",
                      "success")
                return redirect(url_for("accounts.my_account"))
    sessions_form = CsrfForm(prefix="sessions")
    if action == "fermer_sessions" and sessions_form.validate_on_submit():
        closed = sessions.end_all(user, SessionEndReason.AUTRES_SESSIONS,
                                  keep=current_user_session())
        db.session.commit()
        flash("Vos autres sessions sont fermées." if closed else
              "Vous n'aviez pas d'autre session ouverte.", "success")
        return redirect(url_for("accounts.my_account"))
    if action == "courriel" and email_form.validate_on_submit():
        if not user.check_password(email_form.current.data):
            email_form.current.errors.append("Mot de passe actuel incorrect.")
        else:
            try:
                service.request_email_change(user, email_form.new_email.data)
            except service.AccountError as error:
                email_form.new_email.errors.append(error.message)
            else:
                db.session.commit()
                flash("Un lien de confirmation a été envoyé à la nouvelle adresse ; elle "
                      "remplacera l'actuelle quand vous aurez cliqué dessus.", "info")
                return redirect(url_for("accounts.my_account"))
    return render_template("accounts/my_account.html", profile_form=profile_form,
                           password_form=password_form, email_form=email_form,
                           sessions_form=sessions_form, open_sessions=sessions.open_sessions(user),
                           this_session=current_user_session())


@bp.route("/confirmation-courriel/<secret>")
def confirm_email(secret):
    try:
        service.confirm_email(secret)
        db.session.commit()
    except service.AccountError as error:
        db.session.rollback()
        return _error(error.message, 400, "Lien invalide")
    flash("Votre nouvelle adresse électronique est confirmée : c'est désormais votre "
          "identifiant de connexion.", "success")
    return redirect(url_for("accounts.my_account") if current_user.is_authenticated
                    else url_for("auth.login"))


# -- Mes structures ------------------------------------------------------------------------------
@bp.route("/mes-structures")
@active_account_required
def my_structures():
    query = request.args.get("q", "").strip()
    memberships = list(db.session.scalars(select(Membership).where(
        Membership.user_id == current_user.id).order_by(Membership.id)))
    mine = {m.structure_id for m in memberships}
    results = [s for s in service.search_structures(query) if s.id not in mine] if query else []
    requests_ = list(db.session.scalars(select(AffiliationRequest).where(
        AffiliationRequest.user_id == current_user.id).order_by(AffiliationRequest.created_at)))
    return render_template("accounts/my_structures.html", memberships=memberships,
                           results=results, query=query, affiliation_requests=requests_,
                           form=StructureIdForm(), active_id=session.get(ACTIVE_STRUCTURE_KEY))


@bp.route("/mes-structures/rattachement", methods=["POST"])
@active_account_required
def request_affiliation():
    form = StructureIdForm()
    if not form.validate_on_submit():
        abort(400)
    structure = db.session.get(Structure, int(form.structure_id.data or 0)) \
        if (form.structure_id.data or "").isdigit() else None
    if structure is None or not structure.active:
        abort(404)
    run_action(service.request_affiliation, current_user, structure,
               form.message.data or None,
               success=f"Votre demande de rattachement à {structure.raison_sociale} est "
                       "envoyée à son référent.")
    return redirect(url_for("accounts.my_structures"))


@bp.route("/mes-structures/active", methods=["POST"])
@active_account_required
def switch_structure():
    form = StructureIdForm()
    if not form.validate_on_submit() or not (form.structure_id.data or "").isdigit():
        abort(400)
    membership = db.session.scalar(select(Membership).where(
        Membership.user_id == current_user.id,
        Membership.structure_id == int(form.structure_id.data)))
    if membership is None:
        abort(403)
    session[ACTIVE_STRUCTURE_KEY] = membership.structure_id
    g.pop("membership", None)
    flash(f"Structure active : {membership.structure.raison_sociale}.", "success")
    return redirect(url_for("accounts.my_structures"))


# -- référent: Ma structure ---------------------------------------------------------------------
def _referent_membership() -> Membership:
    if current_user.state != UserState.ACTIF:
        abort(403)
    membership = current_membership()
    if membership is None or not membership.is_referent:
        abort(403)
    return membership


def referent_required(view):
    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        return view(_referent_membership(), *args, **kwargs)
    return wrapper


@bp.route("/referent/")
@referent_required
def referent_home(mine: Membership):
    accounts, affiliations = service.pending_requests(mine.structure_id)
    forms = {}
    for req in [*accounts, *affiliations]:
        form = DecisionForm(prefix=_decision_prefix(req))
        _profile_choices(form, mine.structure)
        forms[(type(req).__name__, req.id)] = form
    return render_template("accounts/referent.html", structure=mine.structure,
                           account_requests=accounts, affiliation_requests=affiliations,
                           forms=forms, members=service.structure_members(mine.structure_id))


REQUEST_KINDS = {"compte": AccountRequest, "rattachement": AffiliationRequest}


def _decision_prefix(request_obj) -> str:
    """Account and affiliation requests may share an id: their forms differ by prefix."""
    return f"{'a' if isinstance(request_obj, AffiliationRequest) else 'd'}{request_obj.id}"


def _decide(request_obj, *, structure: Structure, prefix: str, redirect_to: str):
    form = DecisionForm(prefix=prefix)
    _profile_choices(form, structure)
    if not form.validate_on_submit() or form.decision.data not in ("valider", "refuser"):
        flash("Le formulaire n'est pas valide : rechargez la page et recommencez.", "danger")
        return redirect(redirect_to)
    accept = form.decision.data == "valider"
    if not accept and not (form.reason.data or "").strip():
        flash("Indiquez le motif du refus : il est envoyé au demandeur.", "danger")
        return redirect(redirect_to)
    try:
        service.decide_request(request_obj, actor=current_user._get_current_object(),
                               accept=accept, reason=form.reason.data,
                               profiles=_profiles_from(form))
    except workflow.PermissionDenied:
        db.session.rollback()
        abort(403)
    except (service.AccountError, workflow.WorkflowError) as error:
        db.session.rollback()
        flash(error.message, "danger")
        return redirect(redirect_to)
    db.session.commit()
    flash(f"Demande de {request_obj.user.full_name} "
          f"{'validée' if accept else 'refusée'} ; le demandeur est prévenu par courriel.",
          "success")
    return redirect(redirect_to)


@bp.route("/referent/demandes/<kind>/<int:request_id>", methods=["POST"])
@referent_required
def referent_decide(mine: Membership, kind: str, request_id: int):
    model = REQUEST_KINDS.get(kind) or abort(404)
    request_obj = db.session.get(model, request_id) or abort(404)
    if request_obj.structure_id != mine.structure_id:
        abort(403)
    return _decide(request_obj, structure=mine.structure, prefix=_decision_prefix(request_obj),
                   redirect_to=url_for("accounts.referent_home"))


def _member_of_my_structure(mine: Membership, membership_id: int) -> Membership:
    membership = db.session.get(Membership, membership_id) or abort(404)
    if membership.structure_id != mine.structure_id:
        abort(403)
    return membership


@bp.route("/referent/utilisateurs/<int:membership_id>/droits", methods=["GET", "POST"])
@referent_required
def referent_rights(mine: Membership, membership_id: int):
    membership = _member_of_my_structure(mine, membership_id)
    form = RightsForm(obj=membership if request.method == "GET" else None)
    _profile_choices(form, membership.structure)
    if form.validate_on_submit():
        try:
            service.update_rights(membership, actor=current_user, profiles=_profiles_from(form),
                                  is_referent=form.is_referent.data)
        except service.AccountError as error:
            db.session.rollback()
            form.is_referent.errors.append(error.message)
        else:
            db.session.commit()
            flash(f"Droits de {membership.user.full_name} enregistrés.", "success")
            return redirect(url_for("accounts.referent_home"))
    return render_template("accounts/rights.html", form=form, membership=membership)


@bp.route("/referent/utilisateurs/<int:membership_id>/detacher", methods=["POST"])
@referent_required
def referent_detach(mine: Membership, membership_id: int):
    membership = _member_of_my_structure(mine, membership_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    name = membership.user.full_name
    run_action(service.detach, membership, actor=current_user,
               success=f"{name} est détaché de la structure.")
    return redirect(url_for("accounts.referent_home"))


@bp.route("/referent/utilisateurs.csv")
@referent_required
def referent_export(mine: Membership):
    header = ["Nom", "Prénom", "Courriel", "Fonction", "Téléphone", "État", "Référent",
              "Profil OF", "Profil prescripteur", "Profil ParcoursPro", "Sans droit"]
    rows = ([m.user.nom, m.user.prenom, m.user.email, m.user.fonction or "",
             m.user.telephone or "", UserState(m.user.state).label,
             "oui" if m.is_referent else "non", m.profile_of or "",
             m.profile_prescripteur or "", m.profile_parcourspro or "",
             "oui" if not m.has_management_profile else "non"]
            for m in service.structure_members(mine.structure_id))
    return csv_export.csv_response(f"utilisateurs-{mine.structure.siret}.csv", header, rows)


# -- moderators: first accounts of structures without a référent ---------------------------------
@bp.route("/moderation/premiers-comptes")
@staff_required(StaffRole.MODERATEUR, StaffRole.ADMIN)
def moderation_first_accounts():
    pending_ = [r for r in db.session.scalars(
        select(AccountRequest).join(User, User.id == AccountRequest.user_id)
        .where(AccountRequest.state == RequestState.EN_ATTENTE,
               User.state == UserState.EN_ATTENTE_VALIDATION)
        .order_by(AccountRequest.created_at)) if not service.has_referent(r.structure_id)]
    forms = {}
    for req in pending_:
        form = DecisionForm(prefix=f"d{req.id}")
        _profile_choices(form, req.structure)
        forms[req.id] = form
    return render_template("accounts/moderation.html", requests=pending_, forms=forms)


@bp.route("/moderation/premiers-comptes/<int:request_id>", methods=["POST"])
@staff_required(StaffRole.MODERATEUR, StaffRole.ADMIN)
def moderation_decide(request_id: int):
    request_obj = db.session.get(AccountRequest, request_id) or abort(404)
    return _decide(request_obj, structure=request_obj.structure, prefix=f"d{request_obj.id}",
                   redirect_to=url_for("accounts.moderation_first_accounts"))


# -- moderators: referencing requests (« Ma structure n'est pas dans la liste ») ------------------
class ReferencingDecisionForm(BaseForm):
    decision = HiddenField(validators=[DataRequired()])
    reason = TextAreaField("Motif (obligatoire pour un refus)", validators=[Optional()])


@bp.route("/moderation/referencements")
@staff_required(StaffRole.MODERATEUR, StaffRole.ADMIN)
def moderation_referencing():
    pending_ = service.pending_referencing_requests()
    forms = {r.id: ReferencingDecisionForm(prefix=f"r{r.id}") for r in pending_}
    existing = {s.siret: s for s in db.session.scalars(select(Structure).where(
        Structure.siret.in_([r.siret for r in pending_])))} if pending_ else {}
    return render_template("accounts/referencing.html", requests=pending_, forms=forms,
                           existing=existing, kinds=StructureKind, prescriber_types=PrescriberType)


@bp.route("/moderation/referencements/<int:request_id>", methods=["POST"])
@staff_required(StaffRole.MODERATEUR, StaffRole.ADMIN)
def moderation_referencing_decide(request_id: int):
    request_obj = db.session.get(ReferencingRequest, request_id) or abort(404)
    back = url_for("accounts.moderation_referencing")
    form = ReferencingDecisionForm(prefix=f"r{request_obj.id}")
    if not form.validate_on_submit() or form.decision.data not in ("valider", "refuser"):
        flash("Le formulaire n'est pas valide : rechargez la page et recommencez.", "danger")
        return redirect(back)
    accept = form.decision.data == "valider"
    if not accept and not (form.reason.data or "").strip():
        flash("Indiquez le motif du refus : il est envoyé au demandeur.", "danger")
        return redirect(back)
    try:
        structure = service.decide_referencing(
            request_obj, actor=current_user._get_current_object(), accept=accept,
            reason=form.reason.data)
        db.session.commit()
    except workflow.PermissionDenied:
        db.session.rollback()
        abort(403)
    except (service.AccountError, workflow.WorkflowError) as error:
        db.session.rollback()
        flash(error.message, "danger")
        return redirect(back)
    except IntegrityError:
        db.session.rollback()
        flash("Une structure avec ce SIRET vient d'être créée : rechargez la page.", "danger")
        return redirect(back)
    if accept:
        flash(f"La structure {structure.raison_sociale} ({structure.siret}) est créée ; la "
              "demande de compte de son premier utilisateur est à valider dans « Premiers "
              "comptes ».", "success")
    else:
        flash("Demande de référencement refusée ; le demandeur est prévenu par courriel.",
              "success")
    return redirect(back)


# -- habilitations and delegations -------------------------------------------------------------
@bp.route("/habilitations/")
@active_account_required
def habilitations():
    user = current_user._get_current_object()
    sirets = service.gestionnaire_sirets(user)
    mine = list(db.session.scalars(select(Habilitation).where(Habilitation.user_id == user.id)
                                   .order_by(Habilitation.siret)))
    pending_ = list(db.session.scalars(select(Habilitation).where(
        Habilitation.siret.in_(sirets), Habilitation.state == HabilitationState.DEMANDEE)))
    delegations = list(db.session.scalars(select(Delegation).where(
        Delegation.siret_etablissement.in_(sirets)).order_by(Delegation.created_at.desc())))
    is_admin = user.staff_role == StaffRole.ADMIN
    rows = service.search_demarche_users(
        sirets=None if is_admin else sirets, query=request.args.get("q", ""),
        role=request.args.get("role", ""), tiers=request.args.get("tiers", "")) \
        if (sirets or is_admin) else []
    delegation_form = DelegationForm(prefix="delegation")
    delegation_form.siret_etablissement.choices = [(s, s) for s in sirets]
    return render_template(
        "accounts/habilitations.html", mine=mine, sirets=sirets, pending=pending_,
        delegations=delegations, rows=rows, code_form=ActivationCodeForm(prefix="code"),
        access_form=AccessRequestForm(prefix="acces"), delegation_form=delegation_form,
        role_form=RoleForm(), empty_form=CsrfForm(), roles=HabilitationRole,
        filters=request.args)


def _back_to_habilitations():
    return redirect(url_for("accounts.habilitations"))


def _flash_form_errors(form) -> None:
    for field in form:
        for error in field.errors:
            flash(f"{field.label.text} : {error}", "danger")


@bp.route("/habilitations/activer", methods=["POST"])
@active_account_required
def habilitation_activate():
    form = ActivationCodeForm(prefix="code")
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back_to_habilitations()
    run_action(service.activate_with_code, current_user, form.siret.data, form.code.data,
               success=f"Vous êtes gestionnaire du SIRET {form.siret.data}.")
    return _back_to_habilitations()


@bp.route("/habilitations/demander", methods=["POST"])
@active_account_required
def habilitation_request():
    form = AccessRequestForm(prefix="acces")
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back_to_habilitations()
    run_action(service.request_access, current_user, form.siret.data, form.role.data,
               success="Votre demande d'accès est envoyée au gestionnaire du SIRET.")
    return _back_to_habilitations()


def _run_habilitation_action(action, success: str):
    """POST of a button of « Habilitations »: ``action()`` (a service call), one commit."""
    if not CsrfForm().validate_on_submit():
        abort(400)
    try:
        action()
    except workflow.PermissionDenied:
        db.session.rollback()
        abort(403)
    except (service.AccountError, workflow.WorkflowError) as error:
        db.session.rollback()
        flash(error.message, "danger")
        return _back_to_habilitations()
    db.session.commit()
    flash(success, "success")
    return _back_to_habilitations()


HABILITATION_ACTIONS = {"accepter": "Demande d'accès acceptée.",
                        "refuser": "Demande d'accès refusée.",
                        "revoquer": "Habilitation révoquée."}


@bp.route("/habilitations/<int:habilitation_id>/<action>", methods=["POST"])
@active_account_required
def habilitation_action(habilitation_id: int, action: str):
    habilitation = db.session.get(Habilitation, habilitation_id) or abort(404)
    if action == "role":
        form = RoleForm()
        if not form.validate_on_submit():
            abort(400)
        try:
            service.change_role(habilitation, actor=current_user, role=form.role.data)
        except workflow.PermissionDenied:
            abort(403)
        except service.AccountError as error:
            flash(error.message, "danger")
            return _back_to_habilitations()
        db.session.commit()
        flash("Rôle modifié.", "success")
        return _back_to_habilitations()
    if action not in HABILITATION_ACTIONS:
        abort(404)
    return _run_habilitation_action(lambda: service.decide_habilitation(
        habilitation, action, actor=current_user._get_current_object(),
        reason=request.form.get("reason")), HABILITATION_ACTIONS[action])


@bp.route("/habilitations/delegations", methods=["POST"])
@active_account_required
def delegation_create():
    form = DelegationForm(prefix="delegation")
    form.siret_etablissement.choices = [(s, s) for s in service.gestionnaire_sirets(current_user)]
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back_to_habilitations()
    try:
        service.delegate(actor=current_user._get_current_object(),
                         siret_etablissement=form.siret_etablissement.data,
                         siret_tiers=form.siret_tiers.data, email_tiers=form.email_tiers.data,
                         role=form.role.data, end_date=form.end_date.data)
    except workflow.PermissionDenied:
        abort(403)
    except service.AccountError as error:
        db.session.rollback()
        flash(error.message, "danger")
        return _back_to_habilitations()
    db.session.commit()
    flash(f"La délégation est proposée : {form.email_tiers.data} reçoit un lien pour "
          "l'accepter.", "success")
    return _back_to_habilitations()


@bp.route("/habilitations/delegations/<int:delegation_id>/revoquer", methods=["POST"])
@active_account_required
def delegation_revoke(delegation_id: int):
    delegation = db.session.get(Delegation, delegation_id) or abort(404)
    return _run_habilitation_action(lambda: service.revoke_delegation(
        delegation, actor=current_user._get_current_object(),
        reason=request.form.get("reason")), "Délégation révoquée ; le tiers est prévenu.")


@bp.route("/delegations/accepter/<secret>", methods=["GET", "POST"])
@login_required
def accept_delegation(secret):
    try:
        _, delegation = service.delegation_for_token(secret)
    except service.AccountError as error:
        return _error(error.message, 400, "Lien invalide")
    if delegation.email_tiers != current_user.email:
        return _error("Cette délégation a été proposée à une autre adresse électronique : "
                      "connectez-vous avec le compte de cette adresse.", 403, "Accès refusé")
    form = CsrfForm()
    if form.validate_on_submit():
        accept = request.form.get("decision") == "accepter"
        try:
            service.answer_delegation(secret, actor=current_user._get_current_object(),
                                      accept=accept)
        except (service.AccountError, workflow.WorkflowError) as error:
            db.session.rollback()
            return _error(error.message, 400)
        db.session.commit()
        flash("Délégation acceptée." if accept else "Délégation refusée.", "success")
        return redirect(url_for("accounts.habilitations"))
    return render_template("accounts/accept_delegation.html", delegation=delegation, form=form,
                           role_label=HabilitationRole(delegation.role).label)


@bp.route("/habilitations/codes", methods=["GET", "POST"])
@staff_required(StaffRole.ADMIN)
def habilitation_codes():
    form = CodeIssueForm()
    code = None
    if form.validate_on_submit():
        code = service.issue_habilitation_code(form.siret.data)
        db.session.commit()
    return render_template("accounts/codes.html", form=form, code=code)
