"""What people do with their media in a call, in real Chromium over the coturn relay:
switching camera and microphone without renegotiating, sharing a screen as a second video
track, going audio only, and the pre-join network check."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.browser.conftest import (
    frames_from,
    frames_keep_rising,
    join,
    open_page,
    poll,
    remote_video_tracks,
    self_id,
    two_in_a_call,
    wait_for_frames,
)
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser


async def local_track(page: Page, kind: str) -> dict[str, Any] | None:
    tracks: list[dict[str, Any]] = await page.evaluate("window.mtm.localTracks()")
    return next((track for track in tracks if track["kind"] == kind), None)


async def test_switching_camera_and_microphone_keeps_frames_flowing(
    server: RunningServer, browser: Browser
) -> None:
    pharmacist, clinician = await two_in_a_call(server, browser)
    pharmacist_id = await self_id(pharmacist)
    before = await local_track(pharmacist, "video")
    assert before is not None and before["label"] == "fake_device_0"
    # Mid-call switches must not renegotiate: count signaling state changes from now on.
    await pharmacist.evaluate(
        """() => { window.__renegotiations = 0;
        for (const pc of window.mtm.peers.values())
          pc.addEventListener('signalingstatechange', () => { window.__renegotiations += 1; }); }"""
    )

    # The in-call settings pick another camera and microphone.
    await pharmacist.get_by_test_id("settings-button").click()
    settings = pharmacist.get_by_test_id("settings-dialog")
    await settings.get_by_label("Camera", exact=True).select_option(label="fake_device_2")
    await poll(lambda: _label_is(pharmacist, "video", "fake_device_2"), what="camera via picker")
    after = await local_track(pharmacist, "video")
    assert after is not None and after["id"] != before["id"]
    await settings.get_by_label("Microphone", exact=True).select_option(label="Fake Audio Input 1")
    await poll(lambda: _label_is(pharmacist, "audio", "Fake Audio Input 1"), what="microphone")
    await settings.get_by_test_id("settings-close-button").click()
    await poll(lambda: frames_keep_rising(clinician, pharmacist_id), what="frames after picker")

    # Several cameras: the Switch camera button goes to the next one (here back to the first).
    await pharmacist.get_by_test_id("switch-camera-button").click()
    await poll(lambda: _label_is(pharmacist, "video", "fake_device_0"), what="next camera")
    await poll(lambda: frames_keep_rising(clinician, pharmacist_id), what="frames after switch")
    # The API does the same (a phone's front/back switch): reopening the camera is fine too.
    await pharmacist.evaluate("window.mtm.switchCamera()")
    await poll(lambda: _label_is(pharmacist, "video", "fake_device_1"), what="switch via API")
    await pharmacist.evaluate("window.mtm.switchCamera()")
    await poll(lambda: _label_is(pharmacist, "video", "fake_device_2"), what="switch via API")
    await poll(lambda: frames_keep_rising(clinician, pharmacist_id), what="frames after API")
    # None of this renegotiated: replaceTrack on the existing senders.
    assert await pharmacist.evaluate("window.__renegotiations") == 0


async def _label_is(page: Page, kind: str, label: str) -> bool:
    track = await local_track(page, kind)
    return track is not None and track["label"] == label


async def test_screen_share_is_a_second_video_track_at_every_receiver(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult()
    pages = {
        role: await open_page(browser, consult["links"][role])
        for role in ("pharmacist", "clinician", "patient")
    }
    for role, page in pages.items():
        await join(page, {"pharmacist": "Ana P.", "clinician": "Dr Lee", "patient": "Maria"}[role])
    for page in pages.values():
        await wait_for_frames(page, remotes=2)
    clinician = pages["clinician"]
    clinician_id = await self_id(clinician)
    receivers = [pages["pharmacist"], pages["patient"]]
    # Patients may not share by default: no button for them.
    assert not await pages["patient"].get_by_test_id("share-screen-button").is_visible()
    for page in receivers:
        assert await remote_video_tracks(page, clinician_id) == 1

    await clinician.get_by_test_id("share-screen-button").click()
    for page in receivers:
        await poll(partial(_tracks_are, page, clinician_id, 2), what="camera + screen")
        screen = page.get_by_test_id("screen-tile")
        await screen.wait_for(timeout=10_000)
        assert "Dr Lee's screen" in await screen.inner_text()
        # The camera keeps going next to the screen.
        await poll(partial(frames_keep_rising, page, clinician_id), what="frames")
    assert (
        await clinician.get_by_test_id("share-screen-button").get_attribute("aria-pressed")
        == "true"
    )

    await clinician.get_by_test_id("share-screen-button").click()  # Stop sharing
    for page in receivers:
        await poll(partial(_tracks_are, page, clinician_id, 1), what="camera only")
        await page.get_by_test_id("screen-tile").wait_for(state="detached", timeout=10_000)
    # Sharing again reuses the connection's screen slot.
    assert await clinician.evaluate("window.mtm.shareScreen()") is True
    for page in receivers:
        await poll(partial(_tracks_are, page, clinician_id, 2), what="shared again")


async def _tracks_are(page: Page, peer_id: str, count: int) -> bool:
    return await remote_video_tracks(page, peer_id) == count


async def test_audio_only_stops_sending_video_and_comes_back(
    server: RunningServer, browser: Browser
) -> None:
    pharmacist, clinician = await two_in_a_call(server, browser)
    pharmacist_id = await self_id(pharmacist)
    await pharmacist.get_by_test_id("settings-button").click()
    await pharmacist.get_by_test_id("audio-only-toggle").check()
    await pharmacist.wait_for_function("() => window.mtm.audioOnly === true")
    assert await local_track(pharmacist, "video") is None  # camera released
    assert await local_track(pharmacist, "audio") is not None
    assert "Audio only" in await pharmacist.get_by_test_id("status").inner_text()
    await pharmacist.get_by_test_id("settings-close-button").click()
    # No more frames reach the clinician; sound keeps its connection.
    await asyncio.sleep(1.0)
    stopped = await frames_from(clinician, pharmacist_id)
    await asyncio.sleep(1.5)
    assert await frames_from(clinician, pharmacist_id) <= stopped + 2
    assert await clinician.evaluate("window.mtm.peers.size") == 1

    assert await pharmacist.evaluate("window.mtm.setAudioOnly(false)") is False
    assert await local_track(pharmacist, "video") is not None
    await poll(lambda: frames_keep_rising(clinician, pharmacist_id), what="video back")


async def test_network_check_reports_figures(server: RunningServer, browser: Browser) -> None:
    consult = await server.create_consult(admit_patient=False)
    page = await open_page(browser, consult["links"]["patient"], width=390, height=844)
    # It runs on its own when the pre-join screen opens.
    await page.wait_for_function(
        "() => ['done', 'failed'].includes(window.mtm.networkCheck.state)", timeout=30_000
    )
    result = await page.evaluate("window.mtm.networkCheck")
    assert result["state"] == "done", result
    assert isinstance(result["rttMs"], int | float) and 0 <= result["rttMs"] < 300
    assert result["lossPercent"] == 0
    assert result["kbps"] > 750
    assert result["passed"] is True
    assert "ms" in await page.get_by_test_id("network-rtt").inner_text()
    assert "good" in (await page.get_by_test_id("network-summary").inner_text()).lower()
    # And again on request; the probe's connection is closed afterwards.
    await page.get_by_test_id("network-check-button").click()
    await page.wait_for_function("() => window.mtm.networkCheck.state === 'running'")
    await page.wait_for_function("() => window.mtm.networkCheck.state === 'done'", timeout=30_000)
    await poll(lambda: _no_probes(server), what="the server's probe closed")
    # Nothing of this made the page join or connect to anyone.
    assert await page.evaluate("window.mtm.state") == "prejoin"
    assert await page.evaluate("window.mtm.peers.size") == 0


async def _no_probes(server: RunningServer) -> bool:
    return server.state.probes.active == 0


async def test_prejoin_device_check_fits_a_phone(server: RunningServer, browser: Browser) -> None:
    consult = await server.create_consult()
    page = await open_page(browser, consult["links"]["patient"], width=390, height=844)
    await page.wait_for_function("() => window.mtm.networkCheck.state === 'done'", timeout=30_000)
    # Pickers list the fake devices; a live microphone level moves.
    await page.get_by_text("Camera, microphone and speaker").click()  # collapsed on a phone
    cameras = await page.get_by_test_id("camera-select").locator("option").all_inner_texts()
    assert cameras == ["fake_device_0", "fake_device_1", "fake_device_2"]
    assert (
        "Fake Audio Input 1"
        in await page.get_by_test_id("microphone-select").locator("option").all_inner_texts()
    )
    assert await page.get_by_test_id("speaker-select").is_visible()  # setSinkId exists here
    await page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=mic-level]').value) > 0.2",
        timeout=10_000,
    )
    await page.get_by_test_id("camera-select").select_option(label="fake_device_2")
    await poll(lambda: _label_is(page, "video", "fake_device_2"), what="preview camera")
    await page.get_by_text("Camera, microphone and speaker").click()
    assert await page.evaluate("document.scrollingElement.scrollHeight <= window.innerHeight + 1")
    join_box = await page.get_by_test_id("join-button").bounding_box()
    assert join_box is not None and join_box["y"] + join_box["height"] <= 844
    # The chosen camera is the one the call starts with.
    await join(page)
    assert (await local_track(page, "video") or {}).get("label") == "fake_device_2"


async def test_blocked_camera_gets_guidance_and_can_still_join(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult()
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    # As if the person had answered "Block" to the browser's camera question.
    await context.add_init_script(
        """navigator.mediaDevices.getUserMedia = async () => {
             throw new DOMException('Permission denied', 'NotAllowedError'); };"""
    )
    page = await context.new_page()
    await page.goto(consult["links"]["clinician"])
    message = page.get_by_test_id("media-message")
    await message.wait_for(timeout=10_000)
    text = await message.inner_text()
    assert "blocked" in text and "still join" in text and "Allow" in text
    assert await page.get_by_test_id("media-retry-button").is_visible()
    await page.get_by_test_id("media-retry-button").click()  # still blocked: same advice
    await message.wait_for()
    await join(page)
    assert await page.evaluate("window.mtm.localTracks()") == []
    assert await page.get_by_test_id("mic-button").is_disabled()
    assert await page.get_by_test_id("camera-button").is_disabled()
