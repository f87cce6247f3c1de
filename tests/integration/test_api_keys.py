"""API keys: hashed in the settings, rotated with two keys at once, named for participants
by their display name, and rate-limited one key at a time."""

from __future__ import annotations

from typing import Any

import pytest

from server.api_keys import authenticate, display_name_of, hash_key, key_entry, new_key
from server.config import ApiKeyEntry
from tests.conftest import API_KEY, NORTH_DISPLAY_NAME, OTHER_API_KEY, RunningServer

CONSULT = {"patient_name": "Maria Lopez", "scheduled_at": "2026-12-01T09:30:00-05:00"}
ROTATED_KEY = new_key()


async def create(server: RunningServer, key: str) -> tuple[int, dict[str, Any], Any]:
    async with server.http.post(
        f"{server.base_url}/api/v1/consults", json=CONSULT, headers={"X-API-Key": key}
    ) as response:
        return response.status, await response.json(), response.headers


async def read(server: RunningServer, key: str, consult_id: str) -> int:
    async with server.http.get(
        f"{server.base_url}/api/v1/consults/{consult_id}", headers={"X-API-Key": key}
    ) as response:
        return response.status


def test_settings_hold_the_hash_never_the_key(config: Any) -> None:
    dumped = config.model_dump_json()
    assert API_KEY not in dumped and OTHER_API_KEY not in dumped
    assert hash_key(API_KEY) in dumped


def test_new_keys_are_long_random_and_hash_to_the_documented_form() -> None:
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    for key in keys:
        assert key.startswith("mtm_") and len(key) == len("mtm_") + 43  # 32 random bytes
        assert hash_key(key).startswith("sha256:") and len(hash_key(key)) == 7 + 64


def test_authenticate_finds_the_entry_and_only_it() -> None:
    north = key_entry("north", "North Clinic", API_KEY)
    south = key_entry("south", "South Clinic", OTHER_API_KEY)
    client = authenticate([north, south], OTHER_API_KEY)
    assert client is not None
    assert (client.clinic, client.display_name) == ("south", "South Clinic")
    assert API_KEY not in repr(client) and client.key_id == south.hash[7:19]
    for wrong in ["", " " + API_KEY, API_KEY + " ", API_KEY.upper(), south.hash, "\udcff"]:
        assert authenticate([north, south], wrong) is None


def test_display_name_of_a_clinic_without_a_request() -> None:
    entries = [
        key_entry("north", "North Clinic", API_KEY),
        key_entry("north", "North Clinic", ROTATED_KEY),
        key_entry("south", "South Clinic", OTHER_API_KEY),
    ]
    assert display_name_of(entries, "south") == "South Clinic"
    assert display_name_of(entries, "north") == "North Clinic"
    assert display_name_of(entries, "west") is None


def test_hash_in_upper_case_is_the_same_key() -> None:
    entry = ApiKeyEntry(clinic="north", display_name="N", hash=hash_key(API_KEY).upper())
    client = authenticate([entry], API_KEY)
    assert client is not None and client.clinic == "north"


@pytest.mark.parametrize(
    "config_overrides",
    [
        {
            "api": {
                "keys": [
                    key_entry("north", NORTH_DISPLAY_NAME, API_KEY).model_dump(),
                    key_entry("north", NORTH_DISPLAY_NAME, ROTATED_KEY).model_dump(),
                ]
            }
        }
    ],
)
async def test_rotation_two_keys_of_one_clinic_work_at_once(server: RunningServer) -> None:
    status, made_with_old, _ = await create(server, API_KEY)
    assert status == 201
    status, made_with_new, _ = await create(server, ROTATED_KEY)
    assert status == 201
    # Both keys act as the same clinic: each reads what the other made.
    assert await read(server, ROTATED_KEY, made_with_old["id"]) == 200
    assert await read(server, API_KEY, made_with_new["id"]) == 200


async def test_another_clinics_key_does_not_reach_its_consults(server: RunningServer) -> None:
    _, consult, _ = await create(server, API_KEY)
    assert await read(server, OTHER_API_KEY, consult["id"]) == 404


async def test_display_name_is_what_participants_see(server: RunningServer) -> None:
    consult = await server.create_consult(medications=[{"name": "Metformin"}])
    assert consult["medications"][0]["updated_by"] == {
        "name": NORTH_DISPLAY_NAME,
        "role": "clinic",
    }


@pytest.mark.parametrize(
    "config_overrides", [{"api": {"rate_limit_burst": 3, "rate_limit_per_minute": 30}}]
)
async def test_rate_limit_per_key_answers_429_with_retry_after(server: RunningServer) -> None:
    for _ in range(3):
        status, _, _ = await create(server, API_KEY)
        assert status == 201
    status, body, headers = await create(server, API_KEY)
    assert status == 429
    assert body == {
        "error": {
            "status": 429,
            "code": "rate_limited",
            "message": "Too many requests with this API key; retry in 2 s.",
        }
    }
    assert headers["Retry-After"] == "2"
    # Reads count too; another key has a budget of its own.
    assert await read(server, API_KEY, "c_anything") == 429
    status, _, _ = await create(server, OTHER_API_KEY)
    assert status == 201
    # 30 a minute: one call back every 2 s.
    server.clock.advance(1.9)
    assert (await create(server, API_KEY))[0] == 429
    server.clock.advance(0.2)
    assert (await create(server, API_KEY))[0] == 201
    assert (await create(server, API_KEY))[0] == 429


@pytest.mark.parametrize("config_overrides", [{"api": {"rate_limit_burst": 2}}])
async def test_refused_key_does_not_spend_anyones_budget(server: RunningServer) -> None:
    for _ in range(5):
        assert (await create(server, "not-a-key-0123456789abcdef"))[0] == 401
    assert (await create(server, API_KEY))[0] == 201
    assert (await create(server, API_KEY))[0] == 201
    assert (await create(server, API_KEY))[0] == 429


@pytest.mark.parametrize(
    "config_overrides",
    [
        {
            "api": {
                "rate_limit_burst": 1,
                "keys": [
                    key_entry("north", NORTH_DISPLAY_NAME, API_KEY).model_dump(),
                    key_entry("north", NORTH_DISPLAY_NAME, ROTATED_KEY).model_dump(),
                ],
            }
        }
    ],
)
async def test_each_key_of_one_clinic_has_its_own_budget(server: RunningServer) -> None:
    assert (await create(server, API_KEY))[0] == 201
    assert (await create(server, API_KEY))[0] == 429
    assert (await create(server, ROTATED_KEY))[0] == 201
