"""Catalogue aggregate: formations (actions de formation), their sessions and the entry
points of HSP sessions."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, JSON,
                        String, Text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backoffice.extensions import db
from backoffice.models.base import LabelledEnum, TimestampMixin, UTCDateTime, in_check


class FormationState(LabelledEnum):
    BROUILLON = "brouillon", "Brouillon"
    EN_ATTENTE_MODERATION = "en_attente_moderation", "En attente de modération"
    VALIDEE = "validee", "Validée (publiée)"
    COMPLEMENT_DEMANDE = "complement_demande", "Complément demandé"
    MODIFIEE = "modifiee", "Modifiée (en attente de modération)"
    ARCHIVEE = "archivee", "Archivée"
    SUPPRIMEE = "supprimee", "Supprimée"


class Dispositif(LabelledEnum):
    HSP = "HSP", "Habilitation de service public (HSP)"
    CONVENTIONNE_REGION = "conventionne_region", "Conventionné Région"
    NON_CONVENTIONNE = "non_conventionne", "Non conventionné"
    APPRENTISSAGE = "apprentissage", "Apprentissage"


class SessionState(LabelledEnum):
    ACTIVE = "active", "Active"
    ANNULEE = "annulee", "Annulée"
    SUPPRIMEE = "supprimee", "Supprimée"


class EntryMode(LabelledEnum):
    DATE_FIXE = "date_fixe", "Entrée à date fixe"
    SEQUENCEE = "entrees_sorties_sequencees", "Entrées/sorties séquencées"
    PERMANENTE = "permanente", "Entrées/sorties permanentes"


class Formation(TimestampMixin, db.Model):
    __tablename__ = "formation"
    __table_args__ = (
        in_check("state", FormationState),
        in_check("dispositif", Dispositif, nullable=True),
        CheckConstraint("length(reference) = 12", name="reference_12_chiffres"),
        CheckConstraint("intitule IS NULL OR length(intitule) <= 300", name="intitule_300"),
        Index("ix_formation_structure_state", "structure_id", "state"),
        Index("ix_formation_state_updated_at", "state", "updated_at"),
        Index("ix_formation_organisme_formateur_id", "organisme_formateur_id"),
        Index("ix_formation_certification_id", "certification_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(12), unique=True)
    # Organisme responsable: the OF structure that owns and signs for the formation.
    structure_id: Mapped[int] = mapped_column(ForeignKey("structure.id"))
    organisme_formateur_id: Mapped[int | None] = mapped_column(ForeignKey("structure.id"))
    intitule: Mapped[str] = mapped_column(String(300))
    objectif: Mapped[str | None] = mapped_column(Text)
    programme: Mapped[str | None] = mapped_column(Text)
    certification_id: Mapped[int | None] = mapped_column(ForeignKey("certification.id"))
    lien_web: Mapped[str | None] = mapped_column(String(500))
    financement: Mapped[str | None] = mapped_column(String(150))
    dispositif: Mapped[str | None] = mapped_column(String(30))
    numero_marche: Mapped[str | None] = mapped_column(String(40), index=True)
    eligible_cpf: Mapped[bool] = mapped_column(Boolean, default=False)
    # The three access modalities: mandatory yes/no at publication, unknown (NULL) in a draft.
    modalite_formation_continue: Mapped[bool | None] = mapped_column(Boolean)
    modalite_contrat_pro: Mapped[bool | None] = mapped_column(Boolean)
    modalite_apprentissage: Mapped[bool | None] = mapped_column(Boolean)
    # Cursus years open to apprenticeship, a subset of 1..5 (list of ints).
    annees_cursus: Mapped[list] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(30), default=FormationState.BROUILLON)
    moderation_comment: Mapped[str | None] = mapped_column(Text)
    # What search shows while a validated formation is being modified (``modifiee``).
    validated_snapshot: Mapped[dict | None] = mapped_column(JSON)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    validated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    # Answers to optional fields added to the form definition without a migration.
    extra: Mapped[dict] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)

    structure = relationship("Structure", foreign_keys=[structure_id])
    organisme_formateur = relationship("Structure", foreign_keys=[organisme_formateur_id])
    certification = relationship("Certification")
    created_by = relationship("User")
    sessions = relationship("Session", back_populates="formation",
                            order_by="Session.date_debut")

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        return f"{self.reference} — {self.intitule}"


class Session(TimestampMixin, db.Model):
    __tablename__ = "session"
    __table_args__ = (
        in_check("state", SessionState),
        in_check("mode_entree", EntryMode),
        CheckConstraint("length(reference) = 8", name="reference_8_chiffres"),
        CheckConstraint("date_fin >= date_debut", name="fin_apres_debut"),
        CheckConstraint("places IS NULL OR places >= 0", name="places_positives"),
        Index("ix_session_dates", "date_debut", "date_fin"),
        Index("ix_session_commune_id", "commune_id"),
        Index("ix_session_formation_id", "formation_id"),
        Index("ix_session_organisme_formateur_id", "organisme_formateur_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(8), unique=True)
    formation_id: Mapped[int] = mapped_column(ForeignKey("formation.id", ondelete="CASCADE"))
    date_debut: Mapped[dt.date] = mapped_column(Date)
    date_fin: Mapped[dt.date] = mapped_column(Date)
    adresse: Mapped[str | None] = mapped_column(String(250))
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("commune.id"))
    cedex: Mapped[str | None] = mapped_column(String(20))
    organisme_formateur_id: Mapped[int | None] = mapped_column(ForeignKey("structure.id"))
    mode_entree: Mapped[str] = mapped_column(String(30), default=EntryMode.DATE_FIXE)
    places: Mapped[int | None] = mapped_column(Integer)
    date_limite_inscription: Mapped[dt.date | None] = mapped_column(Date)
    date_entree_tardive: Mapped[dt.date | None] = mapped_column(Date)
    ouverte_candidature: Mapped[bool] = mapped_column(Boolean, default=True)
    date_publication: Mapped[dt.date | None] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(20), default=SessionState.ACTIVE)
    version: Mapped[int] = mapped_column(Integer, default=1)

    formation = relationship("Formation", back_populates="sessions")
    commune = relationship("Commune")
    organisme_formateur = relationship("Structure")
    entry_points = relationship("EntryPoint", back_populates="session",
                                order_by="EntryPoint.date_entree",
                                cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        return f"{self.reference} ({self.date_debut:%d/%m/%Y} – {self.date_fin:%d/%m/%Y})"


class EntryPoint(db.Model):
    """A dated entry of an HSP session, with its own places."""

    __tablename__ = "entry_point"
    __table_args__ = (
        CheckConstraint("places >= 0", name="places_positives"),
        db.UniqueConstraint("session_id", "date_entree"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    date_entree: Mapped[dt.date] = mapped_column(Date)
    places: Mapped[int] = mapped_column(Integer)

    session = relationship("Session", back_populates="entry_points")

    def __str__(self) -> str:
        return f"Entrée du {self.date_entree:%d/%m/%Y} ({self.places} places)"
