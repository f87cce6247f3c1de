"""Sentences of docs/protocol.md that a client author relies on, each proved here."""

from __future__ import annotations

from typing import Any

from tests.conftest import RunningServer, token_of
from tests.support.sockets import RecordingClient, joined


def tokens(consult: dict[str, Any]) -> dict[str, str]:
    return {role: token_of(link) for role, link in consult["links"].items()}


async def test_a_removed_participant_waits_to_be_admitted_again_whatever_their_role(
    server: RunningServer,
) -> None:
    # "remove": they must be admitted again, whatever their role (a removed clinician
    # waits in the waiting room too).
    t = tokens(await server.create_consult())
    async with joined(server.base_url, t["pharmacist"]) as (pharmacist, _):
        for role, waits in (("clinician", True), ("patient", True)):
            async with joined(server.base_url, t[role]) as (removed, ack):
                participant_id = ack["self"]["id"]
                answer = await pharmacist.sio.call(
                    "remove", {"participant_id": participant_id}, timeout=5
                )
                assert answer["ok"]
                await removed.wait_for("removed")
            again = RecordingClient()
            await again.connect(server.base_url, t[role])
            try:
                assert (await again.join())["waiting"] is waits
            finally:
                await again.sio.disconnect()
