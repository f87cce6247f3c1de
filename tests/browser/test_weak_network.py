"""A network check that fails (here: an impossible round-trip threshold) gives advice,
still lets the person join, and suggests audio only once in the call; every remote tile
carries a connection-quality indicator in words, not colour alone."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser

from tests.browser.conftest import join, open_page, self_id, wait_for_frames
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser


@pytest.fixture
def config_overrides(config_overrides: dict[str, Any]) -> dict[str, Any]:
    # Loopback answers in a few milliseconds: no real network passes a 1 µs threshold.
    return {**config_overrides, "probe": {"max_rtt_ms": 0.001}}


async def test_failed_network_check_advises_and_suggests_audio_only(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult()
    pharmacist = await open_page(browser, consult["links"]["pharmacist"])
    patient = await open_page(browser, consult["links"]["patient"], width=390, height=844)
    await patient.wait_for_function(
        "() => window.mtm.networkCheck.state === 'done'", timeout=30_000
    )
    result = await patient.evaluate("window.mtm.networkCheck")
    assert result["passed"] is False and result["rttMs"] >= 0 and result["kbps"] > 0
    advice = await patient.get_by_test_id("network-advice").inner_text()
    assert "Move closer to your Wi-Fi router" in advice
    assert "You can still join" in advice
    assert "Slow" in await patient.get_by_test_id("network-rtt").inner_text()

    await join(pharmacist, "Ana P.")
    await join(patient, "Maria Lopez")
    suggestion = patient.get_by_test_id("audio-only-suggestion")
    await suggestion.wait_for(timeout=5_000)
    await wait_for_frames(pharmacist, remotes=1)

    # Quality per remote tile: bars plus a word.
    patient_id = await self_id(patient)
    indicator = pharmacist.locator(f'[data-participant-id="{patient_id}"]').get_by_test_id(
        "quality-indicator"
    )
    await indicator.wait_for(timeout=10_000)
    assert (await indicator.inner_text()).split()[0] in {"Good", "Fair", "Poor"}
    assert await indicator.get_attribute("data-quality") in {"good", "fair", "poor"}

    await suggestion.get_by_test_id("audio-only-accept").click()
    await patient.wait_for_function("() => window.mtm.audioOnly === true")
    assert not await suggestion.is_visible()
    kinds = [track["kind"] for track in await patient.evaluate("window.mtm.localTracks()")]
    assert kinds == ["audio"]
    assert "Audio only" in await patient.get_by_test_id("status").inner_text()
