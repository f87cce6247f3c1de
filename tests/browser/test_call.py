"""Three people in a call from their links: real Chromium, real coturn, relay only."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Browser

from media.synthetic import SyntheticParticipant
from tests.browser.conftest import join, open_page, stats, wait_for_frames
from tests.conftest import RunningServer, token_of

pytestmark = pytest.mark.browser

ROLES = ("pharmacist", "clinician", "patient")


def assert_relay_on_loopback(entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        assert entry["localCandidateType"] == "relay", entry
        assert entry["remoteCandidateType"] == "relay", entry
        assert entry["localAddress"] == "127.0.0.1", entry
        assert entry["remoteAddress"] == "127.0.0.1", entry


async def test_three_way_call_decodes_video_through_turn_relay(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult(patient_name="Maria Lopez")
    pages = [await open_page(browser, consult["links"][role]) for role in ROLES]
    for page, role in zip(pages, ROLES, strict=True):
        await join(page, f"{role.title()} tester")
    for page in pages:
        await wait_for_frames(page, remotes=2)
    for page in pages:
        first = await stats(page)
        assert len(first) == 2
        assert_relay_on_loopback(first)
        await asyncio.sleep(1.0)
        later = {entry["peer"]: entry["framesDecoded"] for entry in await stats(page)}
        for entry in first:
            assert later[entry["peer"]] > entry["framesDecoded"], "video stopped flowing"
    # Each page shows a named tile per participant, and nothing scrolls.
    for page in pages:
        tiles = page.locator("[data-participant-id]")
        assert await tiles.count() == 3
        text = await page.get_by_test_id("tiles").inner_text()
        for role in ROLES:
            assert f"{role.title()} tester" in text
        assert await page.evaluate(
            "document.scrollingElement.scrollHeight <= window.innerHeight + 1"
        )


# Installed before the page's own scripts: what the page shows at the moment it marks
# "mtm:media-settled" (web/static/call.js), recorded inside that same call, and how often
# it read a connection's or a receiver's statistics before then.
AT_MEDIA_SETTLED = """(() => {
  let statsReads = 0;
  for (const type of [RTCPeerConnection, RTCRtpReceiver]) {
    const getStats = type.prototype.getStats;
    type.prototype.getStats = function (...args) {
      statsReads += 1;
      return getStats.apply(this, args);
    };
  }
  const mark = performance.mark.bind(performance);
  performance.mark = (name, options) => {
    if (name === "mtm:media-settled" && !window.__settled) {
      const remote = "[data-participant-id]:not(.tile--self) video";
      window.__settled = {
        remoteVideos: [...document.querySelectorAll(remote)].map((video) => video.readyState),
        panelDrawn: document.getElementById("side-panel").childElementCount > 0,
        statsReads,
      };
    }
    return mark(name, options);
  };
})()"""


async def test_what_can_wait_for_the_media_starts_after_the_others_video_shows(
    server: RunningServer, browser: Browser
) -> None:
    """The medication list, the speaking outline and the quality badges (which poll every
    connection's statistics) start once the other's first frame is shown, not while the
    call is being set up."""
    consult = await server.create_consult()
    pharmacist = await open_page(browser, consult["links"]["pharmacist"])
    await join(pharmacist, "Ana P.")
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    await context.add_init_script(script=AT_MEDIA_SETTLED)
    clinician = await context.new_page()
    await clinician.goto(consult["links"]["clinician"])
    await join(clinician, "Dr Lee")
    await clinician.wait_for_function("() => window.__settled", timeout=15_000)
    settled = await clinician.evaluate("window.__settled")
    # HTMLMediaElement.HAVE_CURRENT_DATA: the pharmacist's first frame is on screen.
    assert settled["remoteVideos"] and all(state >= 2 for state in settled["remoteVideos"])
    assert not settled["panelDrawn"]
    # Neither the speaking outline nor the quality badges polled while the call was set up.
    assert settled["statsReads"] == 0
    await clinician.locator("#side-panel > *").first.wait_for(timeout=10_000)


async def test_three_tiles_fit_a_phone_screen(server: RunningServer, browser: Browser) -> None:
    consult = await server.create_consult()
    pages = [await open_page(browser, consult["links"][role]) for role in ROLES[:2]]
    phone = await open_page(browser, consult["links"]["patient"], width=390, height=844)
    for page in [*pages, phone]:
        await join(page)
    await wait_for_frames(phone, remotes=2)
    assert await phone.evaluate("document.scrollingElement.scrollHeight <= window.innerHeight + 1")
    for tile in await phone.locator("[data-participant-id] video").all():
        box = await tile.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 844 + 1


async def test_aiortc_participant_and_chromium_exchange_frames(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult()
    page = await open_page(browser, consult["links"]["pharmacist"])
    await join(page)
    bot = SyntheticParticipant(server.base_url, token_of(consult["links"]["patient"]))
    await bot.start()
    try:
        assert bot.rtc_configuration.iceTransportPolicy.value == "relay"
        await bot.wait_for_frames(count=20, timeout=30)
        await wait_for_frames(page, remotes=1)
        assert_relay_on_loopback(await stats(page))
    finally:
        await bot.stop()


async def test_ended_consult_tears_down_media_in_the_browser(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult()
    pages = [await open_page(browser, consult["links"][role]) for role in ROLES[:2]]
    for page in pages:
        await join(page)
    await wait_for_frames(pages[0], remotes=1)
    await server.end_consult(consult["id"], reason="review complete")
    for page in pages:
        await page.wait_for_function("() => window.mtm.state === 'ended'", timeout=10_000)
        assert await page.evaluate("window.mtm.peers.size") == 0
    # The care team's links no longer work; the patient's opens their read-only record.
    again = await open_page(browser, consult["links"]["pharmacist"])
    assert "This consult has ended" in await again.content()
    record = await open_page(browser, consult["links"]["patient"])
    assert "Your medication list" in await record.content()
