"""The server's side of signaling: tokens, the database, webhooks and the network probe."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from media.probe import ProbeService
from models import consults, mutations, panel, panel_store
from models.roles import Action, Role, is_allowed
from models.tables import ConsentRecord, ConsultStatus, Participant
from server import links
from server.api import PREFIX as API_PREFIX
from server.config import Config
from server.documents import documents_ready_data
from server.ice import ice_configuration
from server.panel_writer import PanelWriter
from server.tokens import LinkSigner, TokenError
from server.webhooks import WebhookSender
from signaling.backend import Identity, JoinDecision, JoinRefused


class DatabaseSignalingBackend:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        signer: Callable[[], LinkSigner],
        config: Config,
        clock: Callable[[], float],
        webhooks: WebhookSender,
        probes: ProbeService,
        panel_writer: PanelWriter,
    ) -> None:
        self._sessions = sessions
        self._signer = signer
        self._config = config
        self._clock = clock
        self._webhooks = webhooks
        self._probes = probes
        self._panel_writer = panel_writer

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    async def authenticate(self, token: str) -> Identity:
        async with self._sessions() as session:
            try:
                consult, participant = await links.resolve(
                    session, self._signer(), token, now=self._clock()
                )
            except TokenError as exc:
                raise JoinRefused(exc.code, exc.message) from None
        return Identity(
            consult_id=consult.id,
            participant_id=participant.id,
            role=participant.role,
            display_name=participant.display_name,
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
        consent_accepted: bool,
        present_elsewhere: bool,
    ) -> JoinDecision:
        now = self._now()
        consent = self._config.consent
        async with self._sessions() as session, session.begin():
            participant = await self._participant(session, identity.participant_id)
            if identity.role in consent.required_roles and not consent_accepted:
                if not await consults.has_consented(session, participant.id):
                    raise JoinRefused(
                        "consent_required",
                        "Please read and accept the consent to the telehealth consult first.",
                    )
            if consent_accepted:
                session.add(
                    ConsentRecord(
                        consult_id=participant.consult_id,
                        participant_id=participant.id,
                        at=now,
                        text_sha256=hashlib.sha256(consent.text.encode()).hexdigest(),
                        text=consent.text,
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
            decision = JoinDecision(
                consult={"id": consult.id, "status": consult.status}, admitted=admitted
            )
            for event in happened:
                await self._webhooks.emit(session, event, identity.consult_id)
            if not admitted:
                await self._webhooks.emit(
                    session, "participant.waiting", identity.consult_id, _who(identity)
                )
        return decision

    async def record_in_call(self, identity: Identity) -> dict[str, Any]:
        now = self._now()
        async with self._sessions() as session, session.begin():
            participant = await self._participant(session, identity.participant_id)
            if participant.admitted_at is None:
                consults.admit(participant, now=now)
            consult = participant.consult
            happened = consults.mark_in_call(consult, now=now)
            state = {"id": consult.id, "status": consult.status}
            for event in happened:
                await self._webhooks.emit(session, event, identity.consult_id)
            await self._webhooks.emit(
                session, "participant.joined", identity.consult_id, _who(identity)
            )
        return state

    async def record_leave(self, identity: Identity, reason: str) -> None:
        async with self._sessions() as session, session.begin():
            participant = await consults.get_participant(session, identity.participant_id)
            if participant is not None:
                consults.record_left(participant, now=self._now())
            await self._webhooks.emit(
                session,
                "participant.left",
                identity.consult_id,
                {**_who(identity), "reason": reason},
            )

    async def admit(self, host: Identity, participant_id: str) -> None:
        async with self._sessions() as session, session.begin():
            participant = await self._participant(session, participant_id)
            consults.admit(participant, now=self._now())
            who = {"participant_id": participant.id, "role": participant.role}
            await self._webhooks.emit(session, "participant.admitted", host.consult_id, who)

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
        async with self._sessions() as session, session.begin():
            consult = await consults.get_consult(session, host.consult_id, lock=True)
            if consult is None:
                raise JoinRefused("unknown_participant", "This consult does not exist.")
            try:
                consults.end(consult, reason=reason, now=self._now())
            except consults.ConsultAlreadyEnded:
                raise JoinRefused("consult_ended", "This consult has already ended.") from None
            await self._webhooks.emit(
                session, "consult.ended", host.consult_id, {"reason": reason, "ended_by": host.role}
            )
            await self._webhooks.emit(
                session,
                "consult.documents_ready",
                host.consult_id,
                documents_ready_data(consult, API_PREFIX),
            )
        self._panel_writer.forget(host.consult_id)

    def ice_configuration(self, participant_id: str) -> dict[str, Any]:
        return ice_configuration(self._config.ice, participant_id, now=self._clock())

    def client_settings(self, role: str) -> dict[str, Any]:
        probe = self._config.probe
        may_share = is_allowed(
            Role(role),
            Action.SHARE_SCREEN,
            patient_may_share_screen=self._config.consult.patient_may_share_screen,
        )
        return {
            "may": {action.value: is_allowed(Role(role), action) for action in Action}
            | {Action.SHARE_SCREEN.value: may_share},
            "panel_schema": panel.schema(),
            "probe": {
                "max_rtt_ms": probe.max_rtt_ms,
                "max_loss_percent": probe.max_loss_percent,
                "min_kbps": probe.min_kbps,
            },
        }

    async def probe_answer(self, identity: Identity, offer: dict[str, Any]) -> dict[str, Any]:
        return await self._probes.answer(offer, self.ice_configuration(identity.participant_id))

    async def panel_snapshot(self, consult_id: str) -> dict[str, Any]:
        async with self._sessions() as session:
            return await panel_store.snapshot(session, consult_id)

    async def panel_events_since(
        self, consult_id: str, since: int, *, limit: int
    ) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            return await panel_store.events_since(session, consult_id, since, limit=limit)

    async def apply_mutation(self, identity: Identity, mutation: Any) -> dict[str, Any]:
        actor = mutations.Actor(
            participant_id=identity.participant_id, name=identity.display_name, role=identity.role
        )
        return await self._panel_writer.submit(identity.consult_id, actor, mutation)

    async def panel_history(self, identity: Identity, entity_id: str) -> dict[str, Any]:
        if not is_allowed(Role(identity.role), Action.READ_AUDIT):
            return {
                "ok": False,
                "error": {
                    "code": "forbidden",
                    "message": "A patient may not read the audit trail.",
                },
            }
        async with self._sessions() as session:
            events = await panel_store.history(session, identity.consult_id, entity_id)
        return {"ok": True, "entity_id": entity_id, "events": events}


def _who(identity: Identity) -> dict[str, str]:
    # Webhooks carry ids and roles, never names: names are PHI.
    return {"participant_id": identity.participant_id, "role": identity.role}
