"""The waiting room's knock (issue 12), in real Chromium: the clinician sees who waits and
admits them; a chime and the tab title's count tell those who may admit; the chime can be
turned off, and stays off on the next visit. Once the patient is in, the care team's
visit timer runs."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page

from tests.browser.conftest import join, open_page, poll, start_join, wait_for_state
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser


async def chimes(page: Page) -> int:
    result: int = await page.evaluate("window.mtm.chimes")
    return result


async def test_a_clinician_hears_the_knock_and_admits(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult(admit_patient=False)
    clinician = await open_page(browser, consult["links"]["clinician"])
    await join(clinician, "Dr Lee")
    title = await clinician.title()
    assert await chimes(clinician) == 0
    patient = await open_page(browser, consult["links"]["patient"], width=390, height=844)
    await start_join(patient, "Maria Lopez")
    await wait_for_state(patient, "waiting")

    person = clinician.get_by_test_id("waiting-person")
    await person.wait_for()
    assert "Maria Lopez" in await person.inner_text()
    await poll(lambda: _chimed(clinician, 1), what="a chime")
    assert await clinician.title() == f"(1) {title}"

    # No visit yet: the timer runs from the patient's entry into the call.
    assert not await clinician.get_by_test_id("visit-timer").is_visible()
    await person.get_by_role("button", name="Admit Maria Lopez").click()
    await wait_for_state(patient, "in-call")
    await poll(lambda: _titled(clinician, title), what="the title without the count")
    assert await chimes(clinician) == 1
    timer = clinician.get_by_test_id("visit-timer")
    await timer.wait_for()
    assert re.fullmatch(r"Visit\s+0:0\d", (await timer.inner_text()).strip())
    await poll(lambda: _ticked(clinician), what="the timer counting", timeout=5)
    assert not await patient.get_by_test_id("visit-timer").is_visible(), "the care team's only"


async def test_the_chime_can_be_turned_off_and_stays_off(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult(admit_patient=False)
    pharmacist = await open_page(browser, consult["links"]["pharmacist"])
    await join(pharmacist, "Ana P.")
    await pharmacist.get_by_test_id("settings-button").click()
    toggle = pharmacist.get_by_test_id("knock-sound-toggle")
    assert await toggle.is_checked()
    await toggle.uncheck()
    await pharmacist.get_by_test_id("settings-close-button").click()

    patient = await open_page(browser, consult["links"]["patient"])
    await start_join(patient, "Maria Lopez")
    await wait_for_state(patient, "waiting")
    await pharmacist.get_by_test_id("waiting-person").wait_for()
    await poll(lambda: _title_counts(pharmacist), what="the count in the title")
    assert await chimes(pharmacist) == 0

    # The same browser, on its next visit: still off.
    await pharmacist.reload()
    await pharmacist.wait_for_function("window.mtm && window.mtm.state")
    assert not await pharmacist.get_by_test_id("knock-sound-toggle").is_checked()


async def _chimed(page: Page, count: int) -> bool:
    return await chimes(page) == count


async def _ticked(page: Page) -> bool:
    text = await page.get_by_test_id("visit-timer-time").inner_text()
    return text not in ("0:00", "0:01")


async def _titled(page: Page, title: str) -> bool:
    return await page.title() == title


async def _title_counts(page: Page) -> bool:
    return (await page.title()).startswith("(1) ")


# Headless Chromium never puts a page in the background, so the page's `document.hidden`
# is steered from the test; the Notification constructor is the browser's own, watched.
BACKGROUND = """
(() => {
  window.__hidden = false;
  Object.defineProperty(Document.prototype, "hidden", { get: () => window.__hidden });
  const Real = window.Notification;
  window.__notifications = [];
  window.Notification = class extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notifications.push({ title, body: options?.body ?? "" });
    }
  };
})();
"""


async def test_a_knock_while_the_tab_is_hidden_notifies_without_a_name(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult(admit_patient=False)
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    await context.grant_permissions(["notifications"], origin=server.base_url)
    await context.add_init_script(BACKGROUND)
    pharmacist = await context.new_page()
    await pharmacist.goto(consult["links"]["pharmacist"])
    await join(pharmacist, "Ana P.")
    # Allowed by the browser: the switch starts on.
    await pharmacist.get_by_test_id("settings-button").click()
    assert await pharmacist.get_by_test_id("knock-notify-toggle").is_checked()
    await pharmacist.get_by_test_id("settings-close-button").click()

    # In front: the chime and the title tell; no notification.
    first = await open_page(browser, consult["links"]["patient"])
    await start_join(first, "Maria Lopez")
    await pharmacist.get_by_test_id("waiting-person").wait_for()
    await poll(lambda: _chimed(pharmacist, 1), what="a chime")
    assert await pharmacist.evaluate("window.__notifications") == []
    await pharmacist.get_by_role("button", name="Deny Maria Lopez").click()
    await wait_for_state(first, "denied")
    await first.close()

    # In the background: a notification, which never names the person.
    await pharmacist.evaluate("window.__hidden = true")
    again = await open_page(browser, consult["links"]["patient"])
    await start_join(again, "Maria Lopez")
    await poll(lambda: _notified(pharmacist), what="a notification")
    [notification] = await pharmacist.evaluate("window.__notifications")
    assert notification == {
        "title": "MTM Consult",
        "body": "Someone is waiting to join the consult.",
    }
    assert "Maria" not in notification["body"]


async def _notified(page: Page) -> bool:
    return bool(await page.evaluate("window.__notifications.length"))
