"""SQLAlchemy 2.0 tables. Schema changes go through Alembic (models/migrations)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, TypeDecorator
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

    consult: Mapped[Consult] = relationship(back_populates="participants", lazy="joined")

    __table_args__ = (Index("ix_participant_consult", "consult_id"),)
