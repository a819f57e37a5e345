"""Accounts aggregate: structures, users, memberships and their profiles, the requests
that create them (account, affiliation, referencing), habilitations and delegations of
the "Mon Activité Formation" démarche, single-use tokens, the server-side login sessions
(``UserSession``) and the second factor of staff accounts (TOTP secret, recovery codes)."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask_login import UserMixin
from sqlalchemy import (Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, JSON,
                        String, Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backoffice import clock, passwords
from backoffice.extensions import db
from backoffice.models.base import LabelledEnum, TimestampMixin, UTCDateTime, in_check


class StructureKind(LabelledEnum):
    ORGANISME_FORMATION = "organisme_formation", "Organisme de formation"
    PRESCRIPTEUR = "prescripteur", "Organisme prescripteur"
    MIXTE = "mixte", "Organisme de formation et prescripteur"


class PrescriberType(LabelledEnum):
    ARMEE_DE_TERRE = "armee_de_terre", "Armée de terre"
    ARMEE_DE_L_AIR = "armee_de_l_air", "Armée de l'air"
    MARINE_NATIONALE = "marine_nationale", "Marine nationale"
    FRANCE_TRAVAIL = "france_travail", "France Travail (anciennement Pôle emploi)"
    GENDARMERIE = "gendarmerie", "Gendarmerie"
    MISSION_LOCALE = "mission_locale", "Mission locale"
    CAP_EMPLOI = "cap_emploi", "Cap emploi"
    AUTRE = "autre", "Autre"


class StaffRole(LabelledEnum):
    ADMIN = "admin", "Administrateur de la plateforme"
    MODERATEUR = "moderateur", "Modérateur Cap Métiers"
    RESPONSABLE_REGLES = "responsable_regles", "Responsable des règles"


class UserState(LabelledEnum):
    A_ACTIVER = "a_activer", "À activer"
    EN_ATTENTE_VALIDATION = "en_attente_validation", "En attente de validation"
    ACTIF = "actif", "Actif"
    REFUSE = "refuse", "Refusé"
    DESACTIVE = "desactive", "Désactivé"


class OfProfile(LabelledEnum):
    CATALOGUE = "gestionnaire_of_catalogue", "Gestionnaire OF catalogue formation"
    PREINSCRIPTION = "gestionnaire_of_preinscription", "Gestionnaire OF préinscription"
    GENERAL = "gestionnaire_of_general", "Gestionnaire OF général"


class PrescriberProfile(LabelledEnum):
    N1 = "prescripteur_n1", "Prescripteur niveau 1"
    N2 = "prescripteur_n2", "Prescripteur niveau 2"
    N3 = "prescripteur_n3", "Prescripteur niveau 3"


class ParcoursProProfile(LabelledEnum):
    EMPLOYEUR = "employeur", "Employeur"
    PRESTATAIRE = "prestataire", "Prestataire"


class RequestState(LabelledEnum):
    EN_ATTENTE = "en_attente", "En attente"
    VALIDEE = "validee", "Validée"
    REFUSEE = "refusee", "Refusée"


class HabilitationRole(LabelledEnum):
    GESTIONNAIRE = "gestionnaire", "Gestionnaire"
    DECLARANT = "declarant", "Déclarant"


class HabilitationState(LabelledEnum):
    DEMANDEE = "demandee", "Demandée"
    ACTIVE = "active", "Active"
    REFUSEE = "refusee", "Refusée"
    REVOQUEE = "revoquee", "Révoquée"


class DelegationState(LabelledEnum):
    PROPOSEE = "proposee", "Proposée (en attente d'acceptation)"
    ACTIVE = "active", "Active"
    REFUSEE = "refusee", "Refusée"
    REVOQUEE = "revoquee", "Révoquée"
    EXPIREE = "expiree", "Expirée"


class TokenPurpose(LabelledEnum):
    ACTIVATION = "activation", "Activation du compte"
    REINITIALISATION = "reinitialisation", "Réinitialisation du mot de passe"
    CHANGEMENT_EMAIL = "changement_email", "Confirmation d'une nouvelle adresse"
    CODE_HABILITATION = "code_habilitation", "Code d'activation d'habilitation"
    ACCEPTATION_DELEGATION = "acceptation_delegation", "Acceptation d'une délégation"


DEMARCHE_MON_ACTIVITE_FORMATION = "mon_activite_formation"


class Structure(TimestampMixin, db.Model):
    __tablename__ = "structure"
    __table_args__ = (
        CheckConstraint("length(siret) = 14", name="siret_14_chiffres"),
        CheckConstraint("siren = substr(siret, 1, 9)", name="siren_du_siret"),
        in_check("kind", StructureKind),
        in_check("prescriber_type", PrescriberType, nullable=True),
        Index("ix_structure_raison_sociale", "raison_sociale"),
        Index("ix_structure_departement", "departement"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    raison_sociale: Mapped[str] = mapped_column(String(200))
    sigle: Mapped[str | None] = mapped_column(String(60))
    siret: Mapped[str] = mapped_column(String(14), unique=True)
    siren: Mapped[str] = mapped_column(String(9), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    prescriber_type: Mapped[str | None] = mapped_column(String(30))
    adresse: Mapped[str | None] = mapped_column(String(250))
    code_postal: Mapped[str | None] = mapped_column(String(5))
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("commune.id"))
    departement: Mapped[str | None] = mapped_column(String(3))
    # The organisme formateur of its formations may have another SIREN.
    autorisee_autre_siren: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    commune = relationship("Commune")
    memberships = relationship("Membership", back_populates="structure")

    @property
    def is_of(self) -> bool:
        return self.kind in (StructureKind.ORGANISME_FORMATION, StructureKind.MIXTE)

    @property
    def is_prescripteur(self) -> bool:
        return self.kind in (StructureKind.PRESCRIPTEUR, StructureKind.MIXTE)

    def __str__(self) -> str:
        label = f"{self.raison_sociale} ({self.sigle})" if self.sigle else self.raison_sociale
        return f"{label} — {self.siret}"


class User(UserMixin, TimestampMixin, db.Model):
    __tablename__ = "user_account"
    __table_args__ = (
        in_check("state", UserState),
        in_check("staff_role", StaffRole, nullable=True),
        CheckConstraint("email = lower(email)", name="email_minuscules"),
        Index("ix_user_account_nom_prenom", "nom", "prenom"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    nom: Mapped[str] = mapped_column(String(100))
    prenom: Mapped[str] = mapped_column(String(100))
    fonction: Mapped[str | None] = mapped_column(String(150))
    telephone: Mapped[str | None] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(30), default=UserState.A_ACTIVER)
    staff_role: Mapped[str | None] = mapped_column(String(30))
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Second factor (TOTP, RFC 6238): the secret encrypted with Fernet (``crypto``), set at
    # enrolment and confirmed by a first code (``mfa_enabled_at``); the counter of the
    # last accepted code, so that a code cannot be used twice.
    totp_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    mfa_enabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    totp_last_counter: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)

    memberships = relationship("Membership", back_populates="user",
                               foreign_keys="Membership.user_id")

    __mapper_args__ = {"version_id_col": version}

    def set_password(self, password: str) -> None:
        """Stores the hash only; the policy is checked by the caller (services, forms)."""
        self.password_hash = passwords.hash_password(password)

    def check_password(self, password: str) -> bool:
        """Same cost with or without a stored hash (see ``passwords.verify_password``)."""
        return passwords.verify_password(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login: refused and deactivated accounts cannot log in
        return self.state in (UserState.ACTIF, UserState.EN_ATTENTE_VALIDATION)

    def get_id(self) -> str:
        # The session itself is checked server-side (``UserSession``, see services/sessions).
        return str(self.id)

    @property
    def mfa_enabled(self) -> bool:
        return self.mfa_enabled_at is not None

    @property
    def is_staff(self) -> bool:
        return self.staff_role is not None

    @property
    def full_name(self) -> str:
        return f"{self.prenom} {self.nom}"

    def __str__(self) -> str:
        return f"{self.prenom} {self.nom} <{self.email}>"


class Membership(TimestampMixin, db.Model):
    """A user's rights in one structure: one management profile per family at most.

    Each family is one column, so the database itself guarantees "one per family";
    the ParcoursPro ``beneficiaire`` profile is always present and cannot be removed.
    """

    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("user_id", "structure_id"),
        in_check("profile_of", OfProfile, nullable=True),
        in_check("profile_prescripteur", PrescriberProfile, nullable=True),
        in_check("profile_parcourspro", ParcoursProProfile, nullable=True),
        CheckConstraint("beneficiaire", name="beneficiaire_toujours"),
        Index("ix_membership_structure_id", "structure_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    structure_id: Mapped[int] = mapped_column(ForeignKey("structure.id", ondelete="CASCADE"))
    is_referent: Mapped[bool] = mapped_column(Boolean, default=False)
    profile_of: Mapped[str | None] = mapped_column(String(40))
    profile_prescripteur: Mapped[str | None] = mapped_column(String(40))
    profile_parcourspro: Mapped[str | None] = mapped_column(String(40))
    beneficiaire: Mapped[bool] = mapped_column(Boolean, default=True)

    user = relationship("User", back_populates="memberships", foreign_keys=[user_id])
    structure = relationship("Structure", back_populates="memberships")

    @property
    def profiles(self) -> list[str]:
        values = [self.profile_of, self.profile_prescripteur, self.profile_parcourspro]
        return [v for v in values if v] + (["beneficiaire"] if self.beneficiaire else [])

    @property
    def has_management_profile(self) -> bool:
        return bool(self.profile_of or self.profile_prescripteur or self.profile_parcourspro)

    def __str__(self) -> str:
        return f"{self.user_id} × {self.structure_id}"


class AccountRequest(TimestampMixin, db.Model):
    """A new user asks to join a structure (first one → moderator, then → référent)."""

    __tablename__ = "account_request"
    __table_args__ = (
        in_check("state", RequestState),
        Index("ix_account_request_structure_state", "structure_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"),
                                         index=True)
    structure_id: Mapped[int] = mapped_column(ForeignKey("structure.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(20), default=RequestState.EN_ATTENTE)
    message: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_comment: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)

    user = relationship("User", foreign_keys=[user_id])
    structure = relationship("Structure")
    decided_by = relationship("User", foreign_keys=[decided_by_id])

    __mapper_args__ = {"version_id_col": version}


class AffiliationRequest(TimestampMixin, db.Model):
    """An active user asks to be attached to one more structure."""

    __tablename__ = "affiliation_request"
    __table_args__ = (
        in_check("state", RequestState),
        Index("ix_affiliation_request_structure_state", "structure_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"),
                                         index=True)
    structure_id: Mapped[int] = mapped_column(ForeignKey("structure.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(20), default=RequestState.EN_ATTENTE)
    message: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_comment: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)

    user = relationship("User", foreign_keys=[user_id])
    structure = relationship("Structure")
    decided_by = relationship("User", foreign_keys=[decided_by_id])

    __mapper_args__ = {"version_id_col": version}


class ReferencingRequest(TimestampMixin, db.Model):
    """"Ma structure n'est pas dans la liste": a structure to create, moderated."""

    __tablename__ = "referencing_request"
    __table_args__ = (
        in_check("state", RequestState),
        in_check("kind", StructureKind),
        in_check("prescriber_type", PrescriberType, nullable=True),
        CheckConstraint("length(siret) = 14", name="siret_14_chiffres"),
        Index("ix_referencing_request_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    requester_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True)
    raison_sociale: Mapped[str] = mapped_column(String(200))
    sigle: Mapped[str | None] = mapped_column(String(60))
    siret: Mapped[str] = mapped_column(String(14), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    prescriber_type: Mapped[str | None] = mapped_column(String(30))
    adresse: Mapped[str | None] = mapped_column(String(250))
    code_postal: Mapped[str | None] = mapped_column(String(5))
    commune_nom: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), default=RequestState.EN_ATTENTE)
    structure_id: Mapped[int | None] = mapped_column(ForeignKey("structure.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_comment: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)

    requester = relationship("User", foreign_keys=[requester_id])
    structure = relationship("Structure")
    decided_by = relationship("User", foreign_keys=[decided_by_id])

    __mapper_args__ = {"version_id_col": version}


class Habilitation(TimestampMixin, db.Model):
    """A user's role on a SIRET within a démarche (``gestionnaire`` or ``declarant``)."""

    __tablename__ = "habilitation"
    __table_args__ = (
        UniqueConstraint("demarche", "siret", "user_id"),
        in_check("role", HabilitationRole),
        in_check("state", HabilitationState),
        CheckConstraint("length(siret) = 14", name="siret_14_chiffres"),
        Index("ix_habilitation_siret_state", "siret", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    demarche: Mapped[str] = mapped_column(String(40), default=DEMARCHE_MON_ACTIVITE_FORMATION)
    siret: Mapped[str] = mapped_column(String(14))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"),
                                         index=True)
    role: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default=HabilitationState.DEMANDEE)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    user = relationship("User", foreign_keys=[user_id])
    decided_by = relationship("User", foreign_keys=[decided_by_id])

    __mapper_args__ = {"version_id_col": version}


class Delegation(TimestampMixin, db.Model):
    """A gestionnaire delegates a role to a third party (tiers) until an optional end date."""

    __tablename__ = "delegation"
    __table_args__ = (
        in_check("role", HabilitationRole),
        in_check("state", DelegationState),
        CheckConstraint("length(siret_etablissement) = 14", name="siret_etab_14_chiffres"),
        CheckConstraint("length(siret_tiers) = 14", name="siret_tiers_14_chiffres"),
        Index("ix_delegation_state_end_date", "state", "end_date"),
        Index("ix_delegation_siret_etablissement", "siret_etablissement"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    demarche: Mapped[str] = mapped_column(String(40), default=DEMARCHE_MON_ACTIVITE_FORMATION)
    granted_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    siret_etablissement: Mapped[str] = mapped_column(String(14))
    siret_tiers: Mapped[str] = mapped_column(String(14))
    email_tiers: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(20))
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(20), default=DelegationState.PROPOSEE)
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    granted_by = relationship("User", foreign_keys=[granted_by_id])
    accepted_by = relationship("User", foreign_keys=[accepted_by_id])

    __mapper_args__ = {"version_id_col": version}


class Token(db.Model):
    """A single-use secret sent by e-mail (or handed out); only its SHA-256 is stored."""

    __tablename__ = "token"
    __table_args__ = (
        in_check("purpose", TokenPurpose),
        Index("ix_token_expires_at_used_at", "expires_at", "used_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(30))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user = relationship("User")

    @staticmethod
    def hash(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    @classmethod
    def issue(cls, *, purpose: str, lifetime: dt.timedelta, user=None,
              payload: dict | None = None) -> tuple["Token", str]:
        """A new token and its clear secret (to put in the e-mail, never stored)."""
        secret = secrets.token_urlsafe(32)
        token = cls(purpose=purpose, token_hash=cls.hash(secret), user=user,
                    payload=payload or {}, created_at=clock.now(),
                    expires_at=clock.now() + lifetime)
        return token, secret

    @property
    def is_usable(self) -> bool:
        return self.used_at is None and self.expires_at > clock.now()


class RateLimit(db.Model):
    """Attempts counted per (scope, key) in a fixed window: logins per account (the e-mail
    typed) and per client address, e-mails asked from the public forms per address and per
    recipient. ``backoffice.rate_limits`` counts with one atomic UPSERT."""

    __tablename__ = "rate_limit"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(254))
    count: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class SessionEndReason(LabelledEnum):
    DECONNEXION = "deconnexion", "Déconnexion"
    MOT_DE_PASSE = "mot_de_passe", "Mot de passe changé"
    AUTRES_SESSIONS = "autres_sessions", "Fermée depuis une autre session"
    DESACTIVATION = "desactivation", "Compte désactivé"
    INACTIVITE = "inactivite", "Inactivité"
    DUREE_MAXIMALE = "duree_maximale", "Durée maximale atteinte"
    ECHEC_MFA = "echec_mfa", "Trop de codes erronés"


class UserSession(db.Model):
    """One login: the Flask session cookie holds a random key, only its SHA-256 is stored.
    A session ends server-side (``ended_at``): a cookie of an ended session grants nothing.
    For staff, the session grants nothing either until the second factor passed."""

    __tablename__ = "user_session"
    __table_args__ = (
        in_check("end_reason", SessionEndReason, nullable=True),
        Index("ix_user_session_user_id_ended_at", "user_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(30))
    client_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    mfa_passed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    mfa_failures: Mapped[int] = mapped_column(Integer, default=0)

    user = relationship("User")

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()


class MfaRecoveryCode(db.Model):
    """A single-use recovery code of a staff account (usable instead of a TOTP code);
    only its SHA-256 is stored, the clear code is shown once at enrolment."""

    __tablename__ = "mfa_recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"),
                                         index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user = relationship("User")
