"""Messaging aggregate: the queue of outbound e-mails and regional hub messages.

``body_text``/``body_html`` are what staff may read: a single-use link appears there as
« lien masqué ». The real links are in ``sealed_links`` (encrypted, see
``backoffice/links.py``), a column no admin screen shows, erased once the message is sent
or has failed for good.

A sender claims a message before sending it (``claim_token``, ``claimed_until``: a lease
committed first, see ``backoffice/jobs.py``), so that two senders running at once never
both send it; the lease is cleared once the message is sent or its failure recorded.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backoffice import clock
from backoffice.extensions import db
from backoffice.models.base import LabelledEnum, TimestampMixin, UTCDateTime, in_check


class Channel(LabelledEnum):
    EMAIL = "email", "Courriel"
    HUB = "hub", "Hub régional (Agora)"


class MessageStatus(LabelledEnum):
    EN_ATTENTE = "en_attente", "En attente d'envoi"
    ENVOYE = "envoye", "Envoyé"
    ECHEC = "echec", "Échec définitif"


class OutboundMessage(TimestampMixin, db.Model):
    __tablename__ = "outbound_message"
    __table_args__ = (
        in_check("channel", Channel),
        in_check("status", MessageStatus),
        Index("ix_outbound_message_status_next_attempt", "status", "next_attempt_at"),
        Index("ix_outbound_message_related", "related_type", "related_id"),
        Index("ix_outbound_message_recipient", "recipient"),  # exact search in the admin
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), default=Channel.EMAIL)
    recipient: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str | None] = mapped_column(String(250))
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict | None] = mapped_column(JSON)
    # The secret links of the message, encrypted; never shown, erased after sending.
    sealed_links: Mapped[str | None] = mapped_column(Text)
    related_type: Mapped[str | None] = mapped_column(String(40))
    related_id: Mapped[int | None] = mapped_column(Integer)
    # Guarantees a reminder or a hub message is queued once only.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=MessageStatus.EN_ATTENTE)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=clock.now)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The lease of the sender delivering the message now (None when no one is): another
    # sender leaves it alone until ``claimed_until`` has passed (a sender killed mid-way).
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
