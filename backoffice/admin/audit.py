"""Read-only audit screens: transition log, job runs, rule-set versions, and the RGPD log
of staff reads of personal data (admins only)."""
from __future__ import annotations

from backoffice.admin.base import ReadOnlyModelView, state_filter
from backoffice.models import (JobRun, JobRunStatus, PersonalDataAccess, RuleSetVersion,
                               StaffRole, TransitionLog)

CATEGORY = "Suivi"


class TransitionLogView(ReadOnlyModelView):
    simple_list_pager = True
    column_list = ("at", "object_type", "object_id", "transition", "from_state", "to_state",
                   "actor", "reason")
    column_default_sort = ("at", True)
    column_searchable_list = ("object_type", "transition")
    search_exact = ("object_type", "transition")
    column_filters = ("object_type", "object_id", "transition", "to_state", "at")
    column_labels = {"at": "Date", "object_type": "Type d'objet", "object_id": "Objet",
                     "transition": "Transition", "from_state": "De", "to_state": "Vers",
                     "actor": "Acteur", "reason": "Motif"}


class JobRunView(ReadOnlyModelView):
    simple_list_pager = True
    column_list = ("job", "run_for", "started_at", "ended_at", "status", "rows_seen",
                   "rows_changed", "dry_run", "summary")
    column_default_sort = ("started_at", True)
    column_filters = ("job", state_filter(JobRun.status, JobRunStatus, "Statut"), "started_at")
    enum_fields = {"status": (JobRunStatus, "Statut")}
    column_labels = {"job": "Tâche", "run_for": "Pour l'instant", "started_at": "Début",
                     "ended_at": "Fin", "rows_seen": "Lignes vues",
                     "rows_changed": "Lignes modifiées", "dry_run": "À blanc",
                     "summary": "Résumé", "error": "Erreur"}


class RuleSetVersionView(ReadOnlyModelView):
    roles = tuple(StaffRole)
    column_list = ("ruleset", "version", "active", "author", "created_at", "comment")
    column_default_sort = ("created_at", True)
    column_filters = ("ruleset", "active")
    column_labels = {"ruleset": "Jeu de règles", "version": "Version", "author": "Auteur",
                     "comment": "Commentaire", "content": "Contenu"}


class PersonalDataAccessView(ReadOnlyModelView):
    """Who read which candidate's personal data: admins only, never changed or deleted."""

    roles = (StaffRole.ADMIN,)
    simple_list_pager = True
    column_list = ("at", "actor", "actor_role", "candidate_id", "what", "location")
    column_details_list = column_list
    column_default_sort = ("at", True)
    column_filters = ("candidate_id", "actor_id", "actor_role", "at")
    column_searchable_list = ("what", "location")
    enum_fields = {"actor_role": (StaffRole, "Rôle")}
    column_labels = {"at": "Date", "actor": "Lecteur", "actor_id": "Lecteur (identifiant)",
                     "actor_role": "Rôle", "candidate_id": "Candidat (identifiant)",
                     "what": "Donnée consultée", "location": "Page"}


def register(admin) -> None:
    admin.add_view(TransitionLogView(TransitionLog, "Journal des transitions", CATEGORY))
    admin.add_view(JobRunView(JobRun, "Exécutions des tâches", CATEGORY))
    admin.add_view(RuleSetVersionView(RuleSetVersion, "Versions des règles", CATEGORY))
    admin.add_view(PersonalDataAccessView(PersonalDataAccess,
                                          "Consultations de données personnelles", CATEGORY))
