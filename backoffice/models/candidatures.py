"""Candidatures aggregate: the candidates' directory and their candidatures."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, JSON,
                        String, Text, event)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backoffice import crypto
from backoffice.extensions import db
from backoffice.models.base import LabelledEnum, TimestampMixin, UTCDateTime, in_check
from backoffice.text import name_key


class Civilite(LabelledEnum):
    MADAME = "Mme", "Madame"
    MONSIEUR = "M", "Monsieur"


class CandidatureState(LabelledEnum):
    BROUILLON = "brouillon", "Brouillon"
    EN_ATTENTE_VALIDATION = "en_attente_validation", "En attente de validation"
    EN_ATTENTE_AVIS = "en_attente_avis", "Validée, en attente d'avis"
    RETENUE = "retenue", "Retenue"
    NON_RETENUE = "non_retenue", "Non retenue"
    REFUS_SESSION_COMPLETE = "refus_session_complete", "Refus : session complète"
    REFUS_SESSION_ANNULEE = "refus_session_annulee", "Refus : session annulée"
    ANNULEE = "annulee", "Annulée"
    AVIS_NON_TRANSMIS = "avis_non_transmis", "Avis non transmis"
    CORBEILLE = "corbeille", "Corbeille"


# A candidature is "live" while it can still lead to an entry in training.
LIVE_CANDIDATURE_STATES = (
    CandidatureState.BROUILLON, CandidatureState.EN_ATTENTE_VALIDATION,
    CandidatureState.EN_ATTENTE_AVIS, CandidatureState.RETENUE,
)


class FollowUpStep(LabelledEnum):
    """Afpa-style follow-up of a prescription, in six steps."""

    PRISE_EN_CHARGE = "en_attente_prise_en_charge", "En attente de prise en charge"
    ENTRETIEN = "invite_entretien", "Invité en entretien"
    PARCOURS = "elaboration_parcours", "Élaboration du parcours"
    ENTREPRISE = "recherche_entreprise", "Recherche d'entreprise"
    FINANCEMENT = "validation_financement", "Validation du financement"
    INSCRIPTION = "inscription_validee", "Inscription validée"


class Candidate(TimestampMixin, db.Model):
    __tablename__ = "candidate"
    __table_args__ = (
        in_check("civilite", Civilite, nullable=True),
        Index("ix_candidate_identity", "nom_normalise", "prenom_normalise", "date_naissance"),
        Index("ix_candidate_identifiant_france_travail", "identifiant_france_travail"),
        Index("ix_candidate_date_naissance", "date_naissance"),
        Index("ix_candidate_last_activity_at", "last_activity_at"),
        # Exact search in the admin list (backoffice/admin/candidatures.py).
        Index("ix_candidate_email", "email"),
        Index("ix_candidate_identifiant_regional", "identifiant_regional"),
        Index("ix_candidate_nom", "nom", "id"),  # the list sorted by name, page by page
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    civilite: Mapped[str | None] = mapped_column(String(3))
    nom: Mapped[str] = mapped_column(String(100))
    prenom: Mapped[str] = mapped_column(String(100))
    nom_normalise: Mapped[str] = mapped_column(String(100))
    prenom_normalise: Mapped[str] = mapped_column(String(100))
    date_naissance: Mapped[dt.date] = mapped_column(Date)
    email: Mapped[str | None] = mapped_column(String(254))
    telephone: Mapped[str | None] = mapped_column(String(20))
    code_postal: Mapped[str | None] = mapped_column(String(5))
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("commune.id"))
    identifiant_france_travail: Mapped[str | None] = mapped_column(String(20))
    identifiant_regional: Mapped[str | None] = mapped_column(String(30))
    inscrit_france_travail: Mapped[bool] = mapped_column(Boolean, default=False)
    # The NIR, encrypted (Fernet); read and write it through ``Candidate.nir``.
    nir_chiffre: Mapped[str | None] = mapped_column(Text)
    created_by_structure_id: Mapped[int | None] = mapped_column(
        ForeignKey("structure.id", ondelete="SET NULL"))
    last_activity_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    anonymised_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    extra: Mapped[dict] = mapped_column(JSON, default=dict)

    commune = relationship("Commune")
    created_by_structure = relationship("Structure")

    @property
    def nir(self) -> str | None:
        return crypto.decrypt(self.nir_chiffre)

    @nir.setter
    def nir(self, value: str | None) -> None:
        self.nir_chiffre = crypto.encrypt(value)

    def __str__(self) -> str:
        return f"{self.nom.upper()} {self.prenom} ({self.date_naissance:%d/%m/%Y})"


@event.listens_for(Candidate.nom, "set", retval=True)
def _fill_nom_key(target, value, oldvalue, initiator):
    target.nom_normalise = name_key(value)
    return value


@event.listens_for(Candidate.prenom, "set", retval=True)
def _fill_prenom_key(target, value, oldvalue, initiator):
    target.prenom_normalise = name_key(value)
    return value


class Candidature(TimestampMixin, db.Model):
    __tablename__ = "candidature"
    __table_args__ = (
        in_check("state", CandidatureState),
        in_check("etape_suivi", FollowUpStep, nullable=True),
        CheckConstraint("annee_cursus IS NULL OR annee_cursus BETWEEN 1 AND 5",
                        name="annee_cursus_1_a_5"),
        CheckConstraint("consentement OR state IN ('brouillon', 'corbeille')",
                        name="consentement_obligatoire"),
        Index("ix_candidature_candidate_state", "candidate_id", "state"),
        Index("ix_candidature_session_state", "session_id", "state"),
        Index("ix_candidature_structure_state", "prescriber_structure_id", "state"),
        Index("ix_candidature_prescriber_user_id", "prescriber_user_id"),
        Index("ix_candidature_state_updated_at", "state", "updated_at"),
        # The admin list sorted by date, page by page: (date, id) is its order.
        Index("ix_candidature_submitted_at", "submitted_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(12), unique=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id", ondelete="CASCADE"))
    session_id: Mapped[int] = mapped_column(ForeignKey("session.id"))
    entry_point_id: Mapped[int | None] = mapped_column(
        ForeignKey("entry_point.id", ondelete="SET NULL"))
    prescriber_user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    prescriber_structure_id: Mapped[int] = mapped_column(ForeignKey("structure.id"))
    positionneur: Mapped[str | None] = mapped_column(String(150))
    state: Mapped[str] = mapped_column(String(30), default=CandidatureState.BROUILLON)
    etape_suivi: Mapped[str | None] = mapped_column(String(40))
    parcours_anterieur: Mapped[str | None] = mapped_column(Text)
    raisons_choix: Mapped[str | None] = mapped_column(Text)
    suites_parcours: Mapped[str | None] = mapped_column(Text)
    annee_cursus: Mapped[int | None] = mapped_column(Integer)
    envoi_recapitulatif: Mapped[bool] = mapped_column(Boolean, default=False)
    consentement: Mapped[bool] = mapped_column(Boolean, default=False)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    validated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    avis_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    avis_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    avis_motif: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)

    candidate = relationship("Candidate")
    session = relationship("Session")
    entry_point = relationship("EntryPoint")
    prescriber_user = relationship("User", foreign_keys=[prescriber_user_id])
    prescriber_structure = relationship("Structure")
    avis_by = relationship("User", foreign_keys=[avis_by_id])

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        return f"Candidature {self.reference}"
