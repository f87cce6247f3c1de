"""SQLAlchemy 2.0 tables. Schema changes go through Alembic (models/migrations)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError("datetimes stored here must be timezone-aware")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class ConsultStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    LIVE = "live"
    ENDED = "ended"


class Base(DeclarativeBase):
    pass


class Consult(Base):
    __tablename__ = "consult"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    clinic: Mapped[str] = mapped_column(String(200))
    patient_name: Mapped[str] = mapped_column(String(200))
    scheduled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(20), default=ConsultStatus.SCHEDULED.value)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    end_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # The seq of the consult's latest change event: seqs are gap-free per consult.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    live_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # When the patient first entered the call: the visit (and its timer) runs from then, as
    # MTM time is billed from when the pharmacist and the patient meet.
    visit_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The seq the consult ended at: its documents are generated from the panel at this seq
    # by default, however the log grows after (a prescriber's answers to the letter).
    ended_seq: Mapped[int | None] = mapped_column(Integer, default=None)
    # The sequence of the consult's latest webhook event: gap-free per consult.
    webhook_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Moved by every ORM update of the row, which also requires the value it read: a write
    # from a stale read (a join that read the consult before an end committed) is refused
    # with StaleDataError instead of undoing the end. Core updates of the counters above
    # (last_seq, webhook_seq) leave it alone.
    row_version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": row_version}

    participants: Mapped[list[Participant]] = relationship(
        back_populates="consult", order_by="Participant.created_at", lazy="selectin"
    )


class Participant(Base):
    __tablename__ = "participant"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    consult_id: Mapped[str] = mapped_column(ForeignKey("consult.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))
    display_name: Mapped[str] = mapped_column(String(200))
    # The unique id carried in this participant's join link; a new link replaces it.
    token_id: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Set when the pharmacist admits the participant (or on joining, for roles that never
    # wait); cleared when they are removed. With last_left_at and last_seen_at it decides
    # whether a reconnecting participant may skip the waiting room.
    admitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Cleared while the participant is in the call.
    last_left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Moved forward by presence heartbeats while connected: after a crash, nobody records
    # the departure, and this is the last time the participant was known to be here.
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)

    consult: Mapped[Consult] = relationship(back_populates="participants", lazy="joined")

    __table_args__ = (Index("ix_participant_consult", "consult_id"),)


class PanelEntity(Base):
    """The current state of one medication, problem, recommendation or plan item."""

    __tablename__ = "panel_entity"

    consult_id: Mapped[str] = mapped_column(
        ForeignKey("consult.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(20))
    position: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Per field, the seq of the change that last set it (the version an editor saw).
    versions: Mapped[dict[str, int]] = mapped_column(JSON)
    created_seq: Mapped[int] = mapped_column(Integer)
    updated_seq: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_by_name: Mapped[str] = mapped_column(String(200))
    updated_by_role: Mapped[str] = mapped_column(String(20))
    # Per field, who set its current value: {"id", "name", "role"}.
    authors: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ChangeEvent(Base):
    """The append-only audit trail: every accepted or conflicting mutation, in seq order."""

    __tablename__ = "change_event"

    consult_id: Mapped[str] = mapped_column(
        ForeignKey("consult.id", ondelete="RESTRICT"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(20))
    op: Mapped[str] = mapped_column(String(20))
    entity_type: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[str] = mapped_column(String(64))
    field: Mapped[str | None] = mapped_column(String(64))
    old: Mapped[Any] = mapped_column(JSON, nullable=True)
    new: Mapped[Any] = mapped_column(JSON, nullable=True)
    mutation_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20))
    # Where a reconciled fact comes from (patient, fill-history, chart, other).
    source: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # Why a derived change happened, or whose value an override replaced.
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_change_event_entity", "consult_id", "entity_id"),)


class MutationReceipt(Base):
    """The first result of each (participant, mutation id): a repeat returns it unchanged."""

    __tablename__ = "mutation_receipt"

    consult_id: Mapped[str] = mapped_column(
        ForeignKey("consult.id", ondelete="CASCADE"), primary_key=True
    )
    participant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    mutation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ChatMessage(Base):
    """One line of the call's text chat: part of the consult's record."""

    __tablename__ = "chat_message"
    __table_args__ = (Index("ix_chat_message_consult", "consult_id", "id"),)

    # Increasing: the order the server accepted them in.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consult_id: Mapped[str] = mapped_column(ForeignKey("consult.id", ondelete="CASCADE"))
    participant_id: Mapped[str] = mapped_column(String(40))
    # As the author was shown in the call when they wrote it.
    author_name: Mapped[str] = mapped_column(String(200))
    author_role: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    text: Mapped[str] = mapped_column(Text)


class ConsentRecord(Base):
    """A participant's consent to the telehealth consult: when, and to which text."""

    __tablename__ = "consent_record"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consult_id: Mapped[str] = mapped_column(ForeignKey("consult.id", ondelete="CASCADE"))
    participant_id: Mapped[str] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    text_sha256: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    # The language of `text`, the one the person read it in ("en", "es").
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")


class ClinicEmbed(Base):
    """A clinic's embedding settings as set through the REST API (models/embed.py)."""

    __tablename__ = "clinic_embed"

    clinic: Mapped[str] = mapped_column(String(200), primary_key=True)
    # Origins allowed to frame the clinic's embed pages (CSP frame-ancestors), in order.
    allowed_origins: Mapped[list[str]] = mapped_column(JSON)
    medication_names_in_events: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class WebhookState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after webhooks.max_attempts


class WebhookOutbox(Base):
    """One webhook event, written in the transaction of the change it reports and kept
    until the receiver accepted it (or it was given up)."""

    __tablename__ = "webhook_outbox"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    consult_id: Mapped[str] = mapped_column(ForeignKey("consult.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)
    event_type: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(12), default=WebhookState.PENDING.value)
    # Attempts started so far; the next one is not before next_attempt_at (while an
    # attempt runs, that is the end of its lease: an instance that died mid-attempt leaves
    # the event to be sent again then).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Why the last attempt failed ("HTTP 503", "ClientConnectorError"): never a body.
    last_error: Mapped[str | None] = mapped_column(String(200), default=None)

    __table_args__ = (
        UniqueConstraint("consult_id", "sequence", name="uq_webhook_outbox_sequence"),
        Index("ix_webhook_outbox_due", "state", "next_attempt_at"),
    )
