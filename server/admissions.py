"""The server's side of who may be in a consult: join links, the waiting room, the lifecycle
(signaling's `Admissions`), on the database, with the clinic's webhooks."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Collection

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from documents.text import Language
from models import consults
from models.batching import ReadBatch, WriteBatch
from models.tables import ConsentRecord, ConsultStatus, Participant
from server import links
from server.config import Config
from server.lifecycle import ConsultEnding, ConsultNotFound
from server.links import LinkHolder
from server.tokens import LinkSigner, TokenError
from server.webhooks import WebhookSender
from signaling.backend import ConsultState, Identity, JoinDecision, JoinRefused


class DatabaseAdmissions:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        signer: Callable[[], LinkSigner],
        config: Config,
        clock: Callable[[], float],
        webhooks: WebhookSender,
        ending: ConsultEnding,
    ) -> None:
        self._sessions = sessions
        self._signer = signer
        self._config = config
        self._clock = clock
        self._webhooks = webhooks
        self._ending = ending
        self._holders = ReadBatch(self._read_holders)
        # Joins, admissions and entries into the call, many committed together.
        self._arrivals = WriteBatch(sessions, preload=consults.load_participants)

    async def _read_holders(self, participant_ids: Collection[str]) -> dict[str, LinkHolder]:
        async with self._sessions() as session:
            return await links.link_holders(session, participant_ids)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    async def authenticate(self, token: str) -> Identity:
        try:
            claims = self._signer().verify(token, now=self._clock())
            holder = links.usable_holder(claims, await self._holders.get(claims.participant_id))
        except TokenError as exc:
            raise JoinRefused(exc.code, exc.message) from None
        return Identity(
            consult_id=holder.consult_id,
            participant_id=holder.participant_id,
            role=holder.role,
            display_name=holder.display_name,
        )

    async def _participant(self, session: AsyncSession, participant_id: str) -> Participant:
        participant = await consults.get_participant(session, participant_id)
        if participant is None:
            raise JoinRefused("unknown_participant", "This link is no longer valid.")
        if participant.consult.status == ConsultStatus.ENDED.value:
            raise JoinRefused("consult_ended", "This consult has ended.")
        return participant

    async def record_join(
        self,
        identity: Identity,
        display_name: str | None,
        *,
        consent_language: Language | None,
        present_elsewhere: bool,
    ) -> JoinDecision:
        now = self._now()
        consent = self._config.consent

        async def join(session: AsyncSession) -> JoinDecision:
            participant = await self._participant(session, identity.participant_id)
            if identity.role in consent.required_roles and consent_language is None:
                if not await consults.has_consented(session, participant.id):
                    raise JoinRefused(
                        "consent_required",
                        "Please read and accept the consent to the telehealth consult first.",
                    )
            if consent_language is not None:
                text = consent.text_for(consent_language)
                session.add(
                    ConsentRecord(
                        consult_id=participant.consult_id,
                        participant_id=participant.id,
                        at=now,
                        text_sha256=hashlib.sha256(text.encode()).hexdigest(),
                        text=text,
                        language=consent_language,
                    )
                )
            if display_name is not None:
                participant.display_name = display_name
            consult = participant.consult
            happened = consults.mark_arrived(consult, now=now)
            admitted = consults.may_skip_waiting(
                participant,
                now=now,
                grace=dt.timedelta(seconds=self._config.consult.rejoin_grace_seconds),
                present_elsewhere=present_elsewhere,
            )
            for event in happened:
                await self._webhooks.emit(session, event, identity.consult_id)
            if admitted:
                # Straight into the call: recorded in this same transaction (one fewer per
                # join, which counts when a clinic's whole morning connects at once).
                state = await self._enter(session, participant, identity, now)
            else:
                state = ConsultState(consult.id, consult.status, consult.visit_started_at)
                await self._webhooks.emit(
                    session, "participant.waiting", identity.consult_id, _who(identity)
                )
            return JoinDecision(state, admitted=admitted)

        return await self._arrivals.run(join, key=identity.participant_id)

    async def record_in_call(self, identity: Identity) -> ConsultState:
        now = self._now()

        async def enter(session: AsyncSession) -> ConsultState:
            participant = await self._participant(session, identity.participant_id)
            return await self._enter(session, participant, identity, now)

        return await self._arrivals.run(enter, key=identity.participant_id)

    async def _enter(
        self, session: AsyncSession, participant: Participant, identity: Identity, now: dt.datetime
    ) -> ConsultState:
        consults.record_in_call(participant, now=now)
        consult = participant.consult
        happened = consults.mark_in_call(consult, now=now)
        consults.mark_visit_started(consult, participant, now=now)
        for event in happened:
            await self._webhooks.emit(session, event, identity.consult_id)
        await self._webhooks.emit(
            session, "participant.joined", identity.consult_id, _who(identity)
        )
        return ConsultState(consult.id, consult.status, consult.visit_started_at)

    async def record_leave(
        self, identity: Identity, reason: str, *, at: dt.datetime | None = None
    ) -> None:
        async with self._sessions() as session, session.begin():
            participant = await consults.get_participant(session, identity.participant_id)
            if participant is not None:
                consults.record_left(participant, now=at or self._now())
            await self._webhooks.emit(
                session,
                "participant.left",
                identity.consult_id,
                {**_who(identity), "reason": reason},
            )

    async def record_seen(self, participant_ids: Collection[str]) -> None:
        if not participant_ids:
            return
        async with self._sessions() as session, session.begin():
            await consults.record_seen(session, participant_ids, self._now())

    async def admit(self, host: Identity, participant_id: str) -> None:
        now = self._now()

        async def admit(session: AsyncSession) -> None:
            participant = await self._participant(session, participant_id)
            consults.admit(participant, now=now)
            who = {"participant_id": participant.id, "role": participant.role}
            await self._webhooks.emit(session, "participant.admitted", host.consult_id, who)

        await self._arrivals.run(admit, key=participant_id)

    async def deny(self, host: Identity, participant_id: str) -> None:
        async with self._sessions() as session, session.begin():
            participant = await self._participant(session, participant_id)
            consults.revoke_admission(participant, now=self._now())
            who = {"participant_id": participant.id, "role": participant.role}
            await self._webhooks.emit(session, "participant.denied", host.consult_id, who)

    async def remove(self, host: Identity, participant_id: str) -> None:
        async with self._sessions() as session, session.begin():
            participant = await self._participant(session, participant_id)
            consults.revoke_admission(participant, now=self._now())
            who = {"participant_id": participant.id, "role": participant.role}
            await self._webhooks.emit(session, "participant.removed", host.consult_id, who)

    async def end_consult(self, host: Identity, reason: str) -> None:
        try:
            await self._ending.end(host.consult_id, reason=reason, ended_by=host.role)
        except ConsultNotFound:
            raise JoinRefused("unknown_participant", "This consult does not exist.") from None
        except consults.ConsultAlreadyEnded:
            raise JoinRefused("consult_ended", "This consult has already ended.") from None

    async def ended_among(self, consult_ids: Collection[str]) -> dict[str, str]:
        async with self._sessions() as session:
            return await consults.ended_among(session, consult_ids)


def _who(identity: Identity) -> dict[str, str]:
    # Webhooks carry ids and roles, never names: names are PHI.
    return {"participant_id": identity.participant_id, "role": identity.role}
