"""What the *other* pages show of a participant (issue 12), in real Chromium over the coturn
relay: muted, camera off (initials), audio only (a label, no frozen frame), joining muted
or with the camera off, a dropped connection as "Reconnecting…" (not "left") until the
grace period ends, leaving by closing the tab, and the active speaker's outline."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page

from tests.browser.conftest import (
    join,
    open_page,
    poll,
    self_id,
    two_in_a_call,
    wait_for_frames,
)
from tests.conftest import RunningServer, relay_through
from tests.support.coturn import Coturn

pytestmark = pytest.mark.browser


@pytest.fixture
def config_overrides(turn: Coturn, request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    grace = getattr(request, "param", 30)
    return {
        **relay_through(turn),
        "testing": {"expose_hooks": True},
        "consult": {"reconnect_grace_seconds": grace},
    }


def tile_of(page: Page, participant_id: str) -> Locator:
    return page.locator(f'[data-testid="tile"][data-participant-id="{participant_id}"]')


async def call_of_three(server: RunningServer, browser: Browser) -> dict[str, Page]:
    consult = await server.create_consult(patient_name="Maria Lopez")
    pages = {role: await open_page(browser, consult["links"][role]) for role in consult["links"]}
    await join(pages["pharmacist"], "Ana P.")
    await join(pages["clinician"], "Dr Lee")
    await join(pages["patient"], "Maria Lopez")
    for page in pages.values():
        await wait_for_frames(page, remotes=2)
    return pages


async def shows(tile: Locator, attribute: str, value: str) -> None:
    await poll(
        lambda: _attribute_is(tile, attribute, value), what=f"tile {attribute}={value}", timeout=10
    )


async def _attribute_is(tile: Locator, attribute: str, value: str) -> bool:
    return await tile.get_attribute(attribute) == value


async def test_others_see_muted_camera_off_and_audio_only(
    server: RunningServer, browser: Browser
) -> None:
    pages = await call_of_three(server, browser)
    ana = pages["pharmacist"]
    ana_id = await self_id(ana)
    others = [tile_of(pages[role], ana_id) for role in ("clinician", "patient")]

    mic = ana.get_by_test_id("mic-button")
    assert await mic.inner_text() == "Mute"
    await mic.click()
    assert await mic.inner_text() == "Unmute"
    assert await mic.get_attribute("aria-pressed") == "true"
    for tile in others:
        await shows(tile, "data-microphone", "off")
        assert await tile.get_by_test_id("muted-indicator").inner_text() == "Muted"
        assert await tile.get_by_test_id("muted-indicator").is_visible()
    assert await tile_of(ana, ana_id).get_by_test_id("muted-indicator").is_visible()

    camera = ana.get_by_test_id("camera-button")
    assert await camera.inner_text() == "Turn camera off"
    await camera.click()
    assert await camera.inner_text() == "Turn camera on"
    for tile in others:
        await shows(tile, "data-video", "off")
        assert await tile.get_by_test_id("camera-indicator").inner_text() == "Camera off"
        # Initials for everyone, not a black picture.
        placeholder = tile.locator(".tile__placeholder")
        assert await placeholder.is_visible()
        assert await placeholder.inner_text() == "AP"
        assert await tile.locator("video").evaluate("v => getComputedStyle(v).visibility") == (
            "hidden"
        )

    await camera.click()
    for tile in others:
        await shows(tile, "data-video", "on")
        assert not await tile.get_by_test_id("camera-indicator").is_visible()
    # Audio only: no video is sent, and the others see a label rather than the last frame.
    await ana.evaluate("window.mtm.setAudioOnly(true)")
    for tile in others:
        await shows(tile, "data-camera", "audio-only")
        assert await tile.get_by_test_id("camera-indicator").inner_text() == "Audio only"
        assert await tile.get_attribute("data-video") == "off"
        assert await tile.locator("video").evaluate("v => getComputedStyle(v).visibility") == (
            "hidden"
        )

    await mic.click()
    for tile in others:
        await shows(tile, "data-microphone", "on")
        assert not await tile.get_by_test_id("muted-indicator").is_visible()


async def test_joining_muted_with_the_camera_off(server: RunningServer, browser: Browser) -> None:
    consult = await server.create_consult()
    ana = await open_page(browser, consult["links"]["pharmacist"])
    lee = await open_page(browser, consult["links"]["clinician"])
    await join(ana, "Ana P.")
    await lee.get_by_test_id("join-muted-checkbox").check()
    await lee.get_by_test_id("join-camera-off-checkbox").check()
    await join(lee, "Dr Lee")
    lee_id = await self_id(lee)
    tile = tile_of(ana, lee_id)
    await shows(tile, "data-microphone", "off")
    assert await tile.get_attribute("data-camera") == "off"
    assert await tile.get_attribute("data-video") == "off"
    assert await lee.get_by_test_id("mic-button").inner_text() == "Unmute"
    assert await lee.get_by_test_id("camera-button").inner_text() == "Turn camera on"
    tracks = await lee.evaluate("window.mtm.localTracks()")
    assert {track["kind"]: track["enabled"] for track in tracks} == {
        "audio": False,
        "video": False,
    }
    # Turning them on later reaches the others as usual.
    await lee.get_by_test_id("mic-button").click()
    await shows(tile, "data-microphone", "on")


async def test_a_dropped_connection_shows_reconnecting_and_then_back(
    server: RunningServer, browser: Browser
) -> None:
    ana, lee = await two_in_a_call(server, browser)
    tile = tile_of(ana, await self_id(lee))
    await lee.context.set_offline(True)
    await shows(tile, "data-presence", "reconnecting")
    assert "Reconnecting" in await tile.locator(".tile__badge").inner_text()
    status = ana.get_by_test_id("status")
    assert "left" not in await status.inner_text()
    await lee.context.set_offline(False)
    await shows(tile, "data-presence", "here")
    await poll(lambda: _says(status, "Dr Lee is back."), what="back", timeout=20)


@pytest.mark.parametrize("config_overrides", [2], indirect=True)
async def test_left_only_after_the_grace_period(server: RunningServer, browser: Browser) -> None:
    ana, lee = await two_in_a_call(server, browser)
    tile = tile_of(ana, await self_id(lee))
    await lee.context.set_offline(True)
    await shows(tile, "data-presence", "reconnecting")
    await poll(lambda: _gone(tile), what="tile removed after the grace period", timeout=15)
    assert await ana.get_by_test_id("status").inner_text() == "Dr Lee left."


async def test_closing_the_tab_is_leaving_at_once(server: RunningServer, browser: Browser) -> None:
    ana, lee = await two_in_a_call(server, browser)
    tile = tile_of(ana, await self_id(lee))
    await lee.close()
    # The grace period is 30 s here: only a `leave` removes the tile this soon.
    await poll(lambda: _gone(tile), what="tile removed", timeout=8)
    assert await ana.get_by_test_id("status").inner_text() == "Dr Lee left."


async def test_the_speaker_is_outlined_for_the_others(
    server: RunningServer, browser: Browser
) -> None:
    ana, lee = await two_in_a_call(server, browser)
    tile = tile_of(lee, await self_id(ana))
    # Chromium's fake microphone beeps: Ana "speaks".
    await shows(tile, "data-speaking", "true")
    await ana.get_by_test_id("mic-button").click()
    await shows(tile, "data-speaking", "false")
    for _ in range(10):  # muted: never outlined again
        await asyncio.sleep(0.3)
        assert await tile.get_attribute("data-speaking") == "false"


async def _says(status: Locator, text: str) -> bool:
    return await status.inner_text() == text


async def _gone(tile: Locator) -> bool:
    return await tile.count() == 0
