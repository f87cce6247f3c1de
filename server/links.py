"""Join links: which token a participant's link carries, and what it resolves to."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import consults
from models.roles import Role
from models.tables import Consult, ConsultStatus, Participant
from server.tokens import LinkClaims, LinkSigner, TokenError


def link_expiry(consult: Consult, ttl_hours: float) -> int:
    """Unix time a consult's links stop working: TTL after the later of schedule and creation."""
    start = max(consult.scheduled_at, consult.created_at)
    return int((start + dt.timedelta(hours=ttl_hours)).timestamp())


def link_token(signer: LinkSigner, consult: Consult, participant: Participant, ttl: float) -> str:
    return signer.sign(
        LinkClaims(
            consult_id=consult.id,
            participant_id=participant.id,
            role=Role(participant.role),
            expires_at=link_expiry(consult, ttl),
            token_id=participant.token_id,
        )
    )


def join_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/c/{token}"


async def resolve(
    session: AsyncSession, signer: LinkSigner, token: str, *, now: float
) -> tuple[Consult, Participant]:
    """The consult and participant a usable token belongs to; TokenError otherwise."""
    consult, participant = await _resolve(session, signer.verify(token, now=now))
    if consult.status == ConsultStatus.ENDED.value:
        raise TokenError("consult_ended", "This consult has ended.")
    return consult, participant


@dataclass(frozen=True)
class LinkHolder:
    """The participant a link names, as a connection needs it: read as columns, not ORM
    objects, and for many links in one statement (a clinic's whole morning connecting)."""

    participant_id: str
    consult_id: str
    role: str
    display_name: str
    token_id: str
    consult_status: str


async def link_holders(
    session: AsyncSession, participant_ids: Collection[str]
) -> dict[str, LinkHolder]:
    """The participants of these ids that exist, with their consult's status."""
    query = (
        select(
            Participant.id,
            Participant.consult_id,
            Participant.role,
            Participant.display_name,
            Participant.token_id,
            Consult.status,
        )
        .join(Consult, Consult.id == Participant.consult_id)
        .where(Participant.id.in_(participant_ids))
    )
    return {row[0]: LinkHolder(*row) for row in await session.execute(query)}


def usable_holder(claims: LinkClaims, holder: LinkHolder | None) -> LinkHolder:
    """`resolve`'s checks for a genuine token's claims against its holder as read now."""
    if holder is None or not _claims_match(claims, holder.consult_id, holder.token_id, holder.role):
        raise TokenError("unknown_participant", "This link is no longer valid.")
    if holder.consult_status == ConsultStatus.ENDED.value:
        raise TokenError("consult_ended", "This consult has ended.")
    return holder


async def clinic_of(
    session: AsyncSession, signer: LinkSigner, token: str, *, now: float
) -> str | None:
    """The clinic whose consult a genuine token names, even if the link has expired or the
    consult ended (its embed page may then be framed by the clinic's portal to say so);
    None for a token that is not ours."""
    try:
        claims = signer.verify(token, now=now, allow_expired=True)
    except TokenError:
        return None
    consult = await consults.get_consult(session, claims.consult_id)
    return consult.clinic if consult is not None else None


async def resolve_record(
    session: AsyncSession, signer: LinkSigner, token: str, *, now: float, access_days: int
) -> tuple[Consult, Participant] | None:
    """A patient's link to their ended consult within its read-only window, else None."""
    try:
        claims = signer.verify(token, now=now, allow_expired=True)
        consult, participant = await _resolve(session, claims)
    except TokenError:
        return None
    if (
        claims.role is not Role.PATIENT
        or consult.status != ConsultStatus.ENDED.value
        or consult.ended_at is None
        or now > consult.ended_at.timestamp() + access_days * 86_400
    ):
        return None
    return consult, participant


async def _resolve(session: AsyncSession, claims: LinkClaims) -> tuple[Consult, Participant]:
    participant = await consults.get_participant(session, claims.participant_id)
    if participant is None or not _claims_match(
        claims, participant.consult_id, participant.token_id, participant.role
    ):
        raise TokenError("unknown_participant", "This link is no longer valid.")
    return participant.consult, participant


def _claims_match(claims: LinkClaims, consult_id: str, token_id: str, role: str) -> bool:
    """The participant the claims name still holds this link (not replaced, not moved)."""
    return (
        consult_id == claims.consult_id
        and token_id == claims.token_id
        and role == claims.role.value
    )
