"""Admin screens of candidates and candidatures. The NIR is never shown.

Every opening of these screens by staff — list (with its search and filters), detail,
edit — is written to the RGPD access log (``services.personal_data``), before the page
is rendered."""
from __future__ import annotations

from flask import request
from flask_admin import expose
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_login import current_user
from wtforms.validators import Email, Optional, Regexp

from backoffice.admin.accounts import UserLoader
from backoffice.admin.base import SecureModelView, state_filter
from backoffice.extensions import db
from backoffice.models import (Candidate, Candidature, CandidatureState, Civilite, Dispositif,
                               FollowUpStep)
from backoffice.models.reference import DEPARTEMENTS_NOUVELLE_AQUITAINE
from backoffice.services import personal_data

CATEGORY = "Candidatures"
DEPARTEMENT_CHOICES = sorted(DEPARTEMENTS_NOUVELLE_AQUITAINE.items())


class LogsPersonalDataReads:
    """Writes each staff read of the screen to the access log, then shows the page."""

    personal_data_label = ""

    def candidate_id_of(self, model) -> int | None:
        raise NotImplementedError

    def _log_read(self, what: str, *, one: bool) -> None:
        if not personal_data.is_traced(current_user):
            return
        candidate_id = None
        if one:
            object_id = request.args.get("id", "")
            model = self.get_one(object_id) if object_id.isdigit() else None
            if model is None:
                return  # nothing shown
            candidate_id = self.candidate_id_of(model)
        personal_data.record_access(actor=current_user, candidate_id=candidate_id,
                                    what=f"{self.personal_data_label} : {what}",
                                    location=f"{request.method} {request.full_path}")
        db.session.commit()

    @expose("/")
    def index_view(self):
        self._log_read("liste", one=False)
        return super().index_view()

    @expose("/details/")
    def details_view(self):
        self._log_read("détail", one=True)
        return super().details_view()

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        self._log_read("modification", one=True)
        return super().edit_view()


class CandidateView(LogsPersonalDataReads, SecureModelView):
    personal_data_label = "Administration, candidats"

    def candidate_id_of(self, model) -> int | None:
        return model.id

    simple_list_pager = True
    column_list = ("nom", "prenom", "date_naissance", "code_postal",
                   "identifiant_france_travail", "inscrit_france_travail", "created_at")
    # Sorts an index serves in the list's order (column, id): pages by key stay cheap.
    column_sortable_list = ("nom", "date_naissance")
    column_searchable_list = ("nom", "prenom", "identifiant_france_travail",
                              "identifiant_regional", "email")
    search_words = ""
    search_exact = ("identifiant_france_travail", "identifiant_regional", "email")
    column_filters = ("date_naissance", "inscrit_france_travail", "created_at")
    enum_fields = {"civilite": (Civilite, "Civilité")}
    column_labels = {"date_naissance": "Date de naissance",
                     "identifiant_france_travail": "Identifiant France Travail",
                     "identifiant_regional": "Identifiant régional",
                     "inscrit_france_travail": "Inscrit à France Travail",
                     "created_by_structure": "Créé par la structure",
                     "last_activity_at": "Dernière activité", "anonymised_at": "Anonymisé le",
                     "extra": "Réponses complémentaires"}
    column_details_exclude_list = ("nir_chiffre", "nom_normalise", "prenom_normalise")
    form_columns = ("civilite", "nom", "prenom", "date_naissance", "email", "telephone",
                    "code_postal", "commune", "identifiant_france_travail",
                    "identifiant_regional", "inscrit_france_travail")
    form_args = {
        "email": {"validators": [Optional(), Email("Adresse électronique non valide.")]},
        "code_postal": {"validators": [Optional(), Regexp(
            r"^\d{5}$", message="Le code postal compte 5 chiffres.")]},
    }
    form_ajax_refs = {"commune": {"fields": ("nom", "code_postal"), "page_size": 10}}


class CandidatureView(LogsPersonalDataReads, SecureModelView):
    personal_data_label = "Administration, candidatures"

    def candidate_id_of(self, model) -> int | None:
        return model.candidate_id

    simple_list_pager = True
    column_list = ("reference", "candidate", "session", "prescriber_structure", "state",
                   "etape_suivi", "submitted_at")
    # Sorts an index serves in the list's order (column, id): pages by key stay cheap
    # (a sort by state would sort 250,000 rows of one state by id: filter by it instead).
    column_sortable_list = ("reference", "submitted_at")
    column_searchable_list = ("reference", "candidate.nom", "candidate.prenom",
                              "session.reference")
    search_words = "candidate"
    search_exact = ("reference", "session.reference")
    column_filters = (state_filter(Candidature.state, CandidatureState),
                      state_filter(Candidature.etape_suivi, FollowUpStep, "Étape du suivi"),
                      FilterEqual("session.formation.dispositif", "Dispositif",
                                  options=Dispositif.choices()),
                      FilterEqual("session.commune.departement", "Département",
                                  options=DEPARTEMENT_CHOICES),
                      "submitted_at", "created_at")
    enum_fields = {"state": (CandidatureState, "État"),
                   "etape_suivi": (FollowUpStep, "Étape du suivi")}
    column_labels = {"candidate": "Candidat", "session": "Session",
                     "entry_point": "Point d'entrée", "prescriber_user": "Prescripteur",
                     "prescriber_structure": "Structure prescriptrice",
                     "positionneur": "Positionneur", "parcours_anterieur": "Parcours antérieur",
                     "raisons_choix": "Raisons du choix", "suites_parcours": "Suites de parcours",
                     "annee_cursus": "Année de cursus",
                     "envoi_recapitulatif": "Récapitulatif envoyé au candidat",
                     "consentement": "Consentement du candidat",
                     "submitted_at": "Date de pré-inscription", "validated_at": "Validée le",
                     "avis_at": "Avis donné le", "avis_by": "Avis donné par",
                     "avis_motif": "Motif de l'avis", "candidate.nom": "Nom du candidat",
                     "candidate.prenom": "Prénom du candidat",
                     "session.reference": "Référence de session",
                     "extra": "Réponses complémentaires"}
    form_columns = ("reference", "candidate", "session", "entry_point", "prescriber_user",
                    "prescriber_structure", "positionneur", "state", "etape_suivi",
                    "parcours_anterieur", "raisons_choix", "suites_parcours", "annee_cursus",
                    "envoi_recapitulatif", "consentement", "avis_motif")
    form_ajax_refs = {
        "candidate": {"fields": ("nom", "prenom", "identifiant_france_travail"),
                      "page_size": 10, "placeholder": "Nom, prénom ou identifiant"},
        "session": {"fields": ("reference",), "page_size": 10},
        "entry_point": {"fields": ("date_entree",), "page_size": 10},
        "prescriber_user": UserLoader("prescriber_user"),
        "prescriber_structure": {"fields": ("raison_sociale", "siret"), "page_size": 10},
    }
    form_args = {"reference": {"validators": [Regexp(
        r"^\d{1,12}$", message="La référence est un nombre de 12 chiffres au plus.")]}}


def register(admin) -> None:
    admin.add_view(CandidateView(Candidate, "Candidats", CATEGORY))
    admin.add_view(CandidatureView(Candidature, "Candidatures", CATEGORY))
