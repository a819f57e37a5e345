"""Admin screens of the reference data (certifications, communes)."""
from __future__ import annotations

from flask_admin.contrib.sqla.filters import FilterEqual
from wtforms import SelectField
from wtforms.validators import Length, Regexp

from backoffice.admin.base import SecureModelView
from backoffice.models import Certification, Commune
from backoffice.models.reference import DEPARTEMENTS_NOUVELLE_AQUITAINE

CATEGORY = "Référentiels"
DEPARTEMENT_CHOICES = sorted(DEPARTEMENTS_NOUVELLE_AQUITAINE.items())


class CertificationView(SecureModelView):
    column_list = ("code_certifinfo", "intitule", "niveau", "ouverte_apprentissage", "active")
    column_searchable_list = ("code_certifinfo", "intitule")
    column_filters = ("niveau", "ouverte_apprentissage", "active")
    column_labels = {"code_certifinfo": "Code Certif Info", "niveau": "Niveau",
                     "ouverte_apprentissage": "Ouverte à l'apprentissage"}
    form_args = {"code_certifinfo": {"validators": [Regexp(
        r"^\d{1,10}$", message="Le code Certif Info est un nombre (10 chiffres au plus).")]},
        "intitule": {"validators": [Length(max=300, message="300 caractères au plus.")]}}


class CommuneView(SecureModelView):
    column_list = ("nom", "code_postal", "code_insee", "departement")
    column_default_sort = "nom"
    column_searchable_list = ("nom", "code_postal", "code_insee")
    column_filters = (FilterEqual(Commune.departement, "Département",
                                  options=DEPARTEMENT_CHOICES),)
    column_labels = {"code_insee": "Code INSEE"}
    form_overrides = {"departement": SelectField}
    form_args = {
        "departement": {"label": "Département", "choices": DEPARTEMENT_CHOICES},
        "code_postal": {"validators": [Regexp(r"^\d{5}$", message="Le code postal compte 5 chiffres.")]},
        "code_insee": {"validators": [Regexp(r"^\d[\dAB]\d{3}$",
                                             message="Le code INSEE compte 5 caractères.")]},
    }


def register(admin) -> None:
    admin.add_view(CertificationView(Certification, "Certifications (Certif Info)", CATEGORY))
    admin.add_view(CommuneView(Commune, "Communes", CATEGORY))
