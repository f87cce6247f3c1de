"""The server's side of the call's chat (signaling's `ChatService`), on the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import chat
from models.tables import ChatMessage
from signaling.backend import ChatLine, Identity


class DatabaseChat:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], float]
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    async def post(self, identity: Identity, text: str) -> ChatLine:
        async with self._sessions() as session, session.begin():
            message = await chat.post(
                session,
                identity.consult_id,
                participant_id=identity.participant_id,
                author_name=identity.display_name,
                author_role=identity.role,
                text=text,
                now=dt.datetime.fromtimestamp(self._clock(), dt.UTC),
            )
            return line(message)

    async def recent(self, consult_id: str) -> list[ChatLine]:
        async with self._sessions() as session:
            return [line(m) for m in await chat.messages(session, consult_id, last=chat.RECENT)]


def line(message: ChatMessage) -> ChatLine:
    return ChatLine(
        id=message.id,
        participant_id=message.participant_id,
        display_name=message.author_name,
        role=message.author_role,
        at=message.at,
        text=message.text,
    )
