"""The panel's domain rules, through `apply_mutation` on a real database (no sockets)."""

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from models.mutations import MutationError
from tests.conftest import PanelDb
from tests.support.cells import CELL_PARAMS, SETUP_RECOMMENDATION, mutation_for

MED = {"name": "Metformin", "strength": "500 mg", "how_taken": "1 tablet twice daily"}


async def add_med(db: PanelDb, mutation_id: str = "add-1", **fields: Any) -> dict[str, Any]:
    result = await db.mutate(
        db.actor("pharmacist"),
        mutation_id=mutation_id,
        op="add",
        entity="medication",
        value={**MED, **fields},
    )
    assert result["ok"], result
    entity: dict[str, Any] = result["entity"]
    return entity


async def add_entity(db: PanelDb, entity: str, value: dict[str, Any], mid: str) -> dict[str, Any]:
    result = await db.mutate(
        db.actor("pharmacist"), mutation_id=mid, op="add", entity=entity, value=value
    )
    assert result["ok"], result
    created: dict[str, Any] = result["entity"]
    return created


async def test_add_then_set_records_events_with_gap_free_seq(panel_db: PanelDb) -> None:
    med = await add_med(panel_db)
    assert med["data"]["status"] == "active" and med["data"]["kind"] == "prescription"
    assert med["versions"]["strength"] == 1 == med["created_seq"]
    result = await panel_db.mutate(
        panel_db.actor("clinician", "Dr Lee"),
        mutation_id="c-1",
        op="set",
        entity="medication",
        entity_id=med["id"],
        field="strength",
        value="1000 mg",
        base_version=1,
    )
    assert result["ok"] and result["seq"] == 2
    assert result["entity"]["data"]["strength"] == "1000 mg"
    assert result["entity"]["versions"]["strength"] == 2
    assert result["entity"]["versions"]["name"] == 1
    assert result["entity"]["updated_by"] == {"name": "Dr Lee", "role": "clinician"}
    events = await panel_db.events()
    assert [e["seq"] for e in events] == [1, 2]
    last = events[-1]
    assert (last["field"], last["old"], last["new"]) == ("strength", "500 mg", "1000 mg")
    assert last["actor"]["role"] == "clinician" and last["mutation_id"] == "c-1"
    snap = await panel_db.snapshot()
    assert snap["seq"] == 2 and snap["entities"][0]["data"]["strength"] == "1000 mg"


async def test_compare_and_set_conflict_one_wins_other_gets_current(panel_db: PanelDb) -> None:
    med = await add_med(panel_db)
    seen = med["versions"]["strength"]
    first = await panel_db.mutate(
        panel_db.actor("pharmacist", "Ana"),
        mutation_id="a",
        op="set",
        entity="medication",
        entity_id=med["id"],
        field="strength",
        value="850 mg",
        base_version=seen,
    )
    second = await panel_db.mutate(
        panel_db.actor("clinician", "Dr Lee"),
        mutation_id="b",
        op="set",
        entity="medication",
        entity_id=med["id"],
        field="strength",
        value="1000 mg",
        base_version=seen,
    )
    assert first["ok"] is True
    assert second["ok"] is False
    assert second["error"]["code"] == "conflict"
    assert "Ana" in second["error"]["message"]
    assert second["current"]["value"] == "850 mg"
    assert second["current"]["version"] == first["seq"]
    snap = await panel_db.snapshot()
    assert snap["entities"][0]["data"]["strength"] == "850 mg"
    outcomes = [(e["new"], e["outcome"]) for e in await panel_db.events() if e["field"]]
    assert outcomes == [("850 mg", "applied"), ("1000 mg", "conflict")]


async def test_last_writer_wins_on_notes_and_loser_stays_in_log(panel_db: PanelDb) -> None:
    med = await add_med(panel_db)
    for mid, role, note in [("n1", "pharmacist", "first"), ("n2", "clinician", "second")]:
        result = await panel_db.mutate(
            panel_db.actor(role),
            mutation_id=mid,
            op="set",
            entity="medication",
            entity_id=med["id"],
            field="notes",
            value=note,
        )
        assert result["ok"]
    assert (await panel_db.snapshot())["entities"][0]["data"]["notes"] == "second"
    assert [e["new"] for e in await panel_db.events() if e["field"] == "notes"] == [
        "first",
        "second",
    ]


async def test_repeated_mutation_id_applies_once(panel_db: PanelDb) -> None:
    med = await add_med(panel_db)
    mutation = {
        "mutation_id": "dup",
        "op": "set",
        "entity": "medication",
        "entity_id": med["id"],
        "field": "notes",
        "value": "x",
    }
    first = await panel_db.mutate(panel_db.actor("pharmacist"), **mutation)
    again = await panel_db.mutate(panel_db.actor("pharmacist"), **mutation)
    assert again == {**first, "replayed": True}
    assert len(await panel_db.events()) == 2
    # The same id from another participant is a different mutation.
    other = await panel_db.mutate(panel_db.actor("clinician"), **mutation)
    assert other["ok"] and other["seq"] == 3


async def _mutation_for(db: PanelDb, action: str) -> dict[str, Any]:
    med = await add_med(db, mutation_id="setup-med")
    rec = await add_entity(db, "recommendation", SETUP_RECOMMENDATION, "setup-rec")
    return mutation_for(action, med, rec)


@pytest.mark.parametrize(("action", "role", "allowed"), CELL_PARAMS)
async def test_permission_cell_at_domain_level(
    panel_db: PanelDb, action: str, role: str, allowed: bool
) -> None:
    mutation = await _mutation_for(panel_db, action)
    before = await panel_db.snapshot()
    result = await panel_db.mutate(panel_db.actor(role), **mutation)
    if allowed:
        assert result["ok"], result
        assert (await panel_db.snapshot())["seq"] == before["seq"] + 1
    else:
        assert result == {"ok": False, "error": result["error"]}
        assert result["error"]["code"] == "forbidden"
        assert role in result["error"]["message"]
        assert await panel_db.snapshot() == before


async def test_decision_records_who_and_when(panel_db: PanelDb) -> None:
    rec = await add_entity(panel_db, "recommendation", {"text": "Stop ibuprofen"}, "r")
    assert rec["data"]["status"] == "proposed"
    result = await panel_db.mutate(
        panel_db.actor("clinician", "Dr Lee"),
        mutation_id="d",
        op="set",
        entity="recommendation",
        entity_id=rec["id"],
        field="status",
        value="declined",
        base_version=rec["versions"]["status"],
    )
    data = result["entity"]["data"]
    assert (data["status"], data["decided_by"], data["decided_by_role"]) == (
        "declined",
        "Dr Lee",
        "clinician",
    )
    assert data["decided_at"].startswith("2026-11-27T10:00:00")


BAD = [
    ({"op": "set", "field": "strength", "value": "1 g"}, "invalid_mutation"),  # no entity_id
    ({"op": "set", "entity_id": "m_nope", "field": "notes", "value": "x"}, "unknown_entity"),
    ({"op": "set", "entity_id": "MED", "field": "colour", "value": "red"}, "unknown_field"),
    ({"op": "set", "entity_id": "MED", "field": "name", "value": 42}, "invalid_value"),
    ({"op": "set", "entity_id": "MED", "field": "name", "value": ""}, "invalid_value"),
    ({"op": "set", "entity_id": "MED", "field": "name", "value": "x" * 201}, "invalid_value"),
    ({"op": "set", "entity_id": "MED", "field": "start_date", "value": 20260101},
     "invalid_value"),
    ({"op": "set", "entity_id": "MED", "field": "start_date", "value": "2026-02-30"},
     "invalid_value"),
    ({"op": "set", "entity_id": "MED", "field": "rxnorm_code", "value": "abc"}, "invalid_value"),
    ({"op": "set", "entity_id": "MED", "field": "kind", "value": "candy"}, "invalid_value"),
    ({"op": "set", "entity_id": "MED", "field": "status", "value": "active", "base_version": 1},
     "invalid_transition"),
    ({"op": "set", "entity_id": "MED", "field": "strength", "value": "1 g"},
     "base_version_required"),
    ({"op": "set", "entity_id": "MED", "field": "stop_date", "value": "2020-01-01",
      "base_version": 1}, "invalid_value"),
    ({"op": "move", "entity_id": "MED"}, "invalid_mutation"),
    ({"op": "move", "entity_id": "MED", "after": "m_nope"}, "unknown_entity"),
    ({"op": "add", "value": {"strength": "5 mg"}}, "invalid_value"),  # name is required
    ({"op": "add", "value": {"name": "X", "colour": "red"}}, "unknown_field"),
    ({"op": "add", "value": "Aspirin"}, "invalid_value"),
    ({"op": "add", "entity_id": "MED", "value": {"name": "X"}}, "duplicate_entity"),
    ({"op": "delete", "entity_id": "MED"}, "invalid_mutation"),
    ({"op": "set", "entity_id": "MED", "field": "notes", "value": "x", "extra": 1},
     "invalid_mutation"),
]  # fmt: skip


@pytest.mark.parametrize(("mutation", "code"), BAD)
async def test_bad_mutation_is_refused_and_changes_nothing(
    panel_db: PanelDb, mutation: dict[str, Any], code: str
) -> None:
    await add_med(panel_db, mutation_id="setup", start_date="2026-01-01")
    med_id = (await panel_db.snapshot())["entities"][0]["id"]
    if mutation.get("entity_id") == "MED":
        mutation = {**mutation, "entity_id": med_id}
    before = (await panel_db.snapshot(), await panel_db.events())
    mutation.setdefault("entity", "medication")
    try:
        result = await panel_db.mutate(panel_db.actor("pharmacist"), mutation_id="bad", **mutation)
    except MutationError as refused:  # parse errors are raised before any state is touched
        result = refused.result()
    assert result["ok"] is False
    assert result["error"]["code"] == code, result
    assert result["error"]["message"]
    assert (await panel_db.snapshot(), await panel_db.events()) == before


@pytest.mark.parametrize(
    ("start", "target", "ok"),
    [
        ("active", "stopped", True),
        ("active", "on-hold", True),
        ("on-hold", "active", True),
        ("stopped", "active", True),
        ("stopped", "on-hold", False),
        ("not-taken", "stopped", False),
        ("entered-in-error", "active", False),
    ],
)
async def test_status_transitions(panel_db: PanelDb, start: str, target: str, ok: bool) -> None:
    med = await add_med(panel_db, status=start)
    result = await panel_db.mutate(
        panel_db.actor("pharmacist"),
        mutation_id="t",
        op="set",
        entity="medication",
        entity_id=med["id"],
        field="status",
        value=target,
        base_version=med["versions"]["status"],
    )
    assert result["ok"] is ok, result
    if not ok:
        assert result["error"]["code"] == "invalid_transition"


async def test_problem_links_must_be_medications_of_this_consult(panel_db: PanelDb) -> None:
    result = await panel_db.mutate(
        panel_db.actor("pharmacist"),
        mutation_id="p",
        op="add",
        entity="problem",
        value={"category": "nonadherence", "medication_ids": ["m_elsewhere"]},
    )
    assert result["error"]["code"] == "invalid_value"


async def test_ordering_with_after_and_move(panel_db: PanelDb) -> None:
    a = await add_med(panel_db, "a", name="A")
    b = await add_med(panel_db, "b", name="B")
    first = await panel_db.mutate(
        panel_db.actor("pharmacist"),
        mutation_id="c",
        op="add",
        entity="medication",
        value={"name": "C"},
        after=None,
    )
    middle = await panel_db.mutate(
        panel_db.actor("pharmacist"),
        mutation_id="d",
        op="add",
        entity="medication",
        value={"name": "D"},
        after=a["id"],
    )
    assert first["ok"] and middle["ok"]
    names = [e["data"]["name"] for e in (await panel_db.snapshot())["entities"]]
    assert names == ["C", "A", "D", "B"]
    moved = await panel_db.mutate(
        panel_db.actor("clinician"),
        mutation_id="m",
        op="move",
        entity="medication",
        entity_id=b["id"],
        after=None,
    )
    assert moved["ok"]
    names = [e["data"]["name"] for e in (await panel_db.snapshot())["entities"]]
    assert names == ["B", "C", "A", "D"]


async def test_ended_consult_is_read_only(panel_db: PanelDb) -> None:
    med = await add_med(panel_db)
    async with panel_db.sessions() as session, session.begin():
        await session.execute(
            text("UPDATE consult SET status = 'ended' WHERE id = :id"),
            {"id": panel_db.consult_id},
        )
    result = await panel_db.mutate(
        panel_db.actor("pharmacist"),
        mutation_id="late",
        op="set",
        entity="medication",
        entity_id=med["id"],
        field="notes",
        value="x",
    )
    assert result["error"]["code"] == "consult_ended"


@pytest.mark.parametrize(
    "statement",
    ["UPDATE change_event SET new = NULL", "DELETE FROM change_event"],
)
async def test_history_cannot_be_edited(panel_db: PanelDb, statement: str) -> None:
    await add_med(panel_db)
    with pytest.raises(DBAPIError, match="append-only"):
        async with panel_db.sessions() as session, session.begin():
            await session.execute(text(statement))
    assert len(await panel_db.events()) == 1


def test_schema_describes_every_rule_clients_must_follow() -> None:
    from models.panel import MEDICATION_TRANSITIONS, schema

    described = schema()
    assert set(described) == {"medication", "problem", "recommendation", "plan_item"}
    medication = described["medication"]
    assert medication["create_action"] == "edit_medication"
    cas = {name for name, field in medication["fields"].items() if field["compare_and_set"]}
    assert cas == {"strength", "how_taken", "stop_date", "status", "patient_confirmation"}
    patient_fields = {
        name
        for name, field in medication["fields"].items()
        if field["action"] == "confirm_how_taken"
    }
    assert patient_fields == {
        "adherence",
        "patient_confirmation",
        "patient_how_taken",
        "patient_note",
    }
    assert medication["transitions"]["status"]["entered-in-error"] == []
    assert medication["transitions"]["status"]["active"] == sorted(MEDICATION_TRANSITIONS["active"])
    assert medication["to_confirm"] == {
        "statuses": ["active", "on-hold"],
        "confirmations": [None, "needs-confirming"],
        "bound_to": ["strength", "form", "how_taken", "status"],
    }
    assert described["recommendation"]["to_decide"] == {"statuses": ["no-response", "proposed"]}
    decision = described["recommendation"]["fields"]["status"]
    assert decision["action"] == "decide_recommendation" and decision["compare_and_set"]
