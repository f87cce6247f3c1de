"""Group commit: many edits in one transaction, and two writers (as two server processes)
on one consult never fork its history."""

import asyncio
import time
from typing import Any

from models.mutations import Actor
from server.panel_writer import PanelWriter
from tests.conftest import PanelDb


def notes(mid: str, entity_id: str, text: str) -> dict[str, Any]:
    return {
        "mutation_id": mid,
        "op": "set",
        "entity": "medication",
        "entity_id": entity_id,
        "field": "notes",
        "value": text,
    }


async def add_med(db: PanelDb) -> dict[str, Any]:
    result = await db.mutate(
        db.actor("pharmacist"),
        mutation_id="setup",
        op="add",
        entity="medication",
        value={"name": "Metformin", "strength": "500 mg"},
    )
    entity: dict[str, Any] = result["entity"]
    return entity


async def test_concurrent_edits_commit_together_in_order(panel_db: PanelDb) -> None:
    med = await add_med(panel_db)
    writer = PanelWriter(panel_db.engine, panel_db.sessions, time.time)
    writer.start()
    try:
        actor = panel_db.actor("clinician")
        results = await asyncio.gather(
            *[
                writer.submit(panel_db.consult_id, actor, notes(f"n{i}", med["id"], f"note {i}"))
                for i in range(60)
            ]
        )
        assert [r["seq"] for r in results] == list(range(2, 62))
        again = await writer.submit(panel_db.consult_id, actor, notes("n5", med["id"], "x"))
        assert again == {**results[5], "replayed": True}
    finally:
        await writer.stop()
    events = await panel_db.events()
    assert [e["seq"] for e in events] == list(range(1, 62))
    assert (await panel_db.snapshot())["entities"][0]["data"]["notes"] == "note 59"


async def test_two_writers_on_one_consult_never_fork_the_history(panel_db: PanelDb) -> None:
    med = await add_med(panel_db)
    first, second = (PanelWriter(panel_db.engine, panel_db.sessions, time.time) for _ in range(2))
    first.start()
    second.start()
    pharmacist: Actor = panel_db.actor("pharmacist")
    clinician: Actor = panel_db.actor("clinician")
    try:
        # Both cache the consult's panel...
        await first.submit(panel_db.consult_id, pharmacist, notes("a1", med["id"], "a1"))
        await second.submit(panel_db.consult_id, clinician, notes("b1", med["id"], "b1"))
        # ...so each next edit meets a cache the other made stale.
        for i in range(2, 6):
            a = await first.submit(panel_db.consult_id, pharmacist, notes(f"a{i}", med["id"], "a"))
            b = await second.submit(panel_db.consult_id, clinician, notes(f"b{i}", med["id"], "b"))
            assert a["ok"] and b["ok"] and b["seq"] == a["seq"] + 1
        # A compare-and-set decided on stale memory would be wrong: the slow path re-reads.
        seen = (await panel_db.snapshot())["entities"][0]["versions"]["strength"]
        change = {"op": "set", "entity": "medication", "entity_id": med["id"],
                  "field": "strength", "base_version": seen}  # fmt: skip
        won = await first.submit(
            panel_db.consult_id, pharmacist, {**change, "mutation_id": "s1", "value": "850 mg"}
        )
        lost = await second.submit(
            panel_db.consult_id, clinician, {**change, "mutation_id": "s2", "value": "1 g"}
        )
        assert won["ok"] is True
        assert lost["error"]["code"] == "conflict" and lost["current"]["value"] == "850 mg"
    finally:
        await first.stop()
        await second.stop()
    events = await panel_db.events()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert (await panel_db.snapshot())["entities"][0]["data"]["strength"] == "850 mg"
