"""Logs and metrics around signaling, without touching it.

`ObservedBackend` wraps the `SignalingBackend` that signaling calls for everything that
matters (authenticate, join, admit, leave, end, every mutation): each call becomes one
structured log line (ids, outcome, duration; server/logs.py) and moves the metrics.
`CountedPresence` wraps the presence store, the one truth of who is connected, and keeps
the connected-participants and live-consults gauges equal to it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from models.errors import Refused
from server.logs import log_event
from server.metrics import Metrics
from signaling.backend import Identity, JoinDecision, SignalingBackend
from signaling.presence import PresenceStore, PresentParticipant

log = logging.getLogger("server.events")

T = TypeVar("T")

# Participants whose connection dropped, remembered (bounded) so that their return counts
# as a reconnect.
_DROPPED_REMEMBERED = 10_000


class ObservedBackend:
    """A `SignalingBackend` that logs and counts every call it passes to `inner`."""

    def __init__(self, inner: SignalingBackend, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self._dropped: OrderedDict[str, None] = OrderedDict()

    async def _observed(
        self,
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
        consent_accepted: bool,
        present_elsewhere: bool,
    ) -> JoinDecision:
        returning = identity.participant_id in self._dropped
        self._dropped.pop(identity.participant_id, None)
        if present_elsewhere or returning:
            self._metrics.reconnects.inc()
        return await self._observed(
            "join",
            lambda: self._inner.record_join(
                identity,
                display_name,
                consent_accepted=consent_accepted,
                present_elsewhere=present_elsewhere,
            ),
            identity=identity,
            outcome=lambda decision: "admitted" if decision.admitted else "waiting",
        )

    async def record_in_call(self, identity: Identity) -> dict[str, Any]:
        return await self._observed(
            "in-call", lambda: self._inner.record_in_call(identity), identity=identity
        )

    async def record_leave(self, identity: Identity, reason: str) -> None:
        if reason == "disconnected":
            self._dropped[identity.participant_id] = None
            self._dropped.move_to_end(identity.participant_id)
            while len(self._dropped) > _DROPPED_REMEMBERED:
                self._dropped.popitem(last=False)
        await self._observed(
            "leave",
            lambda: self._inner.record_leave(identity, reason),
            identity=identity,
            outcome=lambda _none: reason,
        )

    async def admit(self, host: Identity, participant_id: str) -> None:
        await self._observed(
            "admit",
            lambda: self._inner.admit(host, participant_id),
            identity=host,
            target_id=participant_id,
        )

    async def deny(self, host: Identity, participant_id: str) -> None:
        await self._observed(
            "deny",
            lambda: self._inner.deny(host, participant_id),
            identity=host,
            target_id=participant_id,
        )

    async def remove(self, host: Identity, participant_id: str) -> None:
        await self._observed(
            "remove",
            lambda: self._inner.remove(host, participant_id),
            identity=host,
            target_id=participant_id,
        )

    async def end_consult(self, host: Identity, reason: str) -> None:
        await self._observed(
            "end-consult", lambda: self._inner.end_consult(host, reason), identity=host
        )

    def ice_configuration(self, participant_id: str) -> dict[str, Any]:
        return self._inner.ice_configuration(participant_id)

    def client_settings(self, role: str) -> dict[str, Any]:
        return self._inner.client_settings(role)

    async def probe_answer(self, identity: Identity, offer: dict[str, Any]) -> dict[str, Any]:
        return await self._observed(
            "probe", lambda: self._inner.probe_answer(identity, offer), identity=identity
        )

    async def panel_snapshot(self, consult_id: str) -> dict[str, Any]:
        return await self._inner.panel_snapshot(consult_id)

    async def apply_mutation(self, identity: Identity, mutation: Any) -> dict[str, Any]:
        started = time.perf_counter()
        outcome, code = "error", None
        try:
            result = await self._inner.apply_mutation(identity, mutation)
            if result.get("ok"):
                outcome = "replayed" if result.get("replayed") else "applied"
                if outcome == "applied":
                    self._metrics.edits_applied.inc()
            else:
                outcome = "refused"
                code = str(result.get("error", {}).get("code", "unknown"))
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

    async def panel_history(self, identity: Identity, entity_id: str) -> dict[str, Any]:
        return await self._observed(
            "panel-history",
            lambda: self._inner.panel_history(identity, entity_id),
            identity=identity,
            outcome=lambda result: "ok" if result.get("ok") else "refused",
        )

    async def panel_events_since(
        self, consult_id: str, since: int, *, limit: int
    ) -> list[dict[str, Any]]:
        started = time.perf_counter()
        events = await self._inner.panel_events_since(consult_id, since, limit=limit)
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


class CountedPresence:
    """A `PresenceStore` that keeps `mtm_participants_connected` and `mtm_consults_live`."""

    def __init__(self, inner: PresenceStore, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self._in_call: dict[str, int] = {}  # consult id -> participants in the call

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
        if previous is not None:
            self._count(consult_id, previous.state, -1)
        self._count(consult_id, entry.state, +1)
        return previous

    async def remove(self, consult_id: str, participant_id: str, sid: str) -> bool:
        entry = await self._inner.get(consult_id, participant_id)
        removed = await self._inner.remove(consult_id, participant_id, sid)
        if removed and entry is not None:
            self._count(consult_id, entry.state, -1)
        return removed

    async def get(self, consult_id: str, participant_id: str) -> PresentParticipant | None:
        return await self._inner.get(consult_id, participant_id)

    async def roster(self, consult_id: str) -> list[PresentParticipant]:
        return await self._inner.roster(consult_id)
