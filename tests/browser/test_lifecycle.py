"""The consult's life in real browsers: consent, the waiting room, admit / deny / remove,
ending for everyone, reloads within the grace period, and a link opened in a second tab.
Real Chromium pages, real coturn, relay only, everything on 127.0.0.1."""

from __future__ import annotations

import asyncio
from urllib.parse import urljoin

import pytest
from playwright.async_api import Browser, Page

from tests.browser.conftest import (
    frames_keep_rising,
    join,
    open_page,
    poll,
    self_id,
    start_join,
    stats,
    wait_for_frames,
    wait_for_state,
)
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser


async def peer_count(page: Page) -> int:
    result: int = await page.evaluate("window.mtm.peers.size")
    return result


async def local_tracks(page: Page) -> list[dict[str, object]]:
    result: list[dict[str, object]] = await page.evaluate("window.mtm.localTracks()")
    return result


async def playing_previews(page: Page) -> list[str]:
    """The camera previews that hold the camera now (a hidden <video> still takes every frame)."""
    return list(
        await page.evaluate(
            """() => ["preview", "waiting-preview"].filter((id) =>
                document.getElementById(id).srcObject?.getVideoTracks().length)"""
        )
    )


async def wait_for_waiting_room(page: Page, count: int) -> None:
    await page.wait_for_function(
        "n => window.mtm.waitingRoom.length === n", arg=count, timeout=10_000
    )


async def test_consent_is_asked_before_a_patient_may_join(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult()
    patient = await open_page(browser, consult["links"]["patient"])
    consent = patient.get_by_test_id("consent-checkbox")
    # The consent text comes from the server, and Join waits for "I agree" (a real label).
    assert "telehealth" in await patient.get_by_test_id("consent-text").inner_text()
    assert await patient.get_by_label("I agree").count() == 1
    assert await patient.get_by_test_id("join-button").is_disabled()
    await consent.check()
    assert await patient.get_by_test_id("join-button").is_enabled()
    await consent.uncheck()
    # Pharmacists are not asked.
    pharmacist = await open_page(browser, consult["links"]["pharmacist"])
    assert not await pharmacist.get_by_test_id("consent").is_visible()
    # A join without consent (the page hid its consent, as if the config changed since it
    # loaded) is refused by the server, and the page asks for the consent again.
    await patient.evaluate("document.getElementById('consent').hidden = true")
    assert await patient.evaluate("window.mtm.join('Maria Lopez')") == "error"
    assert await consent.is_visible()
    assert not await consent.is_checked()
    assert "consent" in (await patient.get_by_test_id("status").inner_text()).lower()
    await join(patient)
    assert await peer_count(patient) == 0  # alone in the call


async def test_patient_waits_until_admitted_and_only_then_exchanges_media(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult(admit_patient=False)
    pharmacist = await open_page(browser, consult["links"]["pharmacist"])
    await join(pharmacist, "Ana P.")
    patient = await open_page(browser, consult["links"]["patient"], width=390, height=844)
    await start_join(patient, "Maria Lopez")
    await wait_for_state(patient, "waiting")
    assert "let you in shortly" in await patient.get_by_test_id("waiting-message").inner_text()
    # The local preview stays on while waiting, in the waiting room's preview only.
    assert [t["kind"] for t in await local_tracks(patient)] == ["audio", "video"]
    assert await playing_previews(patient) == ["waiting-preview"]

    # The pharmacist sees who waits, with Admit and Deny.
    await wait_for_waiting_room(pharmacist, 1)
    person = pharmacist.get_by_test_id("waiting-person")
    assert "Maria Lopez" in await person.inner_text()
    assert await person.get_by_role("button", name="Admit Maria Lopez").is_visible()
    assert await person.get_by_role("button", name="Deny Maria Lopez").is_visible()

    # No peer connection, no frames, no tile while waiting.
    for _ in range(4):
        assert await peer_count(patient) == 0
        assert await peer_count(pharmacist) == 0
        assert await stats(pharmacist) == []
        await asyncio.sleep(0.5)
    assert await pharmacist.locator("[data-participant-id]").count() == 1

    await person.get_by_test_id("admit-button").click()
    await wait_for_state(patient, "in-call")
    await wait_for_frames(patient, remotes=1)
    await wait_for_frames(pharmacist, remotes=1)
    await wait_for_waiting_room(pharmacist, 0)
    assert not await pharmacist.get_by_test_id("waiting-room").is_visible()
    # In the call the self tile shows the camera: no hidden preview holds its frames.
    assert await playing_previews(patient) == []
    assert await playing_previews(pharmacist) == []
    assert await patient.evaluate("window.mtm.states") == [
        "prejoin",
        "joining",
        "waiting",
        "in-call",
    ]


async def test_denied_patient_gets_no_media(server: RunningServer, browser: Browser) -> None:
    consult = await server.create_consult(admit_patient=False)
    pharmacist = await open_page(browser, consult["links"]["pharmacist"])
    await join(pharmacist)
    patient = await open_page(browser, consult["links"]["patient"])
    await start_join(patient, "Maria Lopez")
    await wait_for_state(patient, "waiting")
    await wait_for_waiting_room(pharmacist, 1)
    await pharmacist.get_by_test_id("deny-button").click()

    await wait_for_state(patient, "denied")
    assert await patient.get_by_test_id("notice-title").is_visible()
    assert "could not let you" in await patient.get_by_test_id("notice-message").inner_text()
    assert await peer_count(patient) == 0
    assert await local_tracks(patient) == []  # camera and microphone released
    await wait_for_waiting_room(pharmacist, 0)
    await asyncio.sleep(1.0)
    assert await peer_count(pharmacist) == 0
    assert await stats(pharmacist) == []


async def test_removed_participant_leaves_every_page(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult()
    pharmacist = await open_page(browser, consult["links"]["pharmacist"])
    clinician = await open_page(browser, consult["links"]["clinician"])
    await join(pharmacist)
    await join(clinician, "Dr Lee")
    await wait_for_frames(pharmacist, remotes=1)
    # Only pharmacists get Remove buttons (and End for everyone).
    assert await clinician.get_by_test_id("remove-button").count() == 0
    assert not await clinician.get_by_test_id("end-consult-button").is_visible()

    await pharmacist.get_by_role("button", name="Remove Dr Lee from the consult").click()
    dialog = pharmacist.get_by_test_id("remove-dialog")
    assert "Dr Lee" in await dialog.inner_text()
    await dialog.get_by_test_id("remove-cancel").click()  # a confirm step, not a hair trigger
    assert await peer_count(pharmacist) == 1
    await pharmacist.get_by_test_id("remove-button").click()
    await dialog.get_by_test_id("remove-confirm").click()

    await wait_for_state(clinician, "removed")
    assert await peer_count(clinician) == 0
    assert await local_tracks(clinician) == []
    await pharmacist.wait_for_function("() => window.mtm.peers.size === 0", timeout=10_000)
    assert await pharmacist.locator("[data-participant-id]").count() == 1


async def test_ending_the_consult_tears_down_every_page_including_the_waiting_room(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult(admit_patient=False)
    pharmacist = await open_page(browser, consult["links"]["pharmacist"])
    clinician = await open_page(browser, consult["links"]["clinician"])
    patient = await open_page(browser, consult["links"]["patient"])
    await join(pharmacist)
    await join(clinician)
    await start_join(patient)
    await wait_for_state(patient, "waiting")
    await wait_for_frames(clinician, remotes=1)
    # The pharmacist previews the patient's summary from the call, in a new tab.
    async with pharmacist.context.expect_page() as opened:
        await pharmacist.get_by_test_id("preview-summary-link").click()
    preview = await opened.value
    await preview.wait_for_load_state()
    assert "Personal Medication List" in await preview.content()
    await preview.close()
    assert await patient.get_by_test_id("preview-summary-link").count() == 0

    await pharmacist.get_by_test_id("end-consult-button").click()
    dialog = pharmacist.get_by_test_id("end-consult-dialog")
    assert await dialog.is_visible()
    await dialog.get_by_test_id("end-reason-input").fill("Review complete")
    await dialog.get_by_test_id("end-consult-confirm").click()

    for page in (pharmacist, clinician, patient):
        await wait_for_state(page, "ended", timeout=10_000)
        assert await peer_count(page) == 0
        assert await local_tracks(page) == []
    # In the call: the reason beside a read-only medication list.
    for page in (pharmacist, clinician):
        assert "Review complete" in await page.get_by_test_id("ended-message").inner_text()
        assert await page.evaluate("window.mtmPanel.readOnly") is True
    # In the waiting room: the reason on its own.
    assert "Review complete" in await patient.get_by_test_id("notice-message").inner_text()
    # The care team's links no longer work; the patient's opens their read-only record.
    again = await open_page(browser, consult["links"]["pharmacist"])
    assert "This consult has ended" in await again.content()
    record = await open_page(browser, consult["links"]["patient"])
    assert "Your medication list" in await record.content()
    # ...where they download their summary.
    href = await record.get_by_test_id("download-summary").get_attribute("href")
    assert href is not None
    download = await record.request.get(urljoin(record.url, href))
    assert download.status == 200 and download.headers["content-type"] == "application/pdf"
    assert (await download.body()).startswith(b"%PDF-")


async def test_reloaded_pages_are_back_in_the_call_without_readmission(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult(admit_patient=False)
    pharmacist = await open_page(browser, consult["links"]["pharmacist"])
    patient = await open_page(browser, consult["links"]["patient"])
    await join(pharmacist, "Ana P.")
    await start_join(patient, "Maria Lopez")
    await wait_for_waiting_room(pharmacist, 1)
    await pharmacist.get_by_test_id("admit-button").click()
    await wait_for_state(patient, "in-call")
    await wait_for_frames(pharmacist, remotes=1)

    # The pharmacist reloads: straight back in, media flows both ways again.
    await pharmacist.reload()
    await wait_for_state(pharmacist, "in-call")
    await wait_for_frames(pharmacist, remotes=1)
    pharmacist_id = await self_id(pharmacist)
    await poll(lambda: frames_keep_rising(patient, pharmacist_id), what="frames at the patient")

    # The admitted patient reloads within the grace period: no waiting room this time.
    await patient.reload()
    await wait_for_state(patient, "in-call")
    assert await patient.evaluate("window.mtm.states") == ["prejoin", "joining", "in-call"]
    assert await pharmacist.evaluate("window.mtm.waitingRoom.length") == 0
    await wait_for_frames(patient, remotes=1)
    patient_id = await self_id(patient)
    await poll(lambda: frames_keep_rising(pharmacist, patient_id), what="frames at the pharmacist")
    # The name chosen before the reload is kept.
    tile = pharmacist.locator(f'[data-participant-id="{patient_id}"]')
    assert "Maria Lopez" in await tile.inner_text()


async def test_a_second_tab_replaces_the_first(server: RunningServer, browser: Browser) -> None:
    consult = await server.create_consult()
    first = await open_page(browser, consult["links"]["pharmacist"])
    clinician = await open_page(browser, consult["links"]["clinician"])
    await join(first, "Ana P.")
    await join(clinician)
    await wait_for_frames(clinician, remotes=1)

    # The same link in another tab of the same browser.
    second = await first.context.new_page()
    await second.goto(consult["links"]["pharmacist"])
    await join(second, "Ana P.")

    await wait_for_state(first, "replaced")
    assert await peer_count(first) == 0
    assert await local_tracks(first) == []
    assert "another window" in (await first.get_by_test_id("notice-message").inner_text())
    await wait_for_frames(second, remotes=1)
    pharmacist_id = await self_id(second)
    await poll(lambda: frames_keep_rising(clinician, pharmacist_id), what="frames from the new tab")
    assert await peer_count(clinician) == 1
