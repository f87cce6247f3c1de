"""What each person is sent about the panel: a patient connection never receives anything
kept to the care team (join, panel-event, panel-sync, acknowledgements, history, after a
reconnect), and the record stays readable after the call (REST, the patient's page)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from signaling.wire import TextPacket
from tests.conftest import API_KEY, RunningServer, token_of
from tests.integration.test_panel_sync import database_view, seen_by
from tests.support.js_panel_client import JsPanelClient
from tests.support.sockets import RecordingClient, joined

SECRET = "SECRET"
INITIAL = [{"name": "Lisinopril", "strength": "10 mg", "how_taken": "1 tablet every morning"}]
_ids = itertools.count(1)


def tokens(consult: dict[str, Any]) -> dict[str, str]:
    return {role: token_of(link) for role, link in consult["links"].items()}


async def mutate(client: RecordingClient, **mutation: Any) -> dict[str, Any]:
    mutation.setdefault("mutation_id", f"m{next(_ids)}")
    ack: dict[str, Any] = await client.sio.call("mutate", mutation, timeout=5)
    return ack


async def build_private_work(
    pharmacist: RecordingClient, clinician: RecordingClient, med: dict[str, Any]
) -> dict[str, Any]:
    """A consult full of care-team-only work, plus a shared proposal the clinician accepts."""
    ids: dict[str, Any] = {}
    ack = await mutate(pharmacist, op="set", entity="medication", entity_id=med["id"],
                       field="notes", value=f"{SECRET}-NOTE check kidney function")  # fmt: skip
    assert ack["ok"], ack
    ack = await mutate(pharmacist, op="add", entity="problem",
                       value={"category": "adverse-drug-reaction", "severity": "high",
                              "description": f"{SECRET}-PROBLEM risk to kidney function",
                              "medication_ids": [med["id"]]})  # fmt: skip
    ids["problem"] = ack["entity"]["id"]
    ack = await mutate(pharmacist, op="add", entity="recommendation",
                       value={"text": f"{SECRET}-REC stop NSAIDs",
                              "problem_id": ids["problem"]})  # fmt: skip
    ids["private_rec"] = ack["entity"]["id"]
    private_plan = {"talked_about": f"{SECRET}-PLAN", "audience": "care-team"}
    ack = await mutate(pharmacist, op="add", entity="plan_item", value=private_plan)
    ack = await mutate(pharmacist, op="add", entity="plan_item",
                       value={"talked_about": "Take it in the morning"})  # fmt: skip
    ack = await mutate(pharmacist, op="add", entity="recommendation",
                       value={"text": "Increase to 20 mg", "medication_id": med["id"],
                              "change": "dose-change", "proposed": {"strength": "20 mg"},
                              "audience": "patient"})  # fmt: skip
    ids["shared_rec"] = ack["entity"]
    # A problem shared for a while, then kept to the care team again and edited.
    ack = await mutate(pharmacist, op="add", entity="problem",
                       value={"category": "nonadherence", "description": "missed doses",
                              "audience": "patient"})  # fmt: skip
    ids["flip"] = ack["entity"]["id"]
    ack = await mutate(pharmacist, op="set", entity="problem", entity_id=ids["flip"],
                       field="audience", value="care-team")  # fmt: skip
    ack = await mutate(pharmacist, op="set", entity="problem", entity_id=ids["flip"],
                       field="description", value=f"{SECRET}-AFTER")  # fmt: skip
    assert ack["ok"], ack
    return ids


async def test_a_patient_connection_never_receives_care_team_only_data(
    server: RunningServer,
) -> None:
    consult = await server.create_consult(medications=INITIAL)
    t = tokens(consult)
    sent_to_patient: list[Any] = []
    async with (
        joined(server.base_url, t["pharmacist"], "Ana P.") as (pharmacist, ph_ack),
        joined(server.base_url, t["clinician"], "Dr Lee") as (clinician, _),
        joined(server.base_url, t["patient"]) as (patient, pa_ack),
    ):
        sent_to_patient.append(pa_ack)
        med = ph_ack["panel"]["entities"][0]
        ids = await build_private_work(pharmacist, clinician, med)
        shared = ids["shared_rec"]
        accepted = await mutate(clinician, op="set", entity="recommendation",
                                entity_id=shared["id"], field="status", value="accepted",
                                base_version=shared["versions"]["status"])  # fmt: skip
        assert accepted["ok"] and len(accepted["effects"]) == 1
        final_seq = accepted["effects"][-1]["event"]["seq"]
        # The patient confirms the new dose; then reads everything it may.
        pa_med = (await patient.sio.call("panel-sync", {"since": 0}, timeout=5))["panel"]
        pa_med = next(e for e in pa_med["entities"] if e["type"] == "medication")
        assert pa_med["data"]["strength"] == "20 mg"
        confirm = await mutate(patient, op="set", entity="medication", entity_id=med["id"],
                               field="patient_confirmation", value="confirmed",
                               base_version=pa_med["versions"]["patient_confirmation"])  # fmt: skip
        assert confirm["ok"], confirm
        sent_to_patient.append(confirm)
        for since in (0, 1, 3, final_seq):
            sent_to_patient.append(
                await patient.sio.call("panel-sync", {"since": since}, timeout=5)
            )
        history = await patient.sio.call("panel-history", {"entity_id": ids["problem"]}, timeout=5)
        assert history["ok"] is False and history["error"]["code"] == "forbidden"
        sent_to_patient.append(history)
        # What the patient saw live: every seq, in order, nothing private.
        for _ in range(final_seq + 1 - pa_ack["panel"]["seq"]):
            sent_to_patient.append(await patient.wait_for("panel-event"))
        live = [m["event"] for m in sent_to_patient if isinstance(m, dict) and "event" in m
                and "entity" in m and "ok" not in m]  # fmt: skip
        assert [e["seq"] for e in live] == list(range(pa_ack["panel"]["seq"] + 1, final_seq + 2))
        ops = [e["op"] for e in live]
        assert "hidden" in ops and "remove" in ops and "derived" in ops
        sent_to_patient += patient.events
    # After a reconnect: the fresh join snapshot.
    async with joined(server.base_url, t["patient"]) as (patient, again):
        sent_to_patient.append(again)
        kinds = sorted(e["type"] for e in again["panel"]["entities"])
        assert kinds == ["medication", "plan_item", "recommendation"]
    text = repr(sent_to_patient)
    assert SECRET not in text
    assert "Increase to 20 mg" in text and "Take it in the morning" in text


async def test_every_copy_converges_with_hidden_and_removed_items(server: RunningServer) -> None:
    consult = await server.create_consult(medications=INITIAL)
    t = tokens(consult)
    # The patient's panel is the browser's store module, run by Node.
    patient = JsPanelClient(server.base_url, t["patient"])
    try:
        await patient.connect()
        async with (
            joined(server.base_url, t["pharmacist"]) as (pharmacist, ph_ack),
            joined(server.base_url, t["clinician"]) as (clinician, _),
        ):
            await build_private_work(pharmacist, clinician, ph_ack["panel"]["entities"][0])
            snapshot = await pharmacist.sio.call("panel-sync", {}, timeout=5)
        await patient.wait_for_seq(snapshot["panel"]["seq"])
        # What a patient's fresh join would bring (the server's own audience rule).
        assert patient.view() == seen_by("patient", await database_view(server, consult["id"]))
        assert SECRET not in repr(patient.entities)
    finally:
        await patient.close()


async def test_an_edit_everyone_may_see_is_encoded_once_for_the_whole_call(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/protocol.md: an event a patient may see whole is sent once to everyone; one kept
    from them is sent whole to the care team and as a stub to patients."""
    encoded: list[Any] = []
    encode = TextPacket.encode

    def counting_encode(packet: TextPacket) -> Any:
        if isinstance(packet.data, list) and packet.data[:1] == ["panel-event"]:
            encoded.append(packet.data[1])
        return encode(packet)

    monkeypatch.setattr(TextPacket, "encode", counting_encode)
    consult = await server.create_consult(medications=INITIAL)
    t = tokens(consult)
    async with (
        joined(server.base_url, t["pharmacist"]) as (pharmacist, ph_ack),
        joined(server.base_url, t["clinician"]) as (clinician, _),
        joined(server.base_url, t["patient"]) as (patient, _),
    ):
        med = ph_ack["panel"]["entities"][0]
        ack = await mutate(pharmacist, op="set", entity="medication", entity_id=med["id"],
                           field="patient_note", value="with breakfast")  # fmt: skip
        assert ack["ok"], ack
        for client in (clinician, patient):
            arrived = await client.wait_for("panel-event")
            assert arrived["event"]["seq"] == ack["seq"]
            assert arrived["entity"]["data"]["patient_note"] == "with breakfast"
        assert [payload["event"]["seq"] for payload in encoded] == [ack["seq"]]

        encoded.clear()
        ack = await mutate(pharmacist, op="set", entity="medication", entity_id=med["id"],
                           field="notes", value=f"{SECRET} check kidney function")  # fmt: skip
        assert ack["ok"], ack
        assert sorted(payload["event"]["op"] for payload in encoded) == ["hidden", "set"]


async def rest(server: RunningServer, path: str) -> tuple[int, Any]:
    async with server.http.get(
        f"{server.base_url}/api/v1{path}", headers={"X-API-Key": API_KEY}
    ) as response:
        return response.status, await response.json()


async def test_the_whole_record_is_readable_after_the_call(server: RunningServer) -> None:
    consult = await server.create_consult(medications=INITIAL)
    t = tokens(consult)
    async with (
        joined(server.base_url, t["pharmacist"]) as (pharmacist, ph_ack),
        joined(server.base_url, t["clinician"]) as (clinician, _),
    ):
        ids = await build_private_work(pharmacist, clinician, ph_ack["panel"]["entities"][0])
        await mutate(
            clinician,
            op="set",
            entity="recommendation",
            entity_id=ids["private_rec"],
            field="status",
            value="declined",
            base_version=0,
        )  # stale: a conflict
        rec = (await pharmacist.sio.call("panel-sync", {}, timeout=5))["panel"]["entities"]
        private = next(e for e in rec if e["id"] == ids["private_rec"])
        decided = await mutate(clinician, op="set", entity="recommendation",
                               entity_id=ids["private_rec"], field="status", value="declined",
                               base_version=private["versions"]["status"])  # fmt: skip
        assert decided["ok"]
    await server.end_consult(consult["id"])
    status, record = await rest(server, f"/consults/{consult['id']}/panel")
    assert status == 200
    assert [len(record[k]) for k in ("medications", "problems", "recommendations",
                                     "plan_items")] == [1, 2, 2, 2]  # fmt: skip
    declined = next(r for r in record["recommendations"] if r["id"] == ids["private_rec"])
    assert declined["data"]["status"] == "declined"
    assert declined["data"]["decided_by_role"] == "clinician"
    assert record["open"] == {
        "to_decide": [ids["shared_rec"]["id"]],
        "to_confirm": [record["medications"][0]["id"]],
    }
    # The change log, a page at a time, every seq once.
    seen: list[int] = []
    since: int | None = 0
    while since is not None:
        status, page = await rest(server, f"/consults/{consult['id']}/events?since={since}&limit=4")
        assert status == 200 and len(page["events"]) <= 4
        seen += [e["seq"] for e in page["events"]]
        since = page["next_since"]
    assert seen == list(range(1, record["seq"] + 1))
    for bad in ("-1", "abc", "1.5", "²", str(2**31)):
        status, body = await rest(server, f"/consults/{consult['id']}/events?since={bad}")
        assert status == 400 and body["error"]["code"] == "invalid_query"
    status, body = await rest(server, f"/consults/{consult['id']}/events?since=0&sinse=3")
    assert status == 400 and "sinse" in body["error"]["message"]
    for unknown in ("=null", "since=0&limit=4&page=2"):
        status, body = await rest(server, f"/consults/{consult['id']}/events?{unknown}")
        assert status == 400 and body["error"]["code"] == "invalid_query"
    # Past the end, up to the largest allowed: nothing (the database is not asked).
    for past in (record["seq"], 2**31 - 1):
        status, page = await rest(server, f"/consults/{consult['id']}/events?since={past}")
        assert status == 200 and page["events"] == [] and page["next_since"] is None
    status, body = await rest(server, "/consults/c_nope/panel")
    assert status == 404 and body["error"]["code"] == "consult_not_found"


async def test_the_patient_keeps_a_read_only_copy_after_the_end(server: RunningServer) -> None:
    medications = [*INITIAL, {"name": "<script>alert(1)</script>", "strength": "1 mg"}]
    consult = await server.create_consult(medications=medications)
    t = tokens(consult)
    async with (
        joined(server.base_url, t["pharmacist"]) as (pharmacist, ph_ack),
        joined(server.base_url, t["clinician"]) as (clinician, _),
    ):
        await build_private_work(pharmacist, clinician, ph_ack["panel"]["entities"][0])
    await server.end_consult(consult["id"])
    async with server.http.get(consult["links"]["patient"]) as page:
        assert page.status == 200
        html = await page.text()
    assert "Your medication list" in html and "Lisinopril" in html
    assert "Take it in the morning" in html and "Proposed — waiting for your doctor" in html
    assert "&lt;script&gt;" in html and "<script>alert" not in html
    assert SECRET not in html
    async with server.http.get(consult["links"]["pharmacist"]) as page:
        assert page.status == 410
    server.clock.advance(31 * 86_400)  # past consult.patient_access_days (30)
    async with server.http.get(consult["links"]["patient"]) as page:
        assert page.status == 410
