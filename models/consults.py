"""Consults and their participants: creation, lookup, lifecycle."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Collection

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.roles import Action, Role, is_allowed
from models.tables import ConsentRecord, Consult, ConsultStatus, Participant


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
    session: AsyncSession, consult_id: str, *, clinic: str | None = None, lock: bool = False
) -> Consult | None:
    """The consult, or None if unknown (or owned by another clinic when `clinic` is given).

    `lock` takes the consult's row lock (Postgres) for the transaction: the panel writer
    updates `last_seq` under the same lock, so `end` then reads the seq of the last change
    committed before the end."""
    query = select(Consult).where(Consult.id == consult_id)
    if clinic is not None:
        query = query.where(Consult.clinic == clinic)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_participant(session: AsyncSession, participant_id: str) -> Participant | None:
    return await session.get(Participant, participant_id)


async def load_participants(session: AsyncSession, participant_ids: list[str]) -> list[Participant]:
    """These participants (with their consults) into `session`, one statement for all:
    `get_participant` then finds them there while the list is held (the session itself
    keeps only weak references to unchanged objects)."""
    query = select(Participant).where(Participant.id.in_(participant_ids))
    return list((await session.execute(query)).scalars())


class ConsultAlreadyEnded(Exception):
    pass


def end(consult: Consult, *, reason: str, now: dt.datetime) -> None:
    """Mark the consult ended at its latest seq; its links stop working (read the consult
    with `lock=True`)."""
    if consult.status == ConsultStatus.ENDED.value:
        raise ConsultAlreadyEnded(consult.id)
    consult.status = ConsultStatus.ENDED.value
    consult.ended_at = now
    consult.end_reason = reason
    consult.ended_seq = consult.last_seq


def mark_arrived(consult: Consult, *, now: dt.datetime) -> list[str]:
    """Someone opened a link (even into the waiting room): scheduled → open.

    Returns the lifecycle events that happened (for webhooks)."""
    if consult.status == ConsultStatus.SCHEDULED.value:
        consult.status = ConsultStatus.OPEN.value
        consult.opened_at = now
        return ["consult.opened"]
    return []


def mark_in_call(consult: Consult, *, now: dt.datetime) -> list[str]:
    """Someone is in the call itself (not waiting): the consult is live."""
    happened = mark_arrived(consult, now=now)
    if consult.status == ConsultStatus.OPEN.value:
        consult.status = ConsultStatus.LIVE.value
        consult.live_at = now
        happened.append("consult.live")
    return happened


def may_skip_waiting(
    participant: Participant,
    *,
    now: dt.datetime,
    grace: dt.timedelta,
    present_elsewhere: bool,
) -> bool:
    """Whether a participant joins the call directly rather than the waiting room.

    Roles that never wait (pharmacist, clinician) do unless they were removed, and then wait
    to be admitted again like anyone. Others do when they were admitted and are either still
    connected (`present_elsewhere`: a second tab, a reload racing the old connection) or left
    less than `grace` ago. Presence, not the database, says who is connected: when no
    departure was recorded (the instance serving them crashed), they left when they were
    last seen.
    """
    if is_allowed(Role(participant.role), Action.JOIN_WITHOUT_WAITING):
        return not was_removed(participant)
    if participant.admitted_at is None:
        return False
    if present_elsewhere:
        return True
    # The later of the two: a departure recorded while they were in fact still connected
    # (their instance was cut off from the others for a while) is superseded by heartbeats.
    signs = [t for t in (participant.last_left_at, participant.last_seen_at) if t is not None]
    left_at = max(signs) if signs else participant.admitted_at
    return now - left_at <= grace


def admit(participant: Participant, *, now: dt.datetime) -> None:
    participant.admitted_at = now
    participant.last_left_at = None
    participant.last_seen_at = now


def record_in_call(participant: Participant, *, now: dt.datetime) -> None:
    """In the call now (admitted if not yet): no departure stands, last seen now."""
    if participant.admitted_at is None:
        participant.admitted_at = now
    participant.last_left_at = None
    participant.last_seen_at = now


def mark_visit_started(consult: Consult, participant: Participant, *, now: dt.datetime) -> bool:
    """The patient entered the call: the visit starts, the first time only. Returns whether
    it started now."""
    if participant.role != Role.PATIENT.value or consult.visit_started_at is not None:
        return False
    consult.visit_started_at = now
    return True


def was_removed(participant: Participant) -> bool:
    """Removed (or denied) and not admitted since: `revoke_admission` is the only way to an
    unadmitted participant with a departure time."""
    return participant.admitted_at is None and participant.last_left_at is not None


def revoke_admission(participant: Participant, *, now: dt.datetime) -> None:
    """Removed or denied: the next arrival waits to be admitted again."""
    participant.admitted_at = None
    participant.last_left_at = now


async def has_consented(session: AsyncSession, participant_id: str) -> bool:
    query = select(ConsentRecord.id).where(ConsentRecord.participant_id == participant_id)
    return (await session.execute(query.limit(1))).first() is not None


def record_left(participant: Participant, *, now: dt.datetime) -> None:
    participant.last_left_at = now


async def record_seen(
    session: AsyncSession, participant_ids: Collection[str], now: dt.datetime
) -> None:
    """Presence's heartbeat: these participants are connected now."""
    if participant_ids:
        await session.execute(
            update(Participant)
            .where(Participant.id.in_(sorted(participant_ids)))
            .values(last_seen_at=now)
        )


async def ended_among(session: AsyncSession, consult_ids: Collection[str]) -> dict[str, str]:
    """Those of `consult_ids` that have ended: id -> end reason."""
    if not consult_ids:
        return {}
    query = select(Consult.id, Consult.end_reason).where(
        Consult.id.in_(sorted(consult_ids)), Consult.status == ConsultStatus.ENDED.value
    )
    return {row.id: row.end_reason or "" for row in await session.execute(query)}
