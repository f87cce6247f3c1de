"""Logs and metrics around signaling, without touching it.

`observed_backend` wraps each part of the `SignalingBackend` that signaling calls for
everything that matters (authenticate, join, admit, leave, end, every mutation, the probe):
each call becomes one structured log line (ids, outcome, duration; server/logs.py) and
moves the metrics. Each wrapper implements the same Protocol as what it wraps.
`CountedPresence` wraps the presence store, the one truth of who is connected, and keeps
this instance's connected-participants and live-consults gauges equal to its own entries.
`WriterMetrics` observes the panel writer's batches.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar

from documents.text import Language
from models.errors import Refused
from server.logs import log_event
from server.metrics import Metrics
from signaling.backend import (
    Admissions,
    ChatLine,
    ChatService,
    ClientSettings,
    ConsultState,
    IceConfiguration,
    Identity,
    JoinDecision,
    JsonObject,
    MediaService,
    MutationOutcome,
    PanelHistory,
    PanelService,
    PanelSnapshot,
    SessionDescription,
    SignalingBackend,
)
from signaling.presence import PresenceStore, PresentParticipant

log = logging.getLogger("server.events")

T = TypeVar("T")

# Participants whose connection dropped, remembered (bounded) so that their return counts
# as a reconnect.
_DROPPED_REMEMBERED = 10_000


def observed_backend(backend: SignalingBackend, metrics: Metrics) -> SignalingBackend:
    """`backend` with every call logged and counted."""
    return SignalingBackend(
        admissions=ObservedAdmissions(backend.admissions, metrics),
        panel=ObservedPanel(backend.panel, metrics),
        media=ObservedMedia(backend.media),
        chat=ObservedChat(backend.chat),
    )


async def _observed(
    event: str,
    call: Callable[[], Awaitable[T]],
    *,
    identity: Identity,
    target_id: str | None = None,
    outcome: Callable[[T], str] = lambda _result: "ok",
) -> T:
    started = time.perf_counter()
    fields: dict[str, Any] = {
        "consult_id": identity.consult_id,
        "participant_id": identity.participant_id,
        "role": identity.role,
        "target_id": target_id,
    }
    try:
        result = await call()
    except Refused as refused:
        log_event(
            log,
            event,
            outcome="refused",
            code=refused.code,
            duration_ms=(time.perf_counter() - started) * 1000,
            **fields,
        )
        raise
    except Exception as exc:
        log_event(
            log,
            event,
            outcome="error",
            code=type(exc).__name__,
            duration_ms=(time.perf_counter() - started) * 1000,
            level=logging.WARNING,
            **fields,
        )
        raise
    log_event(
        log,
        event,
        outcome=outcome(result),
        duration_ms=(time.perf_counter() - started) * 1000,
        **fields,
    )
    return result


class ObservedAdmissions:
    """`Admissions` that logs and counts every call it passes to `inner`."""

    def __init__(self, inner: Admissions, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self._dropped: OrderedDict[str, None] = OrderedDict()

    async def authenticate(self, token: str) -> Identity:
        started = time.perf_counter()
        try:
            identity = await self._inner.authenticate(token)
        except Refused as refused:
            log_event(
                log,
                "connect",
                outcome="refused",
                code=refused.code,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
            raise
        log_event(
            log,
            "connect",
            outcome="ok",
            consult_id=identity.consult_id,
            participant_id=identity.participant_id,
            role=identity.role,
            duration_ms=(time.perf_counter() - started) * 1000,
            level=logging.DEBUG,
        )
        return identity

    async def record_join(
        self,
        identity: Identity,
        display_name: str | None,
        *,
        consent_language: Language | None,
        present_elsewhere: bool,
    ) -> JoinDecision:
        returning = identity.participant_id in self._dropped
        self._dropped.pop(identity.participant_id, None)
        if present_elsewhere or returning:
            self._metrics.reconnects.inc()
        return await _observed(
            "join",
            lambda: self._inner.record_join(
                identity,
                display_name,
                consent_language=consent_language,
                present_elsewhere=present_elsewhere,
            ),
            identity=identity,
            outcome=lambda decision: "admitted" if decision.admitted else "waiting",
        )

    async def record_in_call(self, identity: Identity) -> ConsultState:
        return await _observed(
            "in-call", lambda: self._inner.record_in_call(identity), identity=identity
        )

    async def record_leave(
        self, identity: Identity, reason: str, *, at: dt.datetime | None = None
    ) -> None:
        if reason == "disconnected":
            self._dropped[identity.participant_id] = None
            self._dropped.move_to_end(identity.participant_id)
            while len(self._dropped) > _DROPPED_REMEMBERED:
                self._dropped.popitem(last=False)
        await _observed(
            "leave",
            lambda: self._inner.record_leave(identity, reason, at=at),
            identity=identity,
            outcome=lambda _none: reason,
        )

    async def record_seen(self, participant_ids: Collection[str]) -> None:
        await self._inner.record_seen(participant_ids)

    async def admit(self, host: Identity, participant_id: str) -> None:
        await _observed(
            "admit",
            lambda: self._inner.admit(host, participant_id),
            identity=host,
            target_id=participant_id,
        )

    async def deny(self, host: Identity, participant_id: str) -> None:
        await _observed(
            "deny",
            lambda: self._inner.deny(host, participant_id),
            identity=host,
            target_id=participant_id,
        )

    async def remove(self, host: Identity, participant_id: str) -> None:
        await _observed(
            "remove",
            lambda: self._inner.remove(host, participant_id),
            identity=host,
            target_id=participant_id,
        )

    async def end_consult(self, host: Identity, reason: str) -> None:
        await _observed("end-consult", lambda: self._inner.end_consult(host, reason), identity=host)

    async def ended_among(self, consult_ids: Collection[str]) -> dict[str, str]:
        return await self._inner.ended_among(consult_ids)


class ObservedMedia:
    """`MediaService` whose network probes are logged."""

    def __init__(self, inner: MediaService) -> None:
        self._inner = inner

    def ice_configuration(self, participant_id: str) -> IceConfiguration:
        return self._inner.ice_configuration(participant_id)

    def client_settings(self, role: str) -> ClientSettings:
        return self._inner.client_settings(role)

    async def probe_answer(
        self, identity: Identity, offer: SessionDescription
    ) -> SessionDescription:
        return await _observed(
            "probe", lambda: self._inner.probe_answer(identity, offer), identity=identity
        )


class ObservedChat:
    """`ChatService` whose messages are logged: ids and outcome, never the text."""

    def __init__(self, inner: ChatService) -> None:
        self._inner = inner

    async def post(self, identity: Identity, text: str) -> ChatLine:
        return await _observed("chat", lambda: self._inner.post(identity, text), identity=identity)

    async def recent(self, consult_id: str) -> list[ChatLine]:
        return await self._inner.recent(consult_id)


class ObservedPanel:
    """`PanelService` whose mutations, history reads and syncs are logged and counted."""

    def __init__(self, inner: PanelService, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def snapshot(self, consult_id: str) -> PanelSnapshot:
        return await self._inner.snapshot(consult_id)

    async def mutate(self, identity: Identity, mutation: object) -> MutationOutcome:
        started = time.perf_counter()
        outcome, code = "error", None
        try:
            result = await self._inner.mutate(identity, mutation)
            if result.refusal is None:
                outcome = "replayed" if result.replayed else "applied"
                if outcome == "applied":
                    self._metrics.edits_applied.inc()
            else:
                outcome = "refused"
                code = result.refusal.code
                self._metrics.mutations_refused.labels(code=code).inc()
            return result
        except Exception as exc:
            code = type(exc).__name__
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.ack_latency.observe(elapsed)
            log_event(
                log,
                "mutate",
                outcome=outcome,
                code=code,
                consult_id=identity.consult_id,
                participant_id=identity.participant_id,
                role=identity.role,
                duration_ms=elapsed * 1000,
                # Accepted edits are the steady stream: DEBUG; refusals and errors: INFO.
                level=logging.DEBUG if outcome in ("applied", "replayed") else logging.INFO,
            )

    async def history(self, identity: Identity, entity_id: str) -> PanelHistory:
        return await _observed(
            "panel-history",
            lambda: self._inner.history(identity, entity_id),
            identity=identity,
        )

    async def events_since(self, consult_id: str, since: int, *, limit: int) -> list[JsonObject]:
        started = time.perf_counter()
        events = await self._inner.events_since(consult_id, since, limit=limit)
        log_event(
            log,
            "panel-sync",
            outcome="ok",
            consult_id=consult_id,
            count=len(events),
            duration_ms=(time.perf_counter() - started) * 1000,
            level=logging.DEBUG,
        )
        return events


class WriterMetrics:
    """The panel writer's `BatchObserver`: batch sizes and commit times as histograms."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def batch(self, size: int) -> None:
        self._metrics.writer_batch_size.observe(size)

    def committed(self, seconds: float) -> None:
        self._metrics.writer_commit_seconds.observe(seconds)


class CountedPresence:
    """A `PresenceStore` that keeps `mtm_participants_connected` and `mtm_consults_live`
    equal to the connections this instance holds."""

    def __init__(self, inner: PresenceStore, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self._in_call: dict[str, int] = {}  # consult id -> participants in the call
        # What was counted: (consult, participant) -> (socket id, state).
        self._counted: dict[tuple[str, str], tuple[str, str]] = {}

    def _count(self, consult_id: str, state: str, delta: int) -> None:
        self._metrics.participants.labels(state=state).inc(delta)
        if state != "in-call":
            return
        in_call = self._in_call.get(consult_id, 0) + delta
        if in_call > 0:
            if consult_id not in self._in_call:
                self._metrics.consults_live.inc()
            self._in_call[consult_id] = in_call
        elif consult_id in self._in_call:
            del self._in_call[consult_id]
            self._metrics.consults_live.dec()

    async def add(self, consult_id: str, entry: PresentParticipant) -> PresentParticipant | None:
        previous = await self._inner.add(consult_id, entry)
        counted = self._counted.pop((consult_id, entry.participant_id), None)
        if counted is not None:
            self._count(consult_id, counted[1], -1)
        self._counted[(consult_id, entry.participant_id)] = (entry.sid, entry.state)
        self._count(consult_id, entry.state, +1)
        return previous

    async def remove(self, consult_id: str, participant_id: str, sid: str) -> bool:
        removed = await self._inner.remove(consult_id, participant_id, sid)
        counted = self._counted.get((consult_id, participant_id))
        if counted is not None and counted[0] == sid:
            del self._counted[(consult_id, participant_id)]
            self._count(consult_id, counted[1], -1)
        return removed

    async def update_media(
        self, consult_id: str, participant_id: str, sid: str, microphone: str, camera: str
    ) -> bool:
        return await self._inner.update_media(consult_id, participant_id, sid, microphone, camera)

    async def get(self, consult_id: str, participant_id: str) -> PresentParticipant | None:
        return await self._inner.get(consult_id, participant_id)

    async def roster(self, consult_id: str) -> list[PresentParticipant]:
        return await self._inner.roster(consult_id)

    def local(self) -> list[tuple[str, PresentParticipant]]:
        return self._inner.local()

    async def reap(self, instance: str) -> list[tuple[str, PresentParticipant]]:
        return await self._inner.reap(instance)  # another instance's entries: not counted here

    async def resync(self) -> None:
        await self._inner.resync()

    @property
    def needs_resync(self) -> bool:
        return self._inner.needs_resync

    async def refresh(self) -> None:
        await self._inner.refresh()
