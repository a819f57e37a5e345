"""Reference data: Certif Info certifications and communes (INSEE code, postal code)."""
from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.extensions import db

DEPARTEMENTS_NOUVELLE_AQUITAINE = {
    "16": "Charente", "17": "Charente-Maritime", "19": "Corrèze", "23": "Creuse",
    "24": "Dordogne", "33": "Gironde", "40": "Landes", "47": "Lot-et-Garonne",
    "64": "Pyrénées-Atlantiques", "79": "Deux-Sèvres", "86": "Vienne", "87": "Haute-Vienne",
}


class Certification(db.Model):
    __tablename__ = "certification"
    __table_args__ = (Index("ix_certification_intitule", "intitule"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code_certifinfo: Mapped[str] = mapped_column(String(10), unique=True)
    intitule: Mapped[str] = mapped_column(String(300))
    niveau: Mapped[str | None] = mapped_column(String(20))
    ouverte_apprentissage: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def __str__(self) -> str:
        return f"{self.code_certifinfo} — {self.intitule}"


class Commune(db.Model):
    """One row per (INSEE code, postal code): a commune may have several postal codes."""

    __tablename__ = "commune"
    __table_args__ = (
        UniqueConstraint("code_insee", "code_postal"),
        CheckConstraint("length(code_postal) = 5", name="code_postal_5_chiffres"),
        Index("ix_commune_code_postal", "code_postal"),
        Index("ix_commune_nom", "nom"),
        Index("ix_commune_departement", "departement"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code_insee: Mapped[str] = mapped_column(String(5))
    code_postal: Mapped[str] = mapped_column(String(5))
    nom: Mapped[str] = mapped_column(String(100))
    departement: Mapped[str] = mapped_column(String(3))

    def __str__(self) -> str:
        return f"{self.nom} ({self.code_postal})"
