"""The call's text chat: what a message may hold, and the consult's record of them."""

from __future__ import annotations

import datetime as dt
import unicodedata

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.errors import Refused
from models.panel import check_storable
from models.tables import ChatMessage, Consult, ConsultStatus

MAX_LENGTH = 1000
# Messages one consult may hold: far above any real conversation, low enough that a
# misbehaving client cannot grow the record without bound.
MAX_MESSAGES = 2000
# Sent with the join acknowledgement (a page that joins late reads the conversation).
RECENT = 200


def clean_text(text: str) -> str:
    """A message as it is kept: trimmed, 1 to MAX_LENGTH characters, line breaks and tabs
    allowed, no other control characters. Raises Refused("invalid_payload")."""
    try:
        check_storable(text)
    except ValueError as problem:
        raise Refused("invalid_payload", f"'text' {problem}.") from None
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise Refused("invalid_payload", "'text' must not contain control characters.")
    text = text.strip()
    if not text:
        raise Refused("invalid_payload", "'text' is empty: write something to send.")
    if len(text) > MAX_LENGTH:
        raise Refused(
            "invalid_payload", f"'text' is {len(text)} characters; at most {MAX_LENGTH} fit."
        )
    return text


async def post(
    session: AsyncSession,
    consult_id: str,
    *,
    participant_id: str,
    author_name: str,
    author_role: str,
    text: str,
    now: dt.datetime,
) -> ChatMessage:
    """Add a message (flushed, not committed). Raises Refused: bad text, the consult
    ended, the consult's chat is full."""
    text = clean_text(text)
    status = await session.scalar(select(Consult.status).where(Consult.id == consult_id))
    if status is None or status == ConsultStatus.ENDED.value:
        raise Refused("consult_ended", "This consult has ended: its chat is closed.")
    held = await session.scalar(
        select(func.count()).select_from(ChatMessage).where(ChatMessage.consult_id == consult_id)
    )
    if (held or 0) >= MAX_MESSAGES:
        raise Refused(
            "quota_exceeded", f"This consult's chat holds {MAX_MESSAGES} messages, the most."
        )
    message = ChatMessage(
        consult_id=consult_id,
        participant_id=participant_id,
        author_name=author_name,
        author_role=author_role,
        at=now,
        text=text,
    )
    session.add(message)
    await session.flush()
    return message


async def messages(
    session: AsyncSession, consult_id: str, *, last: int | None = None
) -> list[ChatMessage]:
    """The consult's messages in the order they were sent (`last`: only the latest so many)."""
    query = select(ChatMessage).where(ChatMessage.consult_id == consult_id)
    if last is None:
        return list(await session.scalars(query.order_by(ChatMessage.id)))
    newest = list(await session.scalars(query.order_by(ChatMessage.id.desc()).limit(last)))
    return newest[::-1]
