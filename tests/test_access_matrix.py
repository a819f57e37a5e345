"""Who may open what: every role × every route of the application, GET and POST.

MATRIX below has one row per endpoint of ``app.url_map`` (a new route without a row fails
``test_every_route_has_a_row``, naming it: classify it). A row gives the URL (its
placeholders name the objects of structure X built by ``access_matrix_support``) and, for
GET and for POST, one expected answer per role, in the order of the header:

    "a cpg cpg 123 123 XY mra"
    a    anonymous
    cpg  OF manager of X (profile catalogue, préinscription, général), then of Y
    123  prescriber of X (level n1, n2, n3), then of Y
    XY   référent of X, of Y
    mra  modérateur, responsable des règles, admin

Answers:
    L  redirected to the login page (anonymous)
    Y  allowed: the view ran (2xx, a redirect, or 400/409/422 on the near-empty form)
    N  refused: 403 or 404
    R  sent back to an admin page: Flask-Admin's answer both to what it refuses (no such
       record for this user, screen disabled) and to a form or action it has handled
    y  POST allowed but not sent: it would destroy the shared objects (deletions, running
       a job, logging out); its refusals are still checked

Each POST carries the role's valid CSRF token, so a refusal is the permission check's.
POSTs that are refused run first, over every row; allowed POSTs run after them.
KNOWN_HOLES lists the cells whose expected answer is written above but that another part
of issue 11 fixes: they must still fail here (a fixed hole must leave the list).
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.access_matrix_support import ROLES, build_world, fresh_context, logged_in_clients

# endpoint[#variant]: (URL, GET answers, POST answers[, POST data]); None = method absent.
# The POST data's placeholders also take {csrf_token} (a form with a prefix of its own).
MATRIX: dict[str, tuple] = {
    # Answers, one per role: "a cpg cpg 123 123 XY mra" (see the module docstring).
    # -- Accounts, habilitations and delegations, référent and moderation pages --------------
    "accounts.accept_delegation": ("/delegations/accepter/lien-inconnu",
        "L YYY YYY YYY YYY YY YYY", "L YYY YYY YYY YYY YY YYY"),
    "accounts.activate": ("/activation/lien-inconnu",
        "Y YYY YYY YYY YYY YY YYY", None),
    "accounts.confirm_email": ("/confirmation-courriel/lien-inconnu",
        "Y YYY YYY YYY YYY YY YYY", None),
    "accounts.delegation_create": ("/habilitations/delegations",
        None, "L YYY YYY YYY YYY YY YYY"),
    "accounts.delegation_revoke": ("/habilitations/delegations/{delegation}/revoquer",
        None, "L NNY NNN NNN NNN NN NNY"),
    "accounts.delegation_revoke#revoked": (
        "/habilitations/delegations/{revoked_delegation}/revoquer",
        None, "L NNY NNN NNN NNN NN NNY"),
    "accounts.forgotten_password": ("/mot-de-passe-oublie",
        "Y YYY YYY YYY YYY YY YYY", "Y YYY YYY YYY YYY YY YYY"),
    "accounts.habilitation_action": ("/habilitations/{habilitation}/refuser",
        None, "L NNY NNN NNN NNN NN NNY"),
    "accounts.habilitation_action#refused": ("/habilitations/{refused_habilitation}/accepter",
        None, "L NNY NNN NNN NNN NN NNY"),
    "accounts.habilitation_action#role": ("/habilitations/{habilitation}/role",
        None, "L NNY NNN NNN NNN NN NNY", {'role': 'declarant'}),
    "accounts.habilitation_activate": ("/habilitations/activer",
        None, "L YYY YYY YYY YYY YY YYY"),
    "accounts.habilitation_codes": ("/habilitations/codes",
        "L NNN NNN NNN NNN NN NNY", "L NNN NNN NNN NNN NN NNY"),
    "accounts.habilitation_request": ("/habilitations/demander",
        None, "L YYY YYY YYY YYY YY YYY"),
    "accounts.habilitations": ("/habilitations/",
        "L YYY YYY YYY YYY YY YYY", None),
    "accounts.moderation_decide": ("/moderation/premiers-comptes/{account_request}",
        None, "L NNN NNN NNN NNN NN YNY"),
    "accounts.moderation_first_accounts": ("/moderation/premiers-comptes",
        "L NNN NNN NNN NNN NN YNY", None),
    "accounts.moderation_referencing": ("/moderation/referencements",
        "L NNN NNN NNN NNN NN YNY", None),
    "accounts.moderation_referencing_decide": ("/moderation/referencements/{referencing}",
        None, "L NNN NNN NNN NNN NN YNY"),
    "accounts.my_account": ("/mon-compte",
        "L YYY YYY YYY YYY YY YYY", "L YYY YYY YYY YYY YY YYY"),
    # « Fermer mes autres sessions » (each client has only its own, which stays open).
    "accounts.my_account#fermer_sessions": ("/mon-compte",
        "L YYY YYY YYY YYY YY YYY", "L YYY YYY YYY YYY YY YYY",
        {'action': 'fermer_sessions', 'sessions-csrf_token': '{csrf_token}'}),
    "accounts.my_structures": ("/mes-structures",
        "L YYY YYY YYY YYY YY YYY", None),
    "accounts.pending": ("/compte-en-attente",
        "L YYY YYY YYY YYY YY YYY", None),
    "accounts.referent_decide": ("/referent/demandes/compte/{account_request}",
        None, "L NNN NNN NNN NNN YN NNN"),
    "accounts.referent_decide#rattachement": ("/referent/demandes/rattachement/{affiliation}",
        None, "L NNN NNN NNN NNN YN NNN"),
    "accounts.referent_detach": ("/referent/utilisateurs/{detachable}/detacher",
        None, "L NNN NNN NNN NNN YN NNN"),
    "accounts.referent_export": ("/referent/utilisateurs.csv",
        "L NNN NNN NNN NNN YY NNN", None),
    "accounts.referent_home": ("/referent/",
        "L NNN NNN NNN NNN YY NNN", None),
    "accounts.referent_rights": ("/referent/utilisateurs/{membership}/droits",
        "L NNN NNN NNN NNN YN NNN", "L NNN NNN NNN NNN YN NNN"),
    "accounts.register": ("/inscription",
        "Y YYY YYY YYY YYY YY YYY", "Y YYY YYY YYY YYY YY YYY"),
    "accounts.registered": ("/inscription/envoyee",
        "Y YYY YYY YYY YYY YY YYY", None),
    "accounts.request_affiliation": ("/mes-structures/rattachement",
        None, "L YYY YYY YYY YYY YY YYY"),
    "accounts.reset_password": ("/reinitialisation/lien-inconnu",
        "Y YYY YYY YYY YYY YY YYY", "Y YYY YYY YYY YYY YY YYY"),
    "accounts.switch_structure": ("/mes-structures/active",
        None, "L YYY YYY YYY YYY YY YYY"),
    "auth.choose_structure": ("/structure-active",
        "L YYY YYY YYY YYY YY YYY", "L YYY YYY YYY YYY YY YYY"),
    "auth.login": ("/connexion",
        "Y YYY YYY YYY YYY YY YYY", "Y YYY YYY YYY YYY YY YYY"),
    # The second factor's pages exist only between a staff password and its code: whoever
    # is not at that step (anonymous, logged in, non-staff) is sent to the login page.
    "auth.mfa_enrol": ("/connexion/double-authentification",
        "L LLL LLL LLL LLL LL LLL", "L LLL LLL LLL LLL LL LLL", {'code': '000000'}),
    "auth.mfa_verify": ("/connexion/code",
        "L LLL LLL LLL LLL LL LLL", "L LLL LLL LLL LLL LL LLL", {'code': '000000'}),
    "auth.logout": ("/deconnexion",
        None, "y yyy yyy yyy yyy yy yyy"),
    "main.home": ("/",
        "L YYY YYY YYY YYY YY YYY", None),
    "main.favicon": ("/favicon.ico",
        "Y YYY YYY YYY YYY YY YYY", None),
    "static": ("/static/forms.js",
        "Y YYY YYY YYY YYY YY YYY", None),
    # -- OF: catalogue and candidatures received ---------------------------------------------
    "avis.bulk_avis": ("/candidatures-of/avis-groupe",
        None, "L NYY NNN NNN NNN NN NNN", {'ids': '{candidature}', 'avis': 'retenue'}),
    "avis.candidature": ("/candidatures-of/{candidature}",
        "L NYY NNN NNN NNN NN NNN", None),
    "avis.candidatures": ("/candidatures-of/",
        "L NYY NYY NNN NNN NN NNN", None),
    "avis.follow_up": ("/candidatures-of/{candidature}/suivi",
        None, "L NYY NNN NNN NNN NN NNN"),
    "avis.give_avis": ("/candidatures-of/{candidature}/avis",
        None, "L NYY NNN NNN NNN NN NNN"),
    "catalogue.add_entry_point": ("/catalogue/sessions/{session}/points-entree",
        None, "L YNY NNN NNN NNN NN NNN"),
    "catalogue.api_certifications": ("/catalogue/api/certifications?q=Ti",
        "L YNY YNY NNN NNN NN NNN", None),
    "catalogue.api_communes": ("/catalogue/api/communes?q=Co",
        "L YNY YNY NNN NNN NN NNN", None),
    "catalogue.api_organisations": ("/catalogue/api/organismes-formateurs?q=Or",
        "L YNY YNY NNN NNN NN NNN", None),
    "catalogue.archive": ("/catalogue/formations/{spare_formation}/archiver",
        None, "L YNY NNN NNN NNN NN NNN"),
    "catalogue.cancel_session": ("/catalogue/sessions/{spare_session}/annuler",
        None, "L YNY NNN NNN NNN NN NNN"),
    "catalogue.confirm": ("/catalogue/formations/{formation}/confirmer",
        None, "L YNY NNN NNN NNN NN NNN"),
    "catalogue.delete": ("/catalogue/formations/{spare_formation}/supprimer",
        "L YNY NNN NNN NNN NN NNN", "L YNY NNN NNN NNN NN NNN"),
    "catalogue.delete_entry_point": ("/catalogue/points-entree/{spare_entry_point}/supprimer",
        None, "L YNy NNN NNN NNN NN NNN"),
    "catalogue.delete_session": ("/catalogue/sessions/{spare_session}/supprimer",
        None, "L YNY NNN NNN NNN NN NNN"),
    "catalogue.duplicate": ("/catalogue/sessions/{session}/dupliquer",
        None, "L YNY NNN NNN NNN NN NNN"),
    "catalogue.edit_entry_point": ("/catalogue/points-entree/{entry_point}",
        None, "L YNY NNN NNN NNN NN NNN"),
    "catalogue.formation": ("/catalogue/formations/{formation}",
        "L YNY NNN NNN NNN NN NNN", "L YNY NNN NNN NNN NN NNN"),
    "catalogue.import_csv": ("/catalogue/import",
        "L YNY YNY NNN NNN NN NNN", "L YNY YNY NNN NNN NN NNN"),
    "catalogue.import_progress": ("/catalogue/import/{import_run}",
        "L YNY NNN NNN NNN NN NNN", None),
    "catalogue.import_status": ("/catalogue/import/{import_run}/etat",
        "L YNY NNN NNN NNN NN NNN", None),
    "catalogue.index": ("/catalogue/",
        "L YNY YNY NNN NNN NN NNN", None),
    "catalogue.new_formation": ("/catalogue/formations/nouvelle",
        "L YNY YNY NNN NNN NN NNN", "L YNY YNY NNN NNN NN NNN"),
    "catalogue.new_session": ("/catalogue/formations/{formation}/sessions/nouvelle",
        "L YNY NNN NNN NNN NN NNN", "L YNY NNN NNN NNN NN NNN"),
    "catalogue.publish": ("/catalogue/formations/{formation}/publier",
        "L YNY NNN NNN NNN NN NNN", None),
    "catalogue.restore": ("/catalogue/formations/{spare_formation}/restaurer",
        None, "L YNY NNN NNN NNN NN NNN"),
    "catalogue.session": ("/catalogue/sessions/{session}",
        "L YNY NNN NNN NNN NN NNN", "L YNY NNN NNN NNN NN NNN"),
    # -- Prescribers -------------------------------------------------------------------------
    "prescription.cancel": ("/prescription/candidatures/{candidature}/annuler",
        "L NNN NNN NYY NNN NN NNN", "L NNN NNN NYY NNN NN NNN"),
    "prescription.candidature": ("/prescription/candidatures/{candidature}",
        "L NNN NNN NYY NNN NN NNN", "L NNN NNN NNN NNN NN NNN"),
    "prescription.candidature#brouillon": ("/prescription/candidatures/{draft}",
        "L NNN NNN NYY NNN NN NNN", "L NNN NNN NYN NNN NN NNN"),
    "prescription.candidatures": ("/prescription/candidatures",
        "L NNN NNN YYY YYY NN NNN", None),
    "prescription.discard": ("/prescription/candidatures/{candidature}/corbeille",
        None, "L NNN NNN NYY NNN NN NNN"),
    "prescription.edit_candidate": ("/prescription/candidats/{candidate}/modifier",
        "L NNN NNN YYY NNN NN NNN", "L NNN NNN YYY NNN NN NNN"),
    "prescription.find_candidate": ("/prescription/sessions/{session}/ajouter",
        "L NNN NNN YYY YYY NN NNN", None),
    "prescription.new_candidate": ("/prescription/sessions/{session}/nouveau-candidat",
        "L NNN NNN YYY YYY NN NNN", "L NNN NNN YYY YYY NN NNN"),
    "prescription.new_candidature": (
        "/prescription/sessions/{session}/candidats/{candidate}/candidature",
        "L NNN NNN YYY YYY NN NNN", "L NNN NNN YYY YYY NN NNN"),
    "prescription.search_offer": ("/prescription/recherche",
        "L NNN NNN YYY YYY NN NNN", None),
    "prescription.validate": ("/prescription/candidatures/{candidature}/valider",
        None, "L NNN NNN NYY NNN NN NNN"),
    # -- Admin screens other than model views ------------------------------------------------
    "admin.index": ("/admin/",
        "L NNN NNN NNN NNN NN YYY", None),
    "admin.static": ("/admin/static/admin/js/form.js",
        "Y YYY YYY YYY YYY YY YYY", None),
    "moderation_formations.action_view": ("/admin/moderation-formations/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "moderation_formations.decision_view": ("/admin/moderation-formations/decision/{formation}",
        None, "L NNN NNN NNN NNN NN NNN"),
    "moderation_formations.diff_view": ("/admin/moderation-formations/modifications/{formation}",
        "L NNN NNN NNN NNN NN NNN", None),
    "moderation_formations.index_view": ("/admin/moderation-formations/",
        "L NNN NNN NNN NNN NN YNY", None),
    "regles.diff": ("/admin/regles/{jeu}/diff",
        "L NNN NNN NNN NNN NN NRR", None),
    "regles.edit": ("/admin/regles/{jeu}/modifier",
        "L NNN NNN NNN NNN NN NYY", "L NNN NNN NNN NNN NN NYY"),
    "regles.history": ("/admin/regles/{jeu}/historique",
        "L NNN NNN NNN NNN NN NYY", None),
    "regles.index": ("/admin/regles/",
        "L NNN NNN NNN NNN NN NYY", None),
    "regles.revert": ("/admin/regles/{jeu}/revenir",
        None, "L NNN NNN NNN NNN NN NRR"),
    "regles.ruleset": ("/admin/regles/{jeu}/",
        "L NNN NNN NNN NNN NN NYY", None),
    "regles.tryout": ("/admin/regles/{jeu}/essais/{tryout_run}",
        "L NNN NNN NNN NNN NN NYY", None),
    "regles.tryout#json": ("/admin/regles/{jeu}/essais/{tryout_run}?format=json",
        "L NNN NNN NNN NNN NN NYY", None),
    "taches.index": ("/admin/taches/",
        "L NNN NNN NNN NNN NN YNY", None),
    "taches.run_now": ("/admin/taches/lancer/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "workflows.index": ("/admin/workflows/",
        "L NNN NNN NNN NNN NN YYY", None),
    # -- Admin: structure --------------------------------------------------------------------
    "structure.action_view": ("/admin/structure/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "structure.ajax_lookup": ("/admin/structure/ajax/lookup/?name=commune&query=Or",
        "L NNN NNN NNN NNN NN YNY", None),
    "structure.ajax_update": ("/admin/structure/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "structure.create_view": ("/admin/structure/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "structure.delete_view": ("/admin/structure/delete/?id={structure}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "structure.details_view": ("/admin/structure/details/?id={structure}",
        "L NNN NNN NNN NNN NN YNY", None),
    "structure.edit_view": ("/admin/structure/edit/?id={structure}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "structure.export": ("/admin/structure/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "structure.index_view": ("/admin/structure/",
        "L NNN NNN NNN NNN NN YNY", None),
    "structure.transition_view": ("/admin/structure/transition/?id={structure}",
        None, "L NNN NNN NNN NNN NN NNN"),
    # -- Admin: user -------------------------------------------------------------------------
    "user.action_view": ("/admin/user/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "user.ajax_lookup": ("/admin/user/ajax/lookup/?name=aucun&query=Or",
        "L NNN NNN NNN NNN NN NNN", None),
    "user.ajax_update": ("/admin/user/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "user.create_view": ("/admin/user/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "user.delete_view": ("/admin/user/delete/?id={user}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "user.details_view": ("/admin/user/details/?id={user}",
        "L NNN NNN NNN NNN NN YNY", None),
    "user.details_view#staff": ("/admin/user/details/?id={staff_user}",
        "L NNN NNN NNN NNN NN RNY", None),
    "user.edit_view": ("/admin/user/edit/?id={user}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "user.edit_view#staff": ("/admin/user/edit/?id={staff_user}",
        "L NNN NNN NNN NNN NN RNY", "L NNN NNN NNN NNN NN RNY"),
    "user.export": ("/admin/user/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "user.index_view": ("/admin/user/",
        "L NNN NNN NNN NNN NN YNY", None),
    "user.transition_view": ("/admin/user/transition/?id={user}",
        None, "L NNN NNN NNN NNN NN RNR"),
    # -- Admin: membership -------------------------------------------------------------------
    "membership.action_view": ("/admin/membership/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "membership.ajax_lookup": ("/admin/membership/ajax/lookup/?name=user&query=Or",
        "L NNN NNN NNN NNN NN YNY", None),
    "membership.ajax_update": ("/admin/membership/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "membership.create_view": ("/admin/membership/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "membership.delete_view": ("/admin/membership/delete/?id={membership}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "membership.details_view": ("/admin/membership/details/?id={membership}",
        "L NNN NNN NNN NNN NN YNY", None),
    "membership.edit_view": ("/admin/membership/edit/?id={membership}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "membership.export": ("/admin/membership/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "membership.index_view": ("/admin/membership/",
        "L NNN NNN NNN NNN NN YNY", None),
    "membership.transition_view": ("/admin/membership/transition/?id={membership}",
        None, "L NNN NNN NNN NNN NN NNN"),
    # -- Admin: accountrequest ---------------------------------------------------------------
    "accountrequest.action_view": ("/admin/accountrequest/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "accountrequest.ajax_lookup": ("/admin/accountrequest/ajax/lookup/?name=user&query=Or",
        "L NNN NNN NNN NNN NN YNY", None),
    "accountrequest.ajax_update": ("/admin/accountrequest/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "accountrequest.create_view": ("/admin/accountrequest/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "accountrequest.delete_view": ("/admin/accountrequest/delete/?id={account_request}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "accountrequest.details_view": ("/admin/accountrequest/details/?id={account_request}",
        "L NNN NNN NNN NNN NN YNY", None),
    "accountrequest.edit_view": ("/admin/accountrequest/edit/?id={account_request}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "accountrequest.export": ("/admin/accountrequest/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "accountrequest.index_view": ("/admin/accountrequest/",
        "L NNN NNN NNN NNN NN YNY", None),
    "accountrequest.transition_view": ("/admin/accountrequest/transition/?id={account_request}",
        None, "L NNN NNN NNN NNN NN RNR"),
    # -- Admin: affiliationrequest -----------------------------------------------------------
    "affiliationrequest.action_view": ("/admin/affiliationrequest/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "affiliationrequest.ajax_lookup": ("/admin/affiliationrequest/ajax/lookup/?name=user&query=Or",
        "L NNN NNN NNN NNN NN YNY", None),
    "affiliationrequest.ajax_update": ("/admin/affiliationrequest/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "affiliationrequest.create_view": ("/admin/affiliationrequest/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "affiliationrequest.delete_view": ("/admin/affiliationrequest/delete/?id={affiliation}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "affiliationrequest.details_view": ("/admin/affiliationrequest/details/?id={affiliation}",
        "L NNN NNN NNN NNN NN YNY", None),
    "affiliationrequest.edit_view": ("/admin/affiliationrequest/edit/?id={affiliation}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "affiliationrequest.export": ("/admin/affiliationrequest/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "affiliationrequest.index_view": ("/admin/affiliationrequest/",
        "L NNN NNN NNN NNN NN YNY", None),
    "affiliationrequest.transition_view": (
        "/admin/affiliationrequest/transition/?id={affiliation}",
        None, "L NNN NNN NNN NNN NN RNR"),
    # -- Admin: referencingrequest -----------------------------------------------------------
    "referencingrequest.action_view": ("/admin/referencingrequest/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "referencingrequest.ajax_lookup": (
        "/admin/referencingrequest/ajax/lookup/?name=requester&query=Or",
        "L NNN NNN NNN NNN NN YNY", None),
    "referencingrequest.ajax_update": ("/admin/referencingrequest/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "referencingrequest.create_view": ("/admin/referencingrequest/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "referencingrequest.delete_view": ("/admin/referencingrequest/delete/?id={referencing}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "referencingrequest.details_view": ("/admin/referencingrequest/details/?id={referencing}",
        "L NNN NNN NNN NNN NN YNY", None),
    "referencingrequest.edit_view": ("/admin/referencingrequest/edit/?id={referencing}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "referencingrequest.export": ("/admin/referencingrequest/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "referencingrequest.index_view": ("/admin/referencingrequest/",
        "L NNN NNN NNN NNN NN YNY", None),
    "referencingrequest.transition_view": (
        "/admin/referencingrequest/transition/?id={referencing}",
        None, "L NNN NNN NNN NNN NN RNR"),
    # -- Admin: habilitation -----------------------------------------------------------------
    "habilitation.action_view": ("/admin/habilitation/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "habilitation.ajax_lookup": ("/admin/habilitation/ajax/lookup/?name=user&query=Or",
        "L NNN NNN NNN NNN NN YNY", None),
    "habilitation.ajax_update": ("/admin/habilitation/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "habilitation.create_view": ("/admin/habilitation/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "habilitation.delete_view": ("/admin/habilitation/delete/?id={habilitation}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "habilitation.details_view": ("/admin/habilitation/details/?id={habilitation}",
        "L NNN NNN NNN NNN NN YNY", None),
    "habilitation.edit_view": ("/admin/habilitation/edit/?id={habilitation}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    # A staff account's habilitation: a moderator is sent back to the list (no such row).
    "habilitation.details_view#staff": ("/admin/habilitation/details/?id={staff_habilitation}",
        "L NNN NNN NNN NNN NN RNY", None),
    "habilitation.edit_view#staff": ("/admin/habilitation/edit/?id={staff_habilitation}",
        "L NNN NNN NNN NNN NN RNY", "L NNN NNN NNN NNN NN RNY"),
    "habilitation.export": ("/admin/habilitation/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "habilitation.index_view": ("/admin/habilitation/",
        "L NNN NNN NNN NNN NN YNY", None),
    "habilitation.transition_view": ("/admin/habilitation/transition/?id={habilitation}",
        None, "L NNN NNN NNN NNN NN RNR"),
    # -- Admin: delegation -------------------------------------------------------------------
    "delegation.action_view": ("/admin/delegation/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "delegation.ajax_lookup": ("/admin/delegation/ajax/lookup/?name=granted_by&query=Or",
        "L NNN NNN NNN NNN NN YNY", None),
    "delegation.ajax_update": ("/admin/delegation/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "delegation.create_view": ("/admin/delegation/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "delegation.delete_view": ("/admin/delegation/delete/?id={delegation}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "delegation.details_view": ("/admin/delegation/details/?id={delegation}",
        "L NNN NNN NNN NNN NN YNY", None),
    "delegation.edit_view": ("/admin/delegation/edit/?id={delegation}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "delegation.export": ("/admin/delegation/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "delegation.index_view": ("/admin/delegation/",
        "L NNN NNN NNN NNN NN YNY", None),
    "delegation.transition_view": ("/admin/delegation/transition/?id={delegation}",
        None, "L NNN NNN NNN NNN NN RNR"),
    # -- Admin: token ------------------------------------------------------------------------
    "token.action_view": ("/admin/token/action/",
        None, "L NNN NNN NNN NNN NN NNy"),
    "token.ajax_lookup": ("/admin/token/ajax/lookup/?name=aucun&query=Or",
        "L NNN NNN NNN NNN NN NNN", None),
    "token.ajax_update": ("/admin/token/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "token.create_view": ("/admin/token/new/",
        "L NNN NNN NNN NNN NN NNR", "L NNN NNN NNN NNN NN NNR"),
    "token.delete_view": ("/admin/token/delete/?id={token}",
        None, "L NNN NNN NNN NNN NN NNy"),
    "token.details_view": ("/admin/token/details/?id={token}",
        "L NNN NNN NNN NNN NN NNY", None),
    "token.edit_view": ("/admin/token/edit/?id={token}",
        "L NNN NNN NNN NNN NN NNR", "L NNN NNN NNN NNN NN NNR"),
    "token.export": ("/admin/token/export/csv/",
        "L NNN NNN NNN NNN NN NNR", None),
    "token.index_view": ("/admin/token/",
        "L NNN NNN NNN NNN NN NNY", None),
    "token.transition_view": ("/admin/token/transition/?id={token}",
        None, "L NNN NNN NNN NNN NN NNN"),
    # Admin-only screens (read-only; deleting a rate-limit row lifts the limit at once).
    # -- Admin: ratelimit ------------------------------------------------------------
    "ratelimit.action_view": ("/admin/ratelimit/action/",
        None, "L NNN NNN NNN NNN NN NNy"),
    "ratelimit.ajax_lookup": ("/admin/ratelimit/ajax/lookup/?name=aucun&query=Or",
        "L NNN NNN NNN NNN NN NNN", None),
    "ratelimit.ajax_update": ("/admin/ratelimit/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "ratelimit.create_view": ("/admin/ratelimit/new/",
        "L NNN NNN NNN NNN NN NNR", "L NNN NNN NNN NNN NN NNR"),
    "ratelimit.delete_view": ("/admin/ratelimit/delete/?id={rate_limit}",
        None, "L NNN NNN NNN NNN NN NNy"),
    "ratelimit.details_view": ("/admin/ratelimit/details/?id={rate_limit}",
        "L NNN NNN NNN NNN NN NNY", None),
    "ratelimit.edit_view": ("/admin/ratelimit/edit/?id={rate_limit}",
        "L NNN NNN NNN NNN NN NNR", "L NNN NNN NNN NNN NN NNR"),
    "ratelimit.export": ("/admin/ratelimit/export/csv/",
        "L NNN NNN NNN NNN NN NNR", None),
    "ratelimit.index_view": ("/admin/ratelimit/",
        "L NNN NNN NNN NNN NN NNY", None),
    "ratelimit.transition_view": ("/admin/ratelimit/transition/?id={rate_limit}",
        None, "L NNN NNN NNN NNN NN NNN"),
    # -- Admin: usersession ----------------------------------------------------------
    "usersession.action_view": ("/admin/usersession/action/",
        None, "L NNN NNN NNN NNN NN NNR"),
    # « Fermer » ends the session of X's member (not one of the matrix's own clients).
    "usersession.action_view#fermer": ("/admin/usersession/action/",
        None, "L NNN NNN NNN NNN NN NNR", {'action': 'fermer', 'rowid': '{user_session}'}),
    "usersession.ajax_lookup": ("/admin/usersession/ajax/lookup/?name=aucun&query=Or",
        "L NNN NNN NNN NNN NN NNN", None),
    "usersession.ajax_update": ("/admin/usersession/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "usersession.create_view": ("/admin/usersession/new/",
        "L NNN NNN NNN NNN NN NNR", "L NNN NNN NNN NNN NN NNR"),
    "usersession.delete_view": ("/admin/usersession/delete/?id={user_session}",
        None, "L NNN NNN NNN NNN NN NNR"),
    "usersession.details_view": ("/admin/usersession/details/?id={user_session}",
        "L NNN NNN NNN NNN NN NNY", None),
    "usersession.edit_view": ("/admin/usersession/edit/?id={user_session}",
        "L NNN NNN NNN NNN NN NNR", "L NNN NNN NNN NNN NN NNR"),
    "usersession.export": ("/admin/usersession/export/csv/",
        "L NNN NNN NNN NNN NN NNR", None),
    "usersession.index_view": ("/admin/usersession/",
        "L NNN NNN NNN NNN NN NNY", None),
    "usersession.transition_view": ("/admin/usersession/transition/?id={user_session}",
        None, "L NNN NNN NNN NNN NN NNN"),
    # -- Admin: mfarecoverycode ------------------------------------------------------
    "mfarecoverycode.action_view": ("/admin/mfarecoverycode/action/",
        None, "L NNN NNN NNN NNN NN NNR"),
    "mfarecoverycode.ajax_lookup": ("/admin/mfarecoverycode/ajax/lookup/?name=aucun&query=Or",
        "L NNN NNN NNN NNN NN NNN", None),
    "mfarecoverycode.ajax_update": ("/admin/mfarecoverycode/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "mfarecoverycode.create_view": ("/admin/mfarecoverycode/new/",
        "L NNN NNN NNN NNN NN NNR", "L NNN NNN NNN NNN NN NNR"),
    "mfarecoverycode.delete_view": ("/admin/mfarecoverycode/delete/?id={recovery_code}",
        None, "L NNN NNN NNN NNN NN NNR"),
    "mfarecoverycode.details_view": ("/admin/mfarecoverycode/details/?id={recovery_code}",
        "L NNN NNN NNN NNN NN NNY", None),
    "mfarecoverycode.edit_view": ("/admin/mfarecoverycode/edit/?id={recovery_code}",
        "L NNN NNN NNN NNN NN NNR", "L NNN NNN NNN NNN NN NNR"),
    "mfarecoverycode.export": ("/admin/mfarecoverycode/export/csv/",
        "L NNN NNN NNN NNN NN NNR", None),
    "mfarecoverycode.index_view": ("/admin/mfarecoverycode/",
        "L NNN NNN NNN NNN NN NNY", None),
    "mfarecoverycode.transition_view": ("/admin/mfarecoverycode/transition/?id={recovery_code}",
        None, "L NNN NNN NNN NNN NN NNN"),
    # -- Admin: certification ----------------------------------------------------------------
    "certification.action_view": ("/admin/certification/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "certification.ajax_lookup": ("/admin/certification/ajax/lookup/?name=aucun&query=Or",
        "L NNN NNN NNN NNN NN NNN", None),
    "certification.ajax_update": ("/admin/certification/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "certification.create_view": ("/admin/certification/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "certification.delete_view": ("/admin/certification/delete/?id={certification}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "certification.details_view": ("/admin/certification/details/?id={certification}",
        "L NNN NNN NNN NNN NN YNY", None),
    "certification.edit_view": ("/admin/certification/edit/?id={certification}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "certification.export": ("/admin/certification/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "certification.index_view": ("/admin/certification/",
        "L NNN NNN NNN NNN NN YNY", None),
    "certification.transition_view": ("/admin/certification/transition/?id={certification}",
        None, "L NNN NNN NNN NNN NN NNN"),
    # -- Admin: commune ----------------------------------------------------------------------
    "commune.action_view": ("/admin/commune/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "commune.ajax_lookup": ("/admin/commune/ajax/lookup/?name=aucun&query=Or",
        "L NNN NNN NNN NNN NN NNN", None),
    "commune.ajax_update": ("/admin/commune/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "commune.create_view": ("/admin/commune/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "commune.delete_view": ("/admin/commune/delete/?id={commune}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "commune.details_view": ("/admin/commune/details/?id={commune}",
        "L NNN NNN NNN NNN NN YNY", None),
    "commune.edit_view": ("/admin/commune/edit/?id={commune}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "commune.export": ("/admin/commune/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "commune.index_view": ("/admin/commune/",
        "L NNN NNN NNN NNN NN YNY", None),
    "commune.transition_view": ("/admin/commune/transition/?id={commune}",
        None, "L NNN NNN NNN NNN NN NNN"),
    # -- Admin: formation --------------------------------------------------------------------
    "formation.action_view": ("/admin/formation/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "formation.ajax_lookup": ("/admin/formation/ajax/lookup/?name=structure&query=Or",
        "L NNN NNN NNN NNN NN YNY", None),
    "formation.ajax_update": ("/admin/formation/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "formation.create_view": ("/admin/formation/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "formation.delete_view": ("/admin/formation/delete/?id={formation}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "formation.details_view": ("/admin/formation/details/?id={formation}",
        "L NNN NNN NNN NNN NN YNY", None),
    "formation.edit_view": ("/admin/formation/edit/?id={formation}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "formation.export": ("/admin/formation/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "formation.index_view": ("/admin/formation/",
        "L NNN NNN NNN NNN NN YNY", None),
    "formation.transition_view": ("/admin/formation/transition/?id={formation}",
        None, "L NNN NNN NNN NNN NN RNR"),
    # -- Admin: session ----------------------------------------------------------------------
    "session.action_view": ("/admin/session/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "session.ajax_lookup": ("/admin/session/ajax/lookup/?name=formation&query=Or",
        "L NNN NNN NNN NNN NN YNY", None),
    "session.ajax_update": ("/admin/session/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "session.create_view": ("/admin/session/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "session.delete_view": ("/admin/session/delete/?id={session}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "session.details_view": ("/admin/session/details/?id={session}",
        "L NNN NNN NNN NNN NN YNY", None),
    "session.edit_view": ("/admin/session/edit/?id={session}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "session.export": ("/admin/session/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "session.index_view": ("/admin/session/",
        "L NNN NNN NNN NNN NN YNY", None),
    "session.transition_view": ("/admin/session/transition/?id={session}",
        None, "L NNN NNN NNN NNN NN RNR"),
    # -- Admin: entrypoint -------------------------------------------------------------------
    "entrypoint.action_view": ("/admin/entrypoint/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "entrypoint.ajax_lookup": ("/admin/entrypoint/ajax/lookup/?name=session&query=Or",
        "L NNN NNN NNN NNN NN YNY", None),
    "entrypoint.ajax_update": ("/admin/entrypoint/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "entrypoint.create_view": ("/admin/entrypoint/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "entrypoint.delete_view": ("/admin/entrypoint/delete/?id={entry_point}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "entrypoint.details_view": ("/admin/entrypoint/details/?id={entry_point}",
        "L NNN NNN NNN NNN NN YNY", None),
    "entrypoint.edit_view": ("/admin/entrypoint/edit/?id={entry_point}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "entrypoint.export": ("/admin/entrypoint/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "entrypoint.index_view": ("/admin/entrypoint/",
        "L NNN NNN NNN NNN NN YNY", None),
    "entrypoint.transition_view": ("/admin/entrypoint/transition/?id={entry_point}",
        None, "L NNN NNN NNN NNN NN NNN"),
    # -- Admin: candidate --------------------------------------------------------------------
    "candidate.action_view": ("/admin/candidate/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "candidate.ajax_lookup": ("/admin/candidate/ajax/lookup/?name=commune&query=Or",
        "L NNN NNN NNN NNN NN YNY", None),
    "candidate.ajax_update": ("/admin/candidate/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "candidate.create_view": ("/admin/candidate/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "candidate.delete_view": ("/admin/candidate/delete/?id={candidate}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "candidate.details_view": ("/admin/candidate/details/?id={candidate}",
        "L NNN NNN NNN NNN NN YNY", None),
    "candidate.edit_view": ("/admin/candidate/edit/?id={candidate}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "candidate.export": ("/admin/candidate/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "candidate.index_view": ("/admin/candidate/",
        "L NNN NNN NNN NNN NN YNY", None),
    "candidate.transition_view": ("/admin/candidate/transition/?id={candidate}",
        None, "L NNN NNN NNN NNN NN NNN"),
    # -- Admin: candidature ------------------------------------------------------------------
    "candidature.action_view": ("/admin/candidature/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "candidature.ajax_lookup": ("/admin/candidature/ajax/lookup/?name=candidate&query=Or",
        "L NNN NNN NNN NNN NN YNY", None),
    "candidature.ajax_update": ("/admin/candidature/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "candidature.create_view": ("/admin/candidature/new/",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "candidature.delete_view": ("/admin/candidature/delete/?id={candidature}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "candidature.details_view": ("/admin/candidature/details/?id={candidature}",
        "L NNN NNN NNN NNN NN YNY", None),
    "candidature.edit_view": ("/admin/candidature/edit/?id={candidature}",
        "L NNN NNN NNN NNN NN YNY", "L NNN NNN NNN NNN NN YNY"),
    "candidature.export": ("/admin/candidature/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "candidature.index_view": ("/admin/candidature/",
        "L NNN NNN NNN NNN NN YNY", None),
    "candidature.transition_view": ("/admin/candidature/transition/?id={candidature}",
        None, "L NNN NNN NNN NNN NN RNR"),
    # -- Admin: outboundmessage --------------------------------------------------------------
    "outboundmessage.action_view": ("/admin/outboundmessage/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "outboundmessage.ajax_lookup": ("/admin/outboundmessage/ajax/lookup/?name=aucun&query=Or",
        "L NNN NNN NNN NNN NN NNN", None),
    "outboundmessage.ajax_update": ("/admin/outboundmessage/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "outboundmessage.create_view": ("/admin/outboundmessage/new/",
        "L NNN NNN NNN NNN NN RNR", "L NNN NNN NNN NNN NN RNR"),
    "outboundmessage.delete_view": ("/admin/outboundmessage/delete/?id={message}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "outboundmessage.details_view": ("/admin/outboundmessage/details/?id={message}",
        "L NNN NNN NNN NNN NN YNY", None),
    "outboundmessage.edit_view": ("/admin/outboundmessage/edit/?id={message}",
        "L NNN NNN NNN NNN NN RNR", "L NNN NNN NNN NNN NN RNR"),
    "outboundmessage.export": ("/admin/outboundmessage/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "outboundmessage.index_view": ("/admin/outboundmessage/",
        "L NNN NNN NNN NNN NN YNY", None),
    "outboundmessage.transition_view": ("/admin/outboundmessage/transition/?id={message}",
        None, "L NNN NNN NNN NNN NN NNN"),
    # -- Admin: transitionlog ----------------------------------------------------------------
    "transitionlog.action_view": ("/admin/transitionlog/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "transitionlog.ajax_lookup": ("/admin/transitionlog/ajax/lookup/?name=aucun&query=Or",
        "L NNN NNN NNN NNN NN NNN", None),
    "transitionlog.ajax_update": ("/admin/transitionlog/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "transitionlog.create_view": ("/admin/transitionlog/new/",
        "L NNN NNN NNN NNN NN RNR", "L NNN NNN NNN NNN NN RNR"),
    "transitionlog.delete_view": ("/admin/transitionlog/delete/?id={transition_log}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "transitionlog.details_view": ("/admin/transitionlog/details/?id={transition_log}",
        "L NNN NNN NNN NNN NN YNY", None),
    "transitionlog.edit_view": ("/admin/transitionlog/edit/?id={transition_log}",
        "L NNN NNN NNN NNN NN RNR", "L NNN NNN NNN NNN NN RNR"),
    "transitionlog.export": ("/admin/transitionlog/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "transitionlog.index_view": ("/admin/transitionlog/",
        "L NNN NNN NNN NNN NN YNY", None),
    "transitionlog.transition_view": ("/admin/transitionlog/transition/?id={transition_log}",
        None, "L NNN NNN NNN NNN NN NNN"),
    # -- Admin: jobrun -----------------------------------------------------------------------
    "jobrun.action_view": ("/admin/jobrun/action/",
        None, "L NNN NNN NNN NNN NN yNy"),
    "jobrun.ajax_lookup": ("/admin/jobrun/ajax/lookup/?name=aucun&query=Or",
        "L NNN NNN NNN NNN NN NNN", None),
    "jobrun.ajax_update": ("/admin/jobrun/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "jobrun.create_view": ("/admin/jobrun/new/",
        "L NNN NNN NNN NNN NN RNR", "L NNN NNN NNN NNN NN RNR"),
    "jobrun.delete_view": ("/admin/jobrun/delete/?id={import_run}",
        None, "L NNN NNN NNN NNN NN yNy"),
    "jobrun.details_view": ("/admin/jobrun/details/?id={import_run}",
        "L NNN NNN NNN NNN NN YNY", None),
    "jobrun.edit_view": ("/admin/jobrun/edit/?id={import_run}",
        "L NNN NNN NNN NNN NN RNR", "L NNN NNN NNN NNN NN RNR"),
    "jobrun.export": ("/admin/jobrun/export/csv/",
        "L NNN NNN NNN NNN NN RNR", None),
    "jobrun.index_view": ("/admin/jobrun/",
        "L NNN NNN NNN NNN NN YNY", None),
    "jobrun.transition_view": ("/admin/jobrun/transition/?id={import_run}",
        None, "L NNN NNN NNN NNN NN NNN"),
    # -- Admin: rulesetversion ---------------------------------------------------------------
    "rulesetversion.action_view": ("/admin/rulesetversion/action/",
        None, "L NNN NNN NNN NNN NN yyy"),
    "rulesetversion.ajax_lookup": ("/admin/rulesetversion/ajax/lookup/?name=aucun&query=Or",
        "L NNN NNN NNN NNN NN NNN", None),
    "rulesetversion.ajax_update": ("/admin/rulesetversion/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "rulesetversion.create_view": ("/admin/rulesetversion/new/",
        "L NNN NNN NNN NNN NN RRR", "L NNN NNN NNN NNN NN RRR"),
    "rulesetversion.delete_view": ("/admin/rulesetversion/delete/?id={ruleset_version}",
        None, "L NNN NNN NNN NNN NN yyy"),
    "rulesetversion.details_view": ("/admin/rulesetversion/details/?id={ruleset_version}",
        "L NNN NNN NNN NNN NN YYY", None),
    "rulesetversion.edit_view": ("/admin/rulesetversion/edit/?id={ruleset_version}",
        "L NNN NNN NNN NNN NN RRR", "L NNN NNN NNN NNN NN RRR"),
    "rulesetversion.export": ("/admin/rulesetversion/export/csv/",
        "L NNN NNN NNN NNN NN RRR", None),
    "rulesetversion.index_view": ("/admin/rulesetversion/",
        "L NNN NNN NNN NNN NN YYY", None),
    "rulesetversion.transition_view": ("/admin/rulesetversion/transition/?id={ruleset_version}",
        None, "L NNN NNN NNN NNN NN NNN"),
    # -- Admin: personaldataaccess ---------------------------------------------------
    "personaldataaccess.action_view": ("/admin/personaldataaccess/action/",
        None, "L NNN NNN NNN NNN NN NNR"),
    "personaldataaccess.ajax_lookup": ("/admin/personaldataaccess/ajax/lookup/?name=aucun&query=Or",
        "L NNN NNN NNN NNN NN NNN", None),
    "personaldataaccess.ajax_update": ("/admin/personaldataaccess/ajax/update/",
        None, "L NNN NNN NNN NNN NN NNN"),
    "personaldataaccess.create_view": ("/admin/personaldataaccess/new/",
        "L NNN NNN NNN NNN NN NNR", "L NNN NNN NNN NNN NN NNR"),
    "personaldataaccess.delete_view": ("/admin/personaldataaccess/delete/?id={data_access}",
        None, "L NNN NNN NNN NNN NN NNR"),
    "personaldataaccess.details_view": ("/admin/personaldataaccess/details/?id={data_access}",
        "L NNN NNN NNN NNN NN NNY", None),
    "personaldataaccess.edit_view": ("/admin/personaldataaccess/edit/?id={data_access}",
        "L NNN NNN NNN NNN NN NNR", "L NNN NNN NNN NNN NN NNR"),
    "personaldataaccess.export": ("/admin/personaldataaccess/export/csv/",
        "L NNN NNN NNN NNN NN NNR", None),
    "personaldataaccess.index_view": ("/admin/personaldataaccess/",
        "L NNN NNN NNN NNN NN NNY", None),
    "personaldataaccess.transition_view": ("/admin/personaldataaccess/transition/?id={data_access}",
        None, "L NNN NNN NNN NNN NN NNN"),
}

# (endpoint, method, role): the defect of issue 11 that closes the hole.
KNOWN_HOLES: dict[tuple[str, str, str], str] = {}


def _endpoints(app) -> dict[str, set[str]]:
    methods: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        methods.setdefault(rule.endpoint, set()).update(rule.methods & {"GET", "POST"})
    return methods


def _answers(text: str | None) -> list[str] | None:
    if text is None:
        return None
    answers = text.replace(" ", "")
    assert len(answers) == len(ROLES), f"{text!r}: {len(answers)} answers for {len(ROLES)} roles"
    return list(answers)


def test_every_route_has_a_row(app):
    """A route nobody classified fails here; so does a row for a route that is gone, or a
    row whose methods differ from the route's."""
    routes = _endpoints(app)
    rows: dict[str, tuple] = {}
    for key, row in MATRIX.items():
        rows.setdefault(key.split("#")[0], row)
    missing = sorted(set(routes) - set(rows))
    assert not missing, "routes without a row in MATRIX: " + ", ".join(missing)
    stale = sorted(set(rows) - set(routes))
    assert not stale, "rows of MATRIX for routes that no longer exist: " + ", ".join(stale)
    for key, (url, get, post, *_) in MATRIX.items():
        declared = {m for m, answers in (("GET", get), ("POST", post)) if answers is not None}
        assert declared == routes[key.split("#")[0]], f"{key}: methods {declared}"
        assert set(_answers(get) or ()) <= set("LYNR"), f"{key}: GET answers {get!r}"
        assert set(_answers(post) or ()) <= set("LYNRy"), f"{key}: POST answers {post!r}"


def verdict(response, method: str) -> str:
    """The answer code (see the module docstring) of one response."""
    status = response.status_code
    location = response.headers.get("Location", "")
    if status in (301, 302, 303):
        if urlsplit(location).path == "/connexion":
            return "L"
        return "R" if urlsplit(location).path.startswith("/admin/") else "Y"
    if status in (403, 404):
        return "N"
    if status == 400 and "Formulaire expiré" in response.text:
        return "refused by CSRF"
    if status in (200, 201, 202, 204, 400, 409, 422):
        return "Y"
    return f"HTTP {status}"


def _request(app, clients, ids, role, method, key):
    url, _, _, *data = MATRIX[key]
    url = url.format(**ids)
    client, token = clients[role]
    if method == "GET":
        return url, fresh_context(app, client.get, url)
    form = {name: str(value).format(**ids, csrf_token=token)
            for name, value in (data[0] if data else {}).items()}
    form["csrf_token"] = token
    query = parse_qs(urlsplit(url).query)
    if "id" in query:  # Flask-Admin's delete and transition forms post the id
        form.setdefault("id", query["id"][0])
    return url, fresh_context(app, client.post, url, data=form)


def cells():
    """Every (key, method, role, expected answer), in the order they run: GETs, refused
    POSTs, allowed POSTs."""
    gets, refused, allowed = [], [], []
    for key, (_, get, post, *_) in MATRIX.items():
        for role, expected in zip(ROLES, _answers(get) or ()):
            gets.append((key, "GET", role, expected))
        for role, expected in zip(ROLES, _answers(post) or ()):
            if expected in "LN":
                refused.append((key, "POST", role, expected))
            elif expected in "YR":
                allowed.append((key, "POST", role, expected))
    return gets + refused + allowed


def test_access_matrix(app, db):
    """Each role gets, on each URL naming an object of structure X, the answer of MATRIX:
    Y's users never reach X's objects; X's users reach what their profile allows."""
    users, ids = build_world()
    clients = logged_in_clients(app, users)
    failures, holes_closed = [], []
    for key, method, role, expected in cells():
        url, response = _request(app, clients, ids, role, method, key)
        got = verdict(response, method)
        hole = KNOWN_HOLES.get((key, method, role))
        if hole and got == expected:
            holes_closed.append(f"{key} {method} {role} ({hole})")
        elif got != expected and not hole:
            where = response.headers.get("Location", "")
            failures.append(f"{method} {url} as {role} [{key}]: expected {expected}, "
                            f"got {got} (HTTP {response.status_code} {where})")
    assert not failures, f"{len(failures)} cells differ from MATRIX:\n" + "\n".join(failures)
    assert not holes_closed, "holes now closed, remove them from KNOWN_HOLES:\n" + \
        "\n".join(holes_closed)
