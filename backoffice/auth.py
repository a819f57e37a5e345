"""Login, logout, the second factor of staff, and the choice of the active structure
(Flask-Login over server-side sessions).

A user logs in with their e-mail. Every login opens a server-side session
(``services/sessions.py``): the cookie holds its random key, and each request is
authenticated by ``load_user`` against that row — an ended, idle or too old session grants
nothing, whatever the cookie says. At login the old session content is dropped (CSRF token
included: a new one is drawn). Flask-Login's remember-me cookie is never set, and would not
authenticate anyway (no session key).

Staff roles (``admin``, ``moderateur``, ``responsable_regles``) are on the user itself; a
staff member passes a second factor (TOTP, ``services/mfa.py``) after the password: until
then the session grants nothing, every page sends to the code page (or to the enrolment
page the first time), and ``MFA_MAX_ATTEMPTS`` wrong codes end the attempt.

A user attached to several structures picks the active one after login;
``current_membership()`` gives the rights for that structure.
"""
from __future__ import annotations

import datetime as dt
from functools import wraps
from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, flash, g, redirect, render_template, request,
                   session, url_for)
from flask_login import current_user, login_required, login_user, logout_user
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import EmailField, PasswordField, RadioField, StringField
from wtforms.validators import DataRequired, Email, Length

from backoffice import clock, rate_limits
from backoffice.extensions import db, login_manager
from backoffice.input_guard import BaseForm
from backoffice.models import Membership, SessionEndReason, User, UserSession
from backoffice.services import mfa, sessions

bp = Blueprint("auth", __name__)

ACTIVE_STRUCTURE_KEY = "active_structure_id"
SESSION_KEY = "session_key"  # the random key of the server-side session (UserSession)
NEXT_KEY = "login_next"  # where to go once the second factor passed


class LoginForm(BaseForm):
    email = EmailField("Adresse électronique", validators=[
        DataRequired("Indiquez votre adresse électronique."),
        Email("Cette adresse électronique n'est pas valide.")])
    password = PasswordField("Mot de passe", validators=[
        DataRequired("Indiquez votre mot de passe.")])


class MfaCodeForm(BaseForm):
    code = StringField("Code", validators=[DataRequired("Indiquez le code."),
                                           Length(max=40, message="Ce code est trop long.")],
                       render_kw={"autocomplete": "one-time-code", "autofocus": True})


class ChooseStructureForm(BaseForm):
    structure_id = RadioField("Structure active", coerce=int, validators=[
        DataRequired("Choisissez une structure.")])


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The user of this request's live server-side session (see the module docstring)."""
    row = current_user_session()
    if row is None or str(row.user_id) != user_id:
        return None
    user = row.user
    if not user.is_active or (user.is_staff and row.mfa_passed_at is None):
        return None
    return user


def current_user_session() -> UserSession | None:
    """The live server-side session of this request's cookie (looked up once per request;
    its last activity is written at most once a minute)."""
    if "user_session" not in g:
        row, written = sessions.live(session.get(SESSION_KEY))
        if written:
            db.session.commit()  # at the start of the request: nothing else is pending
        g.user_session = row
    return g.user_session


def second_factor_passed() -> bool:
    """A staff member counts as staff only once the second factor passed in this session."""
    row = current_user_session()
    return row is not None and row.mfa_passed_at is not None


def pending_second_factor() -> UserSession | None:
    """The session of a staff member who gave their password but not yet their code."""
    row = current_user_session()
    if row is None or row.mfa_passed_at is not None or not row.user.is_staff \
            or not row.user.is_active:
        return None
    return row


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return None
    return target


def user_memberships(user: User) -> list[Membership]:
    return list(db.session.scalars(
        select(Membership).where(Membership.user_id == user.id).order_by(Membership.id)))


def current_membership() -> Membership | None:
    """The membership of the current user in their active structure (cached per request)."""
    if not current_user.is_authenticated:
        return None
    if "membership" not in g:
        structure_id = session.get(ACTIVE_STRUCTURE_KEY)
        g.membership = None if structure_id is None else db.session.scalar(
            select(Membership).options(joinedload(Membership.structure))  # shown on every page
            .where(Membership.user_id == current_user.id,
                                     Membership.structure_id == structure_id))
    return g.membership


def membership_required(allowed):
    """Only users whose membership in their active structure passes ``allowed(membership)``
    (e.g. has an OF or a prescriber profile); 403 otherwise."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if not allowed(current_membership()):
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorator


def staff_required(*roles: str):
    """Only users with one of the staff ``roles`` (any staff role when empty)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if not current_user.is_staff or not second_factor_passed() \
                    or (roles and current_user.staff_role not in roles):
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorator


@bp.route("/connexion", methods=["GET", "POST"])
def login():
    form = LoginForm()
    next_url = _safe_next(request.values.get("next"))
    if form.validate_on_submit():
        from backoffice.services import accounts as account_service

        email = form.email.data.strip().lower()
        # Counted (and committed) before the password is checked: an attempt beyond the
        # limit, even among parallel ones, never reaches the check.
        wait = account_service.count_login_attempt(email, request.remote_addr)
        db.session.commit()
        user = None if wait else account_service.authenticate(email, form.password.data)
        if wait:
            # Too many attempts for this account or address: wait, whatever the password.
            form.form_errors.append(
                "Trop de tentatives de connexion infructueuses. Réessayez dans "
                f"{account_service.format_wait(wait)}.")
        elif user is None:
            form.password.errors.append(
                "Identifiant ou mot de passe incorrect.")
        elif not user.is_active:
            form.email.errors.append(
                "Ce compte n'est pas actif : activez-le depuis le lien reçu par courriel "
                "ou contactez le référent de votre structure.")
        else:
            account_service.record_login_success(email)
            return _complete_login(user, next_url)
    return render_template("auth/login.html", form=form, next_url=next_url)


def _complete_login(user: User, next_url: str | None):
    """After the right password: a new server-side session in a fresh cookie (whatever the
    old cookie held is dropped, the CSRF token included), then the second factor for staff,
    straight in for the others."""
    previous = current_user_session()
    if previous is not None:
        sessions.end(previous, SessionEndReason.DECONNEXION)
    session.clear()
    for name in ("csrf_token", "user_session", "_login_user"):
        g.pop(name, None)
    row, key = sessions.open_session(user, address=request.remote_addr,
                                     user_agent=request.user_agent.string)
    session[SESSION_KEY] = key
    g.user_session = row
    if user.is_staff:
        db.session.commit()
        if next_url:
            session[NEXT_KEY] = next_url
        return redirect(url_for("auth.mfa_verify" if user.mfa_enabled else "auth.mfa_enrol"))
    return redirect(_finish_login(user, next_url))


def _finish_login(user: User, next_url: str | None) -> str:
    """The user is in (password, and second factor for staff): commit and return where to
    go next (the choice of the active structure when there are several)."""
    login_user(user)  # never "remember me": the server-side session is the only way in
    user.last_login_at = clock.now()
    db.session.commit()
    session.pop(ACTIVE_STRUCTURE_KEY, None)
    memberships = user_memberships(user)
    if len(memberships) == 1:
        session[ACTIVE_STRUCTURE_KEY] = memberships[0].structure_id
    elif len(memberships) > 1:
        return url_for("auth.choose_structure", next=next_url)
    return next_url or url_for("main.home")


def _mfa_limits(pending: UserSession) -> list[tuple[rate_limits.Limit, str, str]]:
    """The code attempts allowed: per login (``MFA_MAX_ATTEMPTS``) and per account over the
    hour, all its logins together (``MFA_MAX_FAILURES_PER_HOUR``), with the message shown
    beyond each."""
    config = current_app.config
    return [
        (rate_limits.Limit("mfa_session", config["MFA_MAX_ATTEMPTS"], dt.timedelta(
            hours=config["SESSION_MAX_HOURS"])), str(pending.id),
         "Trop de codes erronés : reconnectez-vous avec votre mot de passe."),
        (rate_limits.Limit("mfa_compte", config["MFA_MAX_FAILURES_PER_HOUR"],
                           dt.timedelta(hours=1)), str(pending.user_id),
         "Trop de codes erronés pour ce compte : réessayez dans une heure ou contactez un "
         "administrateur."),
    ]


def _count_code_attempt(pending: UserSession):
    """Counted (and committed) before the code is checked, like a password: an attempt
    beyond a limit, even among parallel ones, never reaches the check."""
    refused = [message for limit, key, message in _mfa_limits(pending)
               if rate_limits.hit(limit, key)]
    db.session.commit()
    return _back_to_login(pending, refused[-1]) if refused else None


def _back_to_login(pending: UserSession, message: str):
    sessions.end(pending, SessionEndReason.ECHEC_MFA)
    db.session.commit()
    session.clear()
    flash(message, "error")
    return redirect(url_for("auth.login"))


def _wrong_code(pending: UserSession, form: MfaCodeForm, message: str):
    """A wrong code: the last one allowed in this login goes back to the password."""
    pending.mfa_failures = (pending.mfa_failures or 0) + 1
    if pending.mfa_failures >= current_app.config["MFA_MAX_ATTEMPTS"]:
        return _back_to_login(pending, "Trop de codes erronés : reconnectez-vous avec votre "
                                       "mot de passe.")
    db.session.commit()
    form.code.errors.append(message)
    return None


def _second_factor_passed(pending: UserSession) -> str:
    for limit, key, _message in _mfa_limits(pending):
        rate_limits.reset(limit, key)
    pending.mfa_passed_at = clock.now()
    session[SESSION_KEY] = sessions.renew_key(pending)
    return _finish_login(pending.user, _safe_next(session.pop(NEXT_KEY, None)))


@bp.route("/connexion/code", methods=["GET", "POST"])
def mfa_verify():
    """Second step of a staff login: a code of the authenticator app or a recovery code."""
    pending = pending_second_factor()
    if pending is None:
        return redirect(url_for("auth.login"))
    user = pending.user
    if not user.mfa_enabled:
        return redirect(url_for("auth.mfa_enrol"))
    form = MfaCodeForm()
    if form.validate_on_submit():
        blocked = _count_code_attempt(pending)
        if blocked is not None:
            return blocked
        if mfa.verify(user, form.code.data):
            return redirect(_second_factor_passed(pending))
        refused = _wrong_code(pending, form, "Code incorrect ou déjà utilisé.")
        if refused is not None:
            return refused
    return render_template("auth/mfa_verify.html", form=form)


@bp.route("/connexion/double-authentification", methods=["GET", "POST"])
def mfa_enrol():
    """First staff login: scan the QR code (or type the secret), confirm with a first
    code; the recovery codes are shown once."""
    pending = pending_second_factor()
    if pending is None:
        return redirect(url_for("auth.login"))
    user = pending.user
    if user.mfa_enabled:
        return redirect(url_for("auth.mfa_verify"))
    secret = mfa.start_enrolment(user)
    db.session.commit()  # the same pending secret is shown again on reload
    form = MfaCodeForm()
    if form.validate_on_submit():
        blocked = _count_code_attempt(pending)
        if blocked is not None:
            return blocked
        try:
            codes = mfa.confirm_enrolment(user, form.code.data)
        except mfa.MfaError as error:
            refused = _wrong_code(pending, form, error.message)
            if refused is not None:
                return refused
        else:
            next_url = _second_factor_passed(pending)
            return render_template("auth/mfa_recovery_codes.html", codes=codes,
                                   next_url=next_url)
    qr = Markup(mfa.qr_svg(mfa.provisioning_uri(user, secret)))  # segno's own markup
    return render_template("auth/mfa_enrol.html", form=form, secret=secret, qr=qr)


@bp.route("/deconnexion", methods=["POST"])
def logout():
    row = current_user_session()
    if row is not None:
        sessions.end(row, SessionEndReason.DECONNEXION)
        db.session.commit()
    logout_user()
    session.clear()
    flash("Vous êtes déconnecté.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/structure-active", methods=["GET", "POST"])
@login_required
def choose_structure():
    memberships = user_memberships(current_user)
    if not memberships:
        flash("Votre compte n'est rattaché à aucune structure.", "warning")
        return redirect(url_for("main.home"))
    form = ChooseStructureForm()
    form.structure_id.choices = [(m.structure_id, str(m.structure)) for m in memberships]
    if form.validate_on_submit():
        session[ACTIVE_STRUCTURE_KEY] = form.structure_id.data
        g.pop("membership", None)
        flash(f"Structure active : {current_membership().structure.raison_sociale}.", "success")
        return redirect(_safe_next(request.args.get("next")) or url_for("main.home"))
    if request.method == "GET":
        form.structure_id.data = session.get(ACTIVE_STRUCTURE_KEY)
    return render_template("auth/choose_structure.html", form=form)


@bp.before_app_request
def _authenticate_each_request():
    """Each request is authenticated from its own cookie: drop what an application context
    reused across requests (the test client reuses the test's) may still hold."""
    for name in ("_login_user", "user_session", "membership", "csrf_token"):
        g.pop(name, None)


# Pages a staff member may see between their password and their code.
SECOND_FACTOR_PAGES = ("auth.mfa_verify", "auth.mfa_enrol", "auth.logout", "auth.login",
                       "static")


@bp.before_app_request
def _second_factor_first():
    """After the password, a staff member passes the second factor before any page."""
    if request.endpoint in SECOND_FACTOR_PAGES or current_user.is_authenticated:
        return None
    pending = pending_second_factor()
    if pending is None:
        return None
    return redirect(url_for("auth.mfa_verify" if pending.user.mfa_enabled
                            else "auth.mfa_enrol"))


# Pages that work without an active structure (the rest need one: they act for it).
NO_STRUCTURE_NEEDED = ("auth.", "accounts.", "main.", "static")


@bp.before_app_request
def _require_active_structure():
    """A user attached to several structures picks the active one before working: pages
    acting for a structure send them to the choice (and back) instead of refusing."""
    if not current_user.is_authenticated or session.get(ACTIVE_STRUCTURE_KEY) is not None \
            or request.path.startswith("/admin") or request.endpoint is None \
            or request.endpoint.startswith(NO_STRUCTURE_NEEDED):
        return None
    memberships = user_memberships(current_user)
    if len(memberships) == 1:
        session[ACTIVE_STRUCTURE_KEY] = memberships[0].structure_id
    elif memberships:
        return redirect(url_for("auth.choose_structure", next=request.full_path))
    return None


def init_auth(app) -> None:
    # The signed session cookie itself is refused beyond the sessions' absolute lifetime.
    app.config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(
        hours=app.config["SESSION_MAX_HOURS"])
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Connectez-vous pour accéder à cette page."
    login_manager.login_message_category = "warning"
    app.register_blueprint(bp)

    @app.context_processor
    def _inject_membership():
        return {"current_membership": current_membership}
