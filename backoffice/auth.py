"""Login, logout and the choice of the active structure (Flask-Login).

A user logs in with their e-mail. A user attached to several structures picks the
active one after login; ``current_membership()`` gives the rights for that structure.
Staff roles (``admin``, ``moderateur``, ``responsable_regles``) are on the user itself.
"""
from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from wtforms import EmailField, PasswordField, RadioField
from wtforms.validators import DataRequired, Email

from backoffice import clock
from backoffice.extensions import db, login_manager
from backoffice.input_guard import BaseForm
from backoffice.models import Membership, User

bp = Blueprint("auth", __name__)

ACTIVE_STRUCTURE_KEY = "active_structure_id"


class LoginForm(BaseForm):
    email = EmailField("Adresse électronique", validators=[
        DataRequired("Indiquez votre adresse électronique."),
        Email("Cette adresse électronique n'est pas valide.")])
    password = PasswordField("Mot de passe", validators=[
        DataRequired("Indiquez votre mot de passe.")])


class ChooseStructureForm(BaseForm):
    structure_id = RadioField("Structure active", coerce=int, validators=[
        DataRequired("Choisissez une structure.")])


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    try:
        ident, generation = (int(part) for part in user_id.split(":"))
    except ValueError:
        return None
    user = db.session.get(User, ident)
    if user is None or user.session_generation != generation:
        return None  # ended by a password reset or a deactivation
    return user


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
            select(Membership).where(Membership.user_id == current_user.id,
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
            if not current_user.is_staff or (roles and current_user.staff_role not in roles):
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
        address = request.remote_addr
        wait = account_service.login_wait(email, address)
        user = None if wait else db.session.scalar(select(User).where(User.email == email))
        if wait:
            # Too many failures for this account or address: wait, whatever the password.
            form.form_errors.append(
                "Trop de tentatives de connexion infructueuses. Réessayez dans "
                f"{account_service.format_wait(wait)}.")
        elif user is None or not user.check_password(form.password.data):
            account_service.record_login_failure(email, address)
            db.session.commit()
            form.password.errors.append(
                "Identifiant ou mot de passe incorrect.")
        elif not user.is_active:
            form.email.errors.append(
                "Ce compte n'est pas actif : activez-le depuis le lien reçu par courriel "
                "ou contactez le référent de votre structure.")
        else:
            login_user(user)
            account_service.record_login_success(email, address)
            user.last_login_at = clock.now()
            db.session.commit()
            session.pop(ACTIVE_STRUCTURE_KEY, None)
            memberships = user_memberships(user)
            if len(memberships) == 1:
                session[ACTIVE_STRUCTURE_KEY] = memberships[0].structure_id
            elif len(memberships) > 1:
                return redirect(url_for("auth.choose_structure", next=next_url))
            return redirect(next_url or url_for("main.home"))
    return render_template("auth/login.html", form=form, next_url=next_url)


@bp.route("/deconnexion", methods=["POST"])
def logout():
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
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Connectez-vous pour accéder à cette page."
    login_manager.login_message_category = "warning"
    app.register_blueprint(bp)

    @app.context_processor
    def _inject_membership():
        return {"current_membership": current_membership}
