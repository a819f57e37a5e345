"""Audit aggregate: the transition log of every state change, the runs of scheduled jobs,
the stored versions of rule files and the log of staff reads of candidates' personal data
(RGPD)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backoffice import clock
from backoffice.extensions import db
from backoffice.models.base import LabelledEnum, UTCDateTime, in_check


class TransitionLog(db.Model):
    """One row per state change: which object, from, to, by whom, when and why."""

    __tablename__ = "transition_log"
    __table_args__ = (
        Index("ix_transition_log_object", "object_type", "object_id", "at"),
        Index("ix_transition_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int] = mapped_column(Integer)
    transition: Mapped[str] = mapped_column(String(60))
    from_state: Mapped[str | None] = mapped_column(String(40))
    to_state: Mapped[str] = mapped_column(String(40))
    # NULL actor = the system (a scheduled job).
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)
    reason: Mapped[str | None] = mapped_column(Text)

    actor = relationship("User")


class JobRunStatus(LabelledEnum):
    EN_ATTENTE = "en_attente", "En attente"
    EN_COURS = "en_cours", "En cours"
    SUCCES = "succes", "Succès"
    ECHEC = "echec", "Échec"
    INTERROMPUE = "interrompue", "Interrompue"


class JobRun(db.Model):
    """One run of a scheduled job, or one queued task (CSV import, rule try-out or
    activation, « Lancer maintenant »): « En attente » until a runner claims it
    (``backoffice/tasks.py``), then « En cours » with a heartbeat, then « Succès »,
    « Échec » or « Interrompue » (its runner stopped beating)."""

    __tablename__ = "job_run"
    __table_args__ = (
        in_check("status", JobRunStatus),
        Index("ix_job_run_job_started_at", "job", "started_at"),
        Index("ix_job_run_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(60))
    run_for: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default=JobRunStatus.EN_COURS)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    rows_seen: Mapped[int] = mapped_column(Integer, default=0)
    rows_changed: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    # -- the task queue --
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    runner: Mapped[str | None] = mapped_column(String(120))  # "host:pid" of the runner
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    requested_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    # The task's input (CSV file, rule text), erased when the task ends.
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)

    requested_by = relationship("User")


class RuleSetVersion(db.Model):
    """A stored version of one rule file; exactly the active one is used by every worker."""

    __tablename__ = "ruleset_version"
    __table_args__ = (
        UniqueConstraint("ruleset", "version"),
        Index("ix_ruleset_version_ruleset_active", "ruleset", "active"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ruleset: Mapped[str] = mapped_column(String(60))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)

    author = relationship("User")

    def __str__(self) -> str:
        return f"{self.ruleset} v{self.version}"


class PersonalDataAccess(db.Model):
    """One read of a candidate's personal data by a staff member (RGPD access log): who,
    with which role, when, which candidate (``NULL`` for a list or a search), what was
    shown and where. Rows are only ever added; the admin screen shows them to admins."""

    __tablename__ = "personal_data_access"
    __table_args__ = (
        Index("ix_personal_data_access_candidate", "candidate_id", "at"),
        Index("ix_personal_data_access_actor", "actor_id", "at"),
        Index("ix_personal_data_access_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    actor_role: Mapped[str | None] = mapped_column(String(40))
    # Not a foreign key: the trace outlives the candidate's deletion or anonymisation.
    candidate_id: Mapped[int | None] = mapped_column(Integer)
    what: Mapped[str] = mapped_column(String(100))
    location: Mapped[str] = mapped_column(String(500))

    actor = relationship("User")
