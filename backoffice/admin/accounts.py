"""Admin screens of the accounts aggregate."""
from __future__ import annotations

from flask import flash
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_login import current_user
from sqlalchemy import select
from wtforms import PasswordField, SelectField
from wtforms.validators import Email, Length, Optional, ValidationError

from backoffice.admin.base import (ReadOnlyModelView, SafeAjaxLoader, SecureModelView, has_role,
                                   state_filter, validate_siret)
from backoffice.models import (AccountRequest, AffiliationRequest, Delegation, DelegationState,
                               Habilitation, HabilitationRole, HabilitationState, Membership,
                               OfProfile, ParcoursProProfile, PrescriberProfile, PrescriberType,
                               ReferencingRequest, RequestState, StaffRole, Structure,
                               StructureKind, Token, TokenPurpose, User, UserState)
from backoffice.models import MfaRecoveryCode, SessionEndReason, UserSession
from backoffice.extensions import db
from backoffice.models.reference import DEPARTEMENTS_NOUVELLE_AQUITAINE
from backoffice.passwords import PasswordPolicy

CATEGORY = "Comptes et structures"

STRUCTURE_LOOKUP = {"fields": ("raison_sociale", "sigle", "siret"), "page_size": 10,
                    "placeholder": "Raison sociale, sigle ou SIRET"}
USER_LOOKUP = {"fields": ("nom", "prenom", "email"), "page_size": 10,
               "placeholder": "Nom, prénom ou courriel"}


# -- staff accounts are admins' business ------------------------------------------------------
# A moderator neither sees nor attaches a staff account (admin, moderateur, responsable_regles):
# not in the user screens, not in the memberships, requests and habilitations that name a
# user, not through the AJAX user lookup of any form. Admins see everything.
def sees_staff_accounts() -> bool:
    return has_role(StaffRole.ADMIN)


def non_staff_user_ids():
    return select(User.id).where(User.staff_role.is_(None))


class UserLoader(SafeAjaxLoader):
    """The AJAX user lookup of the admin forms; for a moderator, without staff accounts
    (neither listed nor accepted when an id is posted)."""

    def __init__(self, name: str):
        super().__init__(name, db.session, User, **USER_LOOKUP)

    def get_query(self):
        query = super().get_query()
        return query if sees_staff_accounts() else query.filter(User.staff_role.is_(None))

    def get_one(self, pk):
        if super().get_one(pk) is None:  # not an id, or no such user
            return None
        return self.get_query().filter(User.id == int(pk)).one_or_none()


class HideStaffUsersMixin:
    """Rows naming a user (``user_column``): a moderator does not get those of staff
    accounts, in the list, its count, the detail/edit pages (``get_one``)."""

    user_column = "user_id"

    def _hide_staff(self, query):
        if sees_staff_accounts():
            return query
        return query.filter(getattr(self.model, self.user_column).in_(non_staff_user_ids()))

    def get_query(self):
        return self._hide_staff(super().get_query())

    def get_count_query(self):
        return self._hide_staff(super().get_count_query())

    def get_one(self, id):
        if not str(id).isdigit():
            return None
        return self._hide_staff(super().get_query()).filter(
            self.model.id == int(id)).one_or_none()
DEPARTEMENT_CHOICES = sorted(DEPARTEMENTS_NOUVELLE_AQUITAINE.items())
LOWER = [lambda v: v.strip().lower() if v else v]


class StructureView(SecureModelView):
    column_list = ("raison_sociale", "sigle", "siret", "kind", "prescriber_type",
                   "departement", "active", "created_at")
    column_searchable_list = ("raison_sociale", "sigle", "siret")
    column_filters = (state_filter(Structure.kind, StructureKind, "Type de structure"),
                      FilterEqual(Structure.departement, "Département",
                                  options=DEPARTEMENT_CHOICES),
                      state_filter(Structure.prescriber_type, PrescriberType,
                                   "Type d'organisme prescripteur"),
                      "active")
    enum_fields = {"kind": (StructureKind, "Type"),
                   "prescriber_type": (PrescriberType, "Type d'organisme prescripteur")}
    column_labels = {"raison_sociale": "Raison sociale", "sigle": "Sigle",
                     "autorisee_autre_siren": "Organisme formateur d'un autre SIREN autorisé"}
    form_columns = ("raison_sociale", "sigle", "siret", "kind", "prescriber_type", "adresse",
                    "code_postal", "commune", "departement", "autorisee_autre_siren", "active")
    form_overrides = {"departement": SelectField}
    form_args = {
        "departement": {"label": "Département", "coerce": lambda v: v or None,
                        "choices": [("", "—")] + DEPARTEMENT_CHOICES},
        "siret": {"validators": [validate_siret]},
        "raison_sociale": {"validators": [Length(max=200, message="200 caractères au plus.")]},
    }
    form_ajax_refs = {"commune": {"fields": ("nom", "code_postal", "code_insee"),
                                  "page_size": 10, "placeholder": "Nom ou code postal"}}

    def on_model_change(self, form, model, is_created):
        model.siren = model.siret[:9]


class UserView(HideStaffUsersMixin, SecureModelView):
    column_list = ("nom", "prenom", "email", "state", "staff_role", "last_login_at", "created_at")
    column_searchable_list = ("nom", "prenom", "email")
    column_filters = (state_filter(User.state, UserState),
                      state_filter(User.staff_role, StaffRole, "Rôle d'équipe"))
    enum_fields = {"state": (UserState, "État"), "staff_role": (StaffRole, "Rôle d'équipe")}
    column_labels = {"last_login_at": "Dernière connexion",
                     "mfa_enabled_at": "Double authentification activée le"}
    column_details_exclude_list = ("password_hash", "version", "totp_secret_encrypted",
                                   "totp_last_counter")
    form_columns = ("email", "nom", "prenom", "fonction", "telephone", "state", "staff_role",
                    "new_password")
    form_extra_fields = {"new_password": PasswordField(
        "Nouveau mot de passe", validators=[Optional(), PasswordPolicy()],
        description="Laisser vide pour conserver le mot de passe actuel. 12 caractères au "
                    "moins, pas un mot de passe courant.")}
    form_args = {"email": {"validators": [Email("Cette adresse électronique n'est pas valide.")],
                           "filters": LOWER}}

    # Staff accounts are managed by admins only: a moderator neither sees nor edits them.
    user_column = "id"

    def on_model_change(self, form, model, is_created):
        if form.staff_role.data and not has_role(StaffRole.ADMIN):
            raise ValidationError("Seul un administrateur peut attribuer un rôle d'équipe.")
        password = getattr(form, "new_password", None)
        if password is not None and password.data:
            from backoffice.services import accounts as account_service

            account_service.set_password(model, password.data)

    # Setting someone's password is taking over their account: admins only (a moderator
    # points the user to « Mot de passe oublié »).
    def create_form(self, obj=None):
        return self._without_password_for_moderators(super().create_form(obj))

    def edit_form(self, obj=None):
        return self._without_password_for_moderators(super().edit_form(obj))

    @staticmethod
    def _without_password_for_moderators(form):
        if not has_role(StaffRole.ADMIN):
            del form.new_password
        return form

    def on_form_prefill(self, form, id):
        if getattr(form, "new_password", None) is not None:  # a removed field is None
            form.new_password.data = ""

    @action("reinitialiser_mfa", "Réinitialiser la double authentification",
            "Réinitialiser la double authentification des comptes sélectionnés ? Ils "
            "devront l'activer de nouveau à leur prochaine connexion.")
    def action_reset_mfa(self, ids):
        from backoffice.services import mfa, sessions

        if not has_role(StaffRole.ADMIN):
            flash("Seul un administrateur peut réinitialiser la double authentification.",
                  "error")
            return
        users = list(self.get_query().filter(
            User.id.in_([int(i) for i in ids if str(i).isdigit()])))
        for user in users:
            mfa.reset(user)
            sessions.end_all(user, SessionEndReason.AUTRES_SESSIONS)
        db.session.commit()
        flash(f"{len(users)} compte(s) : double authentification réinitialisée.", "success")


class MembershipView(HideStaffUsersMixin, SecureModelView):
    column_list = ("user", "structure", "is_referent", "profile_of", "profile_prescripteur",
                   "profile_parcourspro", "created_at")
    column_searchable_list = ("user.nom", "user.email", "structure.raison_sociale",
                              "structure.siret")
    column_filters = ("is_referent",
                      state_filter(Membership.profile_of, OfProfile, "Profil OF"),
                      state_filter(Membership.profile_prescripteur, PrescriberProfile,
                                   "Profil prescripteur"))
    enum_fields = {"profile_of": (OfProfile, "Profil OF"),
                   "profile_prescripteur": (PrescriberProfile, "Profil prescripteur"),
                   "profile_parcourspro": (ParcoursProProfile, "Profil ParcoursPro")}
    column_labels = {"is_referent": "Référent", "beneficiaire": "Bénéficiaire ParcoursPro",
                     "user.nom": "Nom", "user.email": "Courriel",
                     "structure.raison_sociale": "Structure", "structure.siret": "SIRET"}
    form_columns = ("user", "structure", "is_referent", "profile_of", "profile_prescripteur",
                    "profile_parcourspro")
    form_ajax_refs = {"user": UserLoader("user"), "structure": STRUCTURE_LOOKUP}


class _RequestView(HideStaffUsersMixin, SecureModelView):
    column_list = ("user", "structure", "state", "created_at", "decided_by", "decided_at")
    column_searchable_list = ("user.nom", "user.email", "structure.raison_sociale",
                              "structure.siret")
    column_labels = {"user.nom": "Nom", "user.email": "Courriel",
                     "structure.raison_sociale": "Structure", "structure.siret": "SIRET"}
    enum_fields = {"state": (RequestState, "État")}
    form_columns = ("user", "structure", "state", "message", "decision_comment")
    form_ajax_refs = {"user": UserLoader("user"), "structure": STRUCTURE_LOOKUP}


class AccountRequestView(_RequestView):
    column_filters = (state_filter(AccountRequest.state, RequestState), "created_at")


class AffiliationRequestView(_RequestView):
    column_filters = (state_filter(AffiliationRequest.state, RequestState), "created_at")


class ReferencingRequestView(SecureModelView):
    column_list = ("raison_sociale", "siret", "kind", "requester", "state", "created_at")
    column_searchable_list = ("raison_sociale", "sigle", "siret")
    column_filters = (state_filter(ReferencingRequest.state, RequestState), "created_at")
    enum_fields = {"state": (RequestState, "État"), "kind": (StructureKind, "Type"),
                   "prescriber_type": (PrescriberType, "Type d'organisme prescripteur")}
    column_labels = {"raison_sociale": "Raison sociale", "sigle": "Sigle",
                     "requester": "Demandeur", "commune_nom": "Commune"}
    form_columns = ("raison_sociale", "sigle", "siret", "kind", "prescriber_type", "adresse",
                    "code_postal", "commune_nom", "requester", "state", "decision_comment")
    form_args = {"siret": {"validators": [validate_siret]}}
    form_ajax_refs = {"requester": UserLoader("requester")}

    def fire_transition(self, model, name, *, reason):
        """Validating creates the structure: the service does it (and the transition)."""
        from backoffice.services import accounts

        accounts.decide_referencing(model, actor=current_user, accept=name == "valider",
                                    reason=reason)


class HabilitationView(HideStaffUsersMixin, SecureModelView):
    column_list = ("siret", "user", "role", "state", "demarche", "created_at")
    column_searchable_list = ("siret", "user.nom", "user.email")
    column_filters = (state_filter(Habilitation.role, HabilitationRole, "Rôle"),
                      state_filter(Habilitation.state, HabilitationState))
    enum_fields = {"state": (HabilitationState, "État"), "role": (HabilitationRole, "Rôle")}
    column_labels = {"demarche": "Démarche", "user.nom": "Nom", "user.email": "Courriel"}
    form_columns = ("siret", "user", "role", "state")
    form_args = {"siret": {"validators": [validate_siret]}}
    form_ajax_refs = {"user": UserLoader("user")}


class DelegationView(SecureModelView):
    column_list = ("siret_etablissement", "siret_tiers", "email_tiers", "role", "state",
                   "end_date", "granted_by", "created_at")
    column_searchable_list = ("siret_etablissement", "siret_tiers", "email_tiers")
    column_filters = (state_filter(Delegation.state, DelegationState),
                      state_filter(Delegation.role, HabilitationRole, "Rôle"), "end_date")
    enum_fields = {"state": (DelegationState, "État"), "role": (HabilitationRole, "Rôle")}
    column_labels = {"siret_etablissement": "SIRET de l'établissement",
                     "siret_tiers": "SIRET du tiers", "email_tiers": "Courriel du tiers",
                     "end_date": "Date de fin", "granted_by": "Délégué par",
                     "accepted_by": "Accepté par", "accepted_at": "Accepté le",
                     "ended_at": "Terminé le", "demarche": "Démarche"}
    form_columns = ("siret_etablissement", "siret_tiers", "email_tiers", "role", "end_date",
                    "granted_by", "state")
    form_args = {"siret_etablissement": {"validators": [validate_siret]},
                 "siret_tiers": {"validators": [validate_siret]},
                 "email_tiers": {"validators": [Email("Adresse électronique non valide.")],
                                 "filters": LOWER}}
    form_ajax_refs = {"granted_by": UserLoader("granted_by")}


class TokenView(ReadOnlyModelView):
    """Single-use links: only their purpose, owner and dates; the secret is never stored."""

    roles = (StaffRole.ADMIN,)
    can_delete = True
    column_list = ("purpose", "user", "created_at", "expires_at", "used_at")
    column_details_list = column_list
    column_filters = (state_filter(Token.purpose, TokenPurpose, "Usage"), "expires_at")
    enum_fields = {"purpose": (TokenPurpose, "Usage")}
    column_labels = {"expires_at": "Expire le", "used_at": "Utilisé le"}


class RateLimitView(ReadOnlyModelView):
    """Login attempts and public-form e-mails counted per account, address or recipient
    (``backoffice.rate_limits``); deleting a row lifts the limit at once."""

    roles = (StaffRole.ADMIN,)
    can_delete = True
    column_list = ("scope", "key", "count", "window_start")
    column_details_list = column_list
    column_searchable_list = ("key",)
    column_labels = {"scope": "Portée", "key": "Compte, adresse ou destinataire",
                     "count": "Tentatives", "window_start": "Depuis le"}


class UserSessionView(ReadOnlyModelView):
    """Login sessions (server-side): who, since when, last activity, how it ended. The
    key itself is never stored (only its SHA-256, not shown). « Fermer » ends them."""

    roles = (StaffRole.ADMIN,)
    column_list = ("user", "created_at", "last_seen_at", "ended_at", "end_reason",
                   "client_address", "mfa_passed_at")
    column_details_list = column_list + ("user_agent", "mfa_failures")
    column_filters = (state_filter(UserSession.end_reason, SessionEndReason, "Fin"),
                      "created_at", "ended_at")
    column_searchable_list = ("user.email", "client_address")
    enum_fields = {"end_reason": (SessionEndReason, "Fin")}
    column_default_sort = ("last_seen_at", True)
    column_labels = {"user": "Utilisateur", "last_seen_at": "Dernière activité",
                     "ended_at": "Terminée le", "client_address": "Adresse",
                     "user_agent": "Navigateur", "mfa_passed_at": "Second facteur validé le",
                     "mfa_failures": "Codes erronés", "user.email": "Courriel"}

    @action("fermer", "Fermer", "Fermer les sessions sélectionnées ?")
    def action_close(self, ids):
        from backoffice.services import sessions

        rows = db.session.scalars(select(UserSession).where(
            UserSession.id.in_([int(i) for i in ids if str(i).isdigit()])))
        for row in rows:
            sessions.end(row, SessionEndReason.AUTRES_SESSIONS)
        db.session.commit()
        flash("Sessions fermées.", "success")


class MfaRecoveryCodeView(ReadOnlyModelView):
    """Recovery codes of the second factor: only whether each is used (the code itself
    is never stored, only its SHA-256, not shown)."""

    roles = (StaffRole.ADMIN,)
    column_list = ("user", "created_at", "used_at")
    column_details_list = column_list
    column_labels = {"user": "Utilisateur", "used_at": "Utilisé le"}


def register(admin) -> None:
    admin.add_view(StructureView(Structure, "Structures", CATEGORY))
    admin.add_view(UserView(User, "Utilisateurs", CATEGORY))
    admin.add_view(MembershipView(Membership, "Rattachements et profils", CATEGORY))
    admin.add_view(AccountRequestView(AccountRequest, "Demandes de compte", CATEGORY))
    admin.add_view(AffiliationRequestView(AffiliationRequest, "Demandes d'affiliation",
                                          CATEGORY))
    admin.add_view(ReferencingRequestView(ReferencingRequest, "Demandes de référencement",
                                          CATEGORY))
    admin.add_view(HabilitationView(Habilitation, "Habilitations", CATEGORY))
    admin.add_view(DelegationView(Delegation, "Délégations", CATEGORY))
    admin.add_view(TokenView(Token, "Liens à usage unique", CATEGORY))
    from backoffice.models import RateLimit
    admin.add_view(RateLimitView(RateLimit, "Tentatives et limites", CATEGORY))
    admin.add_view(UserSessionView(UserSession, "Sessions de connexion", CATEGORY))
    admin.add_view(MfaRecoveryCodeView(MfaRecoveryCode, "Codes de secours", CATEGORY))
