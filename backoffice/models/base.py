"""Shared column types and helpers for the models.

* ``UTCDateTime`` stores instants as naive UTC on every database and gives back
  timezone-aware UTC datetimes, so SQLite and PostgreSQL behave the same.
* ``LabelledEnum`` is a ``StrEnum`` whose members carry their French label.
* ``in_check`` builds the CHECK constraint that keeps a code column within its enum.
"""
from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import CheckConstraint, DateTime, types
from sqlalchemy.orm import Mapped, mapped_column

from backoffice import clock


class UTCDateTime(types.TypeDecorator):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            # A naive value is a time typed by a user (admin form or filter): Paris time.
            value = value.replace(tzinfo=clock.PARIS)
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc)


class LabelledEnum(enum.StrEnum):
    """A stored code with its French label: ``State.BROUILLON.label == "Brouillon"``."""

    def __new__(cls, value: str, label: str):
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.label = label
        return obj

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        return [(member.value, member.label) for member in cls]

    @classmethod
    def labels(cls) -> dict[str, str]:
        return {member.value: member.label for member in cls}


def in_check(column: str, enum_cls: type[LabelledEnum], name: str | None = None,
             nullable: bool = False) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in enum_cls)
    condition = f"{column} IN ({values})"
    if nullable:
        condition = f"{column} IS NULL OR {condition}"
    return CheckConstraint(condition, name=name or f"{column}_valide")


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=clock.now, nullable=False
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=clock.now, onupdate=clock.now, nullable=False
    )


def render_item(type_, obj, autogen_context):
    """Alembic autogenerate: write ``UTCDateTime`` columns as plain ``sa.DateTime()``."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def include_object(obj, name, type_, reflected, compare_to):
    """Alembic compare: leave out the full-text index of the catalogue (``formation_search``
    and, on SQLite, its FTS5 shadow tables), which lives outside the models
    (``backoffice/search.py``, migration ``0003_search``), and the word indexes of the
    admin search (``admin_search…``, ``backoffice/admin/text_index.py``)."""
    table = obj.table.name if type_ in ("index", "column", "foreign_key_constraint",
                                        "unique_constraint") and hasattr(obj, "table") else name
    if type_ == "index" and (name or "").startswith("ix_admin_search"):
        return False
    return not (table or "").startswith(("formation_search", "admin_search"))
