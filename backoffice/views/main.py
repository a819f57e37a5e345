"""Home page and error pages."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from backoffice.auth import user_memberships

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def home():
    return render_template("home.html", memberships=user_memberships(current_user))


def register_error_pages(app) -> None:
    messages = {
        400: ("Requête invalide", "La requête n'a pas pu être traitée. Si vous envoyiez un "
                                  "formulaire, rechargez la page et recommencez."),
        403: ("Accès refusé", "Vous n'avez pas les droits nécessaires pour cette page."),
        404: ("Page introuvable", "Cette page n'existe pas ou a été déplacée."),
        500: ("Erreur interne", "Une erreur inattendue s'est produite ; elle a été enregistrée."),
    }

    def make_handler(code):
        def handler(error):
            title, text = messages[code]
            return render_template("error.html", code=code, title=title, text=text), code
        return handler

    for code in messages:
        app.register_error_handler(code, make_handler(code))

    from flask_wtf.csrf import CSRFError

    @app.errorhandler(CSRFError)
    def _csrf_error(error):
        return render_template(
            "error.html", code=400, title="Formulaire expiré",
            text="Le formulaire a expiré ou n'est pas valide. Rechargez la page et "
                 "recommencez."), 400
