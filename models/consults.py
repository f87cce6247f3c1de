"""Consults and their participants: creation, lookup, lifecycle."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.roles import Role
from models.tables import Consult, ConsultStatus, Participant


def new_id(prefix: str) -> str:
    """An opaque, unguessable identifier such as `c_3J9kQ...`."""
    return f"{prefix}_{secrets.token_urlsafe(12)}"


def default_display_name(role: Role, patient_name: str) -> str:
    return patient_name if role is Role.PATIENT else role.label


async def create_consult(
    session: AsyncSession,
    *,
    clinic: str,
    patient_name: str,
    scheduled_at: dt.datetime,
    notes: str | None,
    now: dt.datetime,
) -> Consult:
    """A scheduled consult with one participant per role (flushed, not committed)."""
    consult = Consult(
        id=new_id("c"),
        clinic=clinic,
        patient_name=patient_name,
        scheduled_at=scheduled_at.astimezone(dt.UTC),
        notes=notes,
        status=ConsultStatus.SCHEDULED.value,
        created_at=now,
    )
    consult.participants = [
        Participant(
            id=new_id("p"),
            role=role.value,
            display_name=default_display_name(role, patient_name),
            token_id=new_id("t"),
            created_at=now + dt.timedelta(microseconds=index),
        )
        for index, role in enumerate(Role)
    ]
    session.add(consult)
    await session.flush()
    return consult


async def get_consult(
    session: AsyncSession, consult_id: str, *, clinic: str | None = None
) -> Consult | None:
    """The consult, or None if unknown (or owned by another clinic when `clinic` is given)."""
    query = select(Consult).where(Consult.id == consult_id)
    if clinic is not None:
        query = query.where(Consult.clinic == clinic)
    return (await session.execute(query)).scalar_one_or_none()


async def get_participant(session: AsyncSession, participant_id: str) -> Participant | None:
    return await session.get(Participant, participant_id)


class ConsultAlreadyEnded(Exception):
    pass


def end(consult: Consult, *, reason: str, now: dt.datetime) -> None:
    """Mark the consult ended; its links stop working."""
    if consult.status == ConsultStatus.ENDED.value:
        raise ConsultAlreadyEnded(consult.id)
    consult.status = ConsultStatus.ENDED.value
    consult.ended_at = now
    consult.end_reason = reason


def mark_live(consult: Consult) -> bool:
    """The first join makes a scheduled or open consult live; True if that changed it."""
    if consult.status in (ConsultStatus.SCHEDULED.value, ConsultStatus.OPEN.value):
        consult.status = ConsultStatus.LIVE.value
        return True
    return False
