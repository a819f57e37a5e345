"""Admin screens of the catalogue: formations, sessions, entry points."""
from __future__ import annotations

from flask_admin.contrib.sqla.filters import FilterEqual
from wtforms.validators import Length, Optional, Regexp, URL

from backoffice.admin.base import SecureModelView, state_filter
from backoffice.models import (Dispositif, EntryMode, EntryPoint, Formation, FormationState,
                               Session, SessionState)
from backoffice.models.reference import DEPARTEMENTS_NOUVELLE_AQUITAINE

CATEGORY = "Offre de formation"
STRUCTURE_LOOKUP = {"fields": ("raison_sociale", "sigle", "siret"), "page_size": 10,
                    "placeholder": "Raison sociale, sigle ou SIRET"}
DEPARTEMENT_CHOICES = sorted(DEPARTEMENTS_NOUVELLE_AQUITAINE.items())


class FormationView(SecureModelView):
    simple_list_pager = True
    column_list = ("reference", "intitule", "structure", "dispositif", "state", "updated_at")
    column_searchable_list = ("reference", "intitule", "numero_marche")
    search_exact = ("reference", "numero_marche")
    search_words = ""
    column_filters = (state_filter(Formation.state, FormationState),
                      state_filter(Formation.dispositif, Dispositif, "Dispositif"),
                      "eligible_cpf", "updated_at", "created_at")
    enum_fields = {"state": (FormationState, "État"),
                   "dispositif": (Dispositif, "Dispositif")}
    column_labels = {"structure": "Organisme responsable",
                     "organisme_formateur": "Organisme formateur", "objectif": "Objectif",
                     "programme": "Programme", "certification": "Certification",
                     "lien_web": "Lien web", "financement": "Financement",
                     "numero_marche": "Numéro de marché", "eligible_cpf": "Éligible CPF",
                     "modalite_formation_continue": "Formation continue hors alternance",
                     "modalite_contrat_pro": "Contrat de professionnalisation",
                     "modalite_apprentissage": "Contrat d'apprentissage",
                     "annees_cursus": "Années de cursus ouvertes à l'apprentissage",
                     "moderation_comment": "Commentaire de modération",
                     "validated_snapshot": "Version validée", "submitted_at": "Soumise le",
                     "validated_at": "Validée le", "created_by": "Créée par",
                     "extra": "Réponses complémentaires", "sessions": "Sessions"}
    column_details_exclude_list = ("version", "validated_snapshot", "sessions")
    form_columns = ("reference", "intitule", "structure", "organisme_formateur",
                    "certification", "objectif", "programme", "lien_web", "financement",
                    "dispositif", "numero_marche", "eligible_cpf",
                    "modalite_formation_continue", "modalite_contrat_pro",
                    "modalite_apprentissage", "state", "moderation_comment")
    form_args = {
        "reference": {"validators": [Regexp(r"^\d{12}$",
                                            message="La référence compte 12 chiffres.")]},
        "intitule": {"validators": [Length(max=300, message="300 caractères au plus.")]},
        "lien_web": {"validators": [Optional(), URL(
            message="Le lien web doit être une adresse http(s) complète.")]},
    }
    form_ajax_refs = {"structure": STRUCTURE_LOOKUP, "organisme_formateur": STRUCTURE_LOOKUP,
                      "certification": {"fields": ("code_certifinfo", "intitule"),
                                        "page_size": 10,
                                        "placeholder": "Code Certif Info ou intitulé"}}


class SessionView(SecureModelView):
    simple_list_pager = True
    column_list = ("reference", "formation", "date_debut", "date_fin", "commune", "places",
                   "mode_entree", "state")
    column_searchable_list = ("reference",)
    search_exact = ("reference",)
    column_filters = (state_filter(Session.state, SessionState),
                      state_filter(Session.mode_entree, EntryMode, "Mode d'entrée"),
                      FilterEqual("formation.dispositif", "Dispositif",
                                  options=Dispositif.choices()),
                      FilterEqual("commune.departement", "Département",
                                  options=DEPARTEMENT_CHOICES),
                      "date_debut", "date_fin", "ouverte_candidature")
    enum_fields = {"state": (SessionState, "État"),
                   "mode_entree": (EntryMode, "Mode d'entrée")}
    column_labels = {"formation": "Formation", "date_debut": "Début", "date_fin": "Fin",
                     "cedex": "Cedex", "organisme_formateur": "Organisme formateur",
                     "date_limite_inscription": "Date limite d'inscription",
                     "date_entree_tardive": "Date d'entrée tardive",
                     "ouverte_candidature": "Ouverte aux candidatures",
                     "date_publication": "Date de publication",
                     "entry_points": "Points d'entrée"}
    form_columns = ("reference", "formation", "date_debut", "date_fin", "adresse", "commune",
                    "cedex", "organisme_formateur", "mode_entree", "places",
                    "date_limite_inscription", "date_entree_tardive", "ouverte_candidature",
                    "state")
    form_args = {"reference": {"validators": [Regexp(
        r"^\d{8}$", message="La référence d'une session compte 8 chiffres.")]}}
    form_ajax_refs = {"formation": {"fields": ("reference", "intitule"), "page_size": 10,
                                    "placeholder": "Référence ou intitulé"},
                      "commune": {"fields": ("nom", "code_postal"), "page_size": 10},
                      "organisme_formateur": STRUCTURE_LOOKUP}
    inline_models = ((EntryPoint, {"form_columns": ("id", "date_entree", "places"),
                                   "column_labels": {"date_entree": "Date d'entrée",
                                                     "places": "Places"}}),)

    def validate_form(self, form) -> bool:
        ok = super().validate_form(form)
        start, end = getattr(form, "date_debut", None), getattr(form, "date_fin", None)
        if ok and start is not None and end is not None and start.data and end.data \
                and end.data < start.data:
            end.errors = list(end.errors) + [
                "La date de fin doit être postérieure ou égale à la date de début."]
            return False
        return ok


class EntryPointView(SecureModelView):
    column_list = ("session", "date_entree", "places")
    column_default_sort = ("date_entree", True)
    column_filters = ("date_entree",)
    column_labels = {"session": "Session", "date_entree": "Date d'entrée"}
    form_ajax_refs = {"session": {"fields": ("reference",), "page_size": 10}}


def register(admin) -> None:
    admin.add_view(FormationView(Formation, "Formations", CATEGORY))
    admin.add_view(SessionView(Session, "Sessions", CATEGORY))
    admin.add_view(EntryPointView(EntryPoint, "Points d'entrée", CATEGORY))
