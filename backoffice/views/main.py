"""Home page and error pages."""
from __future__ import annotations

import logging

from pathlib import Path

from flask import Blueprint, Response, current_app, render_template, request
from flask_login import current_user, login_required
from markupsafe import escape
from sqlalchemy.exc import DataError, DBAPIError
from werkzeug.exceptions import HTTPException

from backoffice import database_errors, input_guard
from backoffice.auth import user_memberships
from backoffice.extensions import db

log = logging.getLogger(__name__)

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def home():
    return render_template("home.html", memberships=user_memberships(current_user))


@bp.route("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico before reading a page's <link rel="icon">: the same
    SVG icon as the pages name (static/favicon.svg), without login. A few hundred bytes,
    read into the response (no file left open by a client that does not read it)."""
    icon = (Path(current_app.static_folder) / "favicon.svg").read_bytes()
    response = Response(icon, mimetype="image/svg+xml")
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response


# French title and text of each error page; a refusal of the input guard shows its own
# description instead of the text.
ERROR_PAGES = {
    400: ("Requête invalide", "La requête n'a pas pu être traitée. Si vous envoyiez un "
                              "formulaire, rechargez la page et recommencez."),
    403: ("Accès refusé", "Vous n'avez pas les droits nécessaires pour cette page."),
    404: ("Page introuvable", "Cette page n'existe pas ou a été déplacée."),
    405: ("Méthode non autorisée", "Cette adresse ne s'utilise pas ainsi : revenez à la page "
                                    "précédente et utilisez ses boutons."),
    409: ("Conflit", "Quelqu'un d'autre vient de modifier ces données : rechargez la page et "
                     "recommencez."),
    413: ("Envoi trop volumineux", "Les données ou le fichier envoyés dépassent la taille "
                                   "autorisée."),
    422: ("Données non valides", "Les données envoyées ne peuvent pas être traitées : "
                                 "vérifiez-les et recommencez."),
    429: ("Trop de requêtes", "Trop de demandes en peu de temps : patientez quelques minutes "
                              "avant de recommencer."),
    503: ("Service momentanément indisponible", "La base de données ne répond pas pour le "
                                                "moment : rien n'a été enregistré. "
                                                "Réessayez dans quelques instants."),
    500: ("Erreur interne", "Une erreur inattendue s'est produite ; elle a été enregistrée."),
}
FALLBACK_PAGE = ('<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>{title}'
                 '</title></head><body><h1>{title} ({code})</h1><p>{text}</p>'
                 '<p><a href="/">Retour à l\'accueil</a></p></body></html>')


def error_page(code: int, *, title: str | None = None, text: str | None = None):
    """The French page of an HTTP error. The request's transaction is rolled back first
    (after a database error, the page's own queries would fail on it); if the page still
    cannot be rendered, a plain page without template or database is answered."""
    default_title, default_text = ERROR_PAGES.get(code, ERROR_PAGES[400 if code < 500 else 500])
    title, text = title or default_title, text or default_text
    try:
        db.session.rollback()
        return render_template("error.html", code=code, title=title, text=text), code
    except Exception:  # noqa: BLE001 — the error page must not fail in turn
        log.exception("error page %s could not be rendered", code)
        db.session.remove()
        return FALLBACK_PAGE.format(code=code, title=escape(title), text=escape(text)), code


def register_error_pages(app) -> None:
    from flask_wtf.csrf import CSRFError

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        text = error.description if isinstance(error, input_guard.Refused) else None
        return error_page(error.code, text=text)

    @app.errorhandler(CSRFError)
    def _csrf_error(error):
        return error_page(400, title="Formulaire expiré", text=(
            "Le formulaire a expiré ou n'est pas valide. Rechargez la page et recommencez."))

    @app.errorhandler(DataError)
    def _data_error(error: DataError):
        # Last line of defence: the checks of ``input_guard`` keep such values away from
        # SQL; one that got through is logged (a test fails on it) and refused, not a 500.
        log.warning("bad input reached the database: %s", error.orig)
        return error_page(400, text="Une valeur envoyée n'est pas acceptée (caractère ou "
                                    "nombre hors limites) : vérifiez la saisie et recommencez.")

    @app.errorhandler(DBAPIError)
    def _database_error(error: DBAPIError):
        if not database_errors.is_transient(error):
            raise error
        log.warning("database unavailable: %s", error.orig)
        database_errors.mark(request.environ)  # a GET is run once more (RetryOnce)
        db.session.remove()  # the dead connection is thrown away with its transaction
        body, code = error_page(503)
        return body, code, {"Retry-After": "5"}

    @app.errorhandler(500)
    def _internal_error(error):
        return error_page(500)

