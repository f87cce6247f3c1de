"""Hypothesis fuzzes every client → server Socket.IO event with payloads built from the
documented payload models (signaling/payloads.py and the `mutate` table of
docs/protocol.md): each field gets a plausible value or any JSON at all, fields go missing
or appear unasked, roles vary. Whatever is sent:

- every event is answered (no hang) with `{"ok": ...}`; a refusal carries a documented
  code and never `internal_error`;
- nothing is logged as an error and no traceback is logged;
- a refused event leaves the database exactly as it was (a `conflict` is not a refusal:
  it is recorded in the audit log, as documented).

Bounded: a fixed number of examples and no deadline per example; ~30 s on this machine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from signaling import payloads
from tests.conftest import RunningServer, token_of
from tests.support.db_dump import dump
from tests.support.sockets import RecordingClient

ROLES = ("pharmacist", "clinician", "patient")
MEDICATIONS = [{"name": "Metformin", "strength": "500 mg", "how_taken": "1 tablet twice daily"}]

DOCUMENTED_CODES = {
    "invalid_payload",
    "not_joined",
    "unknown_event",
    "reserved_event",
    "rate_limited",
    "message_too_large",
    "forbidden",
    "not_waiting",
    "unknown_recipient",
    "unknown_participant",
    "consult_ended",
    "consent_required",
    "consult_full",
    "probe_busy",
    "invalid_mutation",
    "unknown_entity",
    "unknown_field",
    "invalid_value",
    "invalid_transition",
    "base_version_required",
    "duplicate_entity",
    "conflict",
}

# Stand-ins replaced, when sent, by the ids of the consult at hand.
IDS = st.sampled_from(["$pharmacist", "$clinician", "$patient", "$medication", "p_unknown"])

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def maybe(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes any JSON at all."""
    return st.one_of(plausible, plausible, ANY_JSON)


SDP_TYPES = st.sampled_from(["offer", "answer", "pranswer", "rollback"])
DESCRIPTION = st.fixed_dictionaries(
    {"type": maybe(SDP_TYPES)}, optional={"sdp": maybe(st.sampled_from(["", "v=0\r\n"]))}
)
CANDIDATE = st.none() | st.fixed_dictionaries(
    {"candidate": maybe(st.text(max_size=40))},
    optional={
        "sdpMid": maybe(st.text(max_size=3)),
        "sdpMLineIndex": maybe(st.integers(-1, 2000)),
        "usernameFragment": maybe(st.text(max_size=8)),
    },
)

# Plausible values for every field of the payload models, by field name.
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "display_name": st.text(max_size=90),
    "session": st.from_regex(r"\A[A-Za-z0-9_-]{8,64}\Z") | st.text(max_size=70),
    "consent": st.fixed_dictionaries({"accepted": maybe(st.just(True))}),
    "to": IDS,
    "description": DESCRIPTION,
    "candidate": CANDIDATE,
    "participant_id": IDS,
    "reason": st.text(max_size=600),
    "since": st.integers(min_value=0, max_value=2**32),
    "entity_id": IDS,
    "text": st.text(max_size=40) | st.sampled_from(["", "<b>x</b>", "x" * 1001]),
    "microphone": st.sampled_from(["on", "off", "muted", ""]),
    "camera": st.sampled_from(["on", "off", "audio-only", "video"]),
    "media": st.fixed_dictionaries(
        {},
        optional={
            "text": st.text(max_size=40) | st.sampled_from(["", "<b>x</b>", "x" * 1001]),
            "microphone": st.sampled_from(["on", "off", "x"]),
            "camera": st.sampled_from(["on", "off", "audio-only", 1]),
        },
    ),
}

EVENT_MODELS: dict[str, type[BaseModel]] = {
    "join": payloads.JoinPayload,
    "probe": payloads.ProbePayload,
    "leave": payloads.EmptyPayload,
    "signal": payloads.SignalPayload,
    "admit": payloads.ParticipantPayload,
    "admit-all": payloads.EmptyPayload,
    "deny": payloads.ParticipantPayload,
    "remove": payloads.ParticipantPayload,
    "end-consult": payloads.EndPayload,
    "panel-sync": payloads.PanelSyncPayload,
    "panel-history": payloads.PanelHistoryPayload,
    "media": payloads.MediaPayload,
    "chat": payloads.ChatPayload,
    "chat-history": payloads.EmptyPayload,
}


def from_model(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    fields = {name: maybe(FIELD_VALUES[name]) for name in model.model_fields}
    documented = st.fixed_dictionaries({}, optional=fields)
    with_extra = st.builds(
        lambda base, key, value: {**base, key: value},
        documented,
        st.text(min_size=1, max_size=8),
        ANY_JSON,
    )
    return st.one_of(documented, documented, documented, with_extra, ANY_JSON)


PANEL_FIELDS = st.sampled_from(
    ["name", "strength", "how_taken", "notes", "status", "start_date", "stop_date", "kind"]
)
MUTATION = st.fixed_dictionaries(
    {
        "mutation_id": maybe(st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)),
        "op": maybe(st.sampled_from(["add", "set", "move"])),
        "entity": maybe(st.sampled_from(["medication", "problem", "recommendation", "plan_item"])),
    },
    optional={
        "entity_id": maybe(IDS),
        "field": maybe(PANEL_FIELDS),
        "value": maybe(
            st.text(max_size=40)
            | st.sampled_from(["active", "stopped", "2024-01-01", "2024-01-01T00:00:00Z"])
            | st.fixed_dictionaries(
                {"name": st.text(max_size=20)}, optional={"strength": st.text(max_size=10)}
            )
        ),
        "base_version": maybe(st.integers(min_value=0, max_value=10)),
        "after": maybe(st.none() | IDS),
    },
)

# Shaped right, so that the domain's own checks (values, references, versions, roles) run.
WELL_FORMED_MUTATION = st.fixed_dictionaries(
    {
        "mutation_id": st.from_regex(r"[A-Za-z0-9_-]{1,16}", fullmatch=True),
        "op": st.sampled_from(["set", "set", "add", "move"]),
        "entity": st.sampled_from(["medication", "medication", "problem", "plan_item"]),
        "entity_id": st.sampled_from(["$medication", "$medication", "m_new", "$patient"]),
        "field": PANEL_FIELDS,
        "value": maybe(
            st.sampled_from(["active", "stopped", "on-hold", "2024-01-01", "10 mg", ""])
            | st.fixed_dictionaries({"name": st.text(min_size=1, max_size=20)})
        ),
    },
    optional={
        "base_version": maybe(st.integers(min_value=0, max_value=10)),
        "after": st.none() | st.sampled_from(["$medication", "m_new"]),
    },
)

EVENTS = st.one_of(
    *(st.tuples(st.just(name), from_model(model)) for name, model in EVENT_MODELS.items()),
    st.tuples(st.just("mutate"), MUTATION | ANY_JSON),
    st.tuples(st.just("mutate"), MUTATION),
    st.tuples(st.just("mutate"), WELL_FORMED_MUTATION),
    st.tuples(st.just("mutate"), WELL_FORMED_MUTATION),
    st.tuples(st.text(max_size=12), ANY_JSON),  # names this server does not have
)


def substitute(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str) and value in ids:
        return ids[value]
    if isinstance(value, list):
        return [substitute(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, ids) for key, item in value.items()}
    return value


@dataclass
class Consult:
    """One consult with its three participants joined, replaced when an event ends it."""

    clients: dict[str, RecordingClient]
    ids: dict[str, str]
    usable: bool = True

    @classmethod
    async def open(cls, server: RunningServer) -> Consult:
        consult = await server.create_consult(medications=MEDICATIONS)
        clients: dict[str, RecordingClient] = {}
        ids = {"$medication": consult["medications"][0]["id"]}
        for role in ROLES:
            client = RecordingClient()
            await client.connect(server.base_url, token_of(consult["links"][role]))
            ack = await client.join()
            assert ack["ok"] and not ack["waiting"], ack
            clients[role] = client
            ids[f"${role}"] = ack["self"]["id"]
        return cls(clients, ids)

    async def close(self) -> None:
        for client in self.clients.values():
            if client.sio.connected:
                await client.sio.disconnect()

    def alive(self) -> bool:
        return self.usable and all(c.sio.connected for c in self.clients.values())


async def left_or_refused(client: RecordingClient) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            if client.disconnected.is_set():
                return {"ok": True}
            errors = [data for name, data in client.events if name == "error"]
            if errors:
                return {"ok": False, "error": errors[-1]}
            await asyncio.sleep(0.01)


@pytest.fixture
def generous_limits(config_overrides: dict[str, dict[str, Any]]) -> None:
    # The fuzzer sends far more than a person would; rate limits have their own tests.
    config_overrides["signaling"] = {"events_per_second": 10_000, "event_burst": 10_000}


@pytest.fixture
async def consults(server: RunningServer) -> AsyncIterator[list[Consult]]:
    """The consult the examples share (hypothesis runs them all within one test)."""
    holder: list[Consult] = []
    yield holder
    for consult in holder:
        await consult.close()


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(role=st.sampled_from(ROLES), event=EVENTS)
async def test_every_event_with_generated_payloads(
    generous_limits: None,
    server: RunningServer,
    consults: list[Consult],
    caplog: pytest.LogCaptureFixture,
    role: str,
    event: tuple[str, Any],
) -> None:
    caplog.set_level(logging.INFO)
    if not consults or not consults[0].alive():
        if consults:
            await consults.pop().close()
        consults.append(await Consult.open(server))
    consult = consults[0]
    name, raw = event
    payload = substitute(raw, consult.ids)
    client = consult.clients[role]
    client.events.clear()  # what earlier examples got
    before = await dump(server.state.sessions)
    if name == "leave":
        # No acknowledgement once it works: the server closes the connection.
        await client.sio.emit(name, payload)
        answer = await left_or_refused(client)
    else:
        answer = await client.sio.call(name, payload, timeout=10)
    assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool), answer
    # `--hypothesis-show-statistics` shows how the answers were spread.
    hypothesis.event("ok" if answer["ok"] else str(answer["error"].get("code")))
    if answer["ok"]:
        if name in ("end-consult", "leave", "remove", "deny"):
            consult.usable = False
    else:
        code = answer["error"]["code"]
        assert code in DOCUMENTED_CODES, answer
        if code != "conflict":
            after = await dump(server.state.sessions)
            if name == "mutate":
                # A refused mutation keeps its answer as the receipt of its mutation_id, so
                # that a repeat gets the same answer (docs/protocol.md, `mutate`).
                kept = before.pop("mutation_receipt")
                added = [row for row in after.pop("mutation_receipt") if row not in kept]
                assert [row[3] for row in added] in ([], [answer]), (payload, added)
            assert after == before, (name, payload, answer)
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert problems == [], (name, payload, problems)
    assert "Traceback" not in caplog.text
