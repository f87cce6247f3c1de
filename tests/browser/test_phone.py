"""The call on a phone (issue 12), with Playwright's Pixel 5 and iPhone 12 descriptors in
Chromium: the others large and one's own picture small, the medication list a sheet the
patient opens and closes, controls of at least 44 px and text of at least 16 px, and Leave
asks first."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Locator, Page, Playwright

from tests.browser.conftest import (
    join,
    open_on_device,
    open_page,
    poll,
    wait_for_frames,
    wait_for_state,
)
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser

PHONES = ["Pixel 5", "iPhone 12"]
MEDICATIONS = [
    {"name": "Metformin", "strength": "500 mg", "how_taken": "1 tablet twice daily"},
    {"name": "Lisinopril", "strength": "10 mg", "how_taken": "once a day"},
]


@pytest.mark.parametrize("device", PHONES)
async def test_leave_asks_first_on_a_phone(
    server: RunningServer, browser: Browser, playwright: Playwright, device: str
) -> None:
    consult = await server.create_consult(patient_name="Maria Lopez")
    ana = await open_page(browser, consult["links"]["pharmacist"])
    await join(ana, "Ana P.")
    maria = await open_on_device(playwright, browser, consult["links"]["patient"], device)
    await join(maria, "Maria Lopez")

    await maria.get_by_test_id("leave-button").tap()
    dialog = maria.get_by_test_id("leave-dialog")
    await dialog.wait_for()
    await maria.get_by_test_id("leave-cancel").tap()
    assert not await dialog.is_visible()
    assert await maria.evaluate("window.mtm.state") == "in-call", "Stay keeps the call"

    await maria.get_by_test_id("leave-button").tap()
    await maria.get_by_test_id("leave-confirm").tap()
    await wait_for_state(maria, "ended")


# Visible elements whose own text is under 16 px, and controls under 44 x 44 px (a checkbox
# counts by its label, which takes the tap).
SMALL_TEXT = """() => [...document.querySelectorAll("body *")].filter((el) => {
  if (!el.getClientRects().length || getComputedStyle(el).visibility === "hidden") return false;
  if (el.closest(".visually-hidden, [aria-hidden=true]")) return false;
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  return own && parseFloat(getComputedStyle(el).fontSize) < 15.9;
}).map((el) => `${el.tagName.toLowerCase()}.${el.className} `
             + `"${el.textContent.trim().slice(0, 30)}" ${getComputedStyle(el).fontSize}`)"""

SMALL_TARGETS = """() => [...document.querySelectorAll(
    "button, a[href], select, textarea, input:not([type=checkbox]), summary, label.checkbox")]
  .filter((el) => el.getClientRects().length && !el.closest(".visually-hidden")
    && getComputedStyle(el).visibility !== "hidden")
  .map((el) => [el, el.getBoundingClientRect()])
  .filter(([, box]) => box.width < 43.5 || box.height < 43.5)
  .map(([el, box]) => `${el.tagName.toLowerCase()}[${el.dataset.testid ?? el.className}] `
       + `"${el.textContent.trim().slice(0, 30)}" `
       + `${Math.round(box.width)}x${Math.round(box.height)}`)"""


async def _says(locator: Locator, text: str) -> bool:
    return await locator.inner_text() == text


async def sizes(page: Page) -> dict[str, list[str]]:
    return {
        "text under 16 px": await page.evaluate(SMALL_TEXT),
        "targets under 44 px": await page.evaluate(SMALL_TARGETS),
    }


@pytest.mark.parametrize("device", PHONES)
async def test_the_call_on_a_phone(
    server: RunningServer, browser: Browser, playwright: Playwright, device: str
) -> None:
    consult = await server.create_consult(patient_name="Maria Lopez", medications=MEDICATIONS)
    ana = await open_page(browser, consult["links"]["pharmacist"])
    lee = await open_page(browser, consult["links"]["clinician"])
    await join(ana, "Ana Pharmacist-Long")
    await join(lee, "Dr Leonora Whitfield")
    maria = await open_on_device(playwright, browser, consult["links"]["patient"], device)
    assert await sizes(maria) == {"text under 16 px": [], "targets under 44 px": []}
    await join(maria, "Maria Lopez")
    await wait_for_frames(maria, remotes=2)
    viewport = maria.viewport_size
    assert viewport is not None

    # The others large, one's own picture small in a corner of theirs.
    me = maria.locator(".tile--self")
    others = maria.locator(".tile:not(.tile--self):not(.tile--screen)")
    assert await others.count() == 2
    mine = await me.bounding_box()
    assert mine is not None
    for index in range(2):
        theirs = await others.nth(index).bounding_box()
        assert theirs is not None
        assert theirs["width"] >= 0.9 * viewport["width"]
        assert mine["width"] * mine["height"] < 0.25 * theirs["width"] * theirs["height"]
        name = others.nth(index).locator(".tile__name")
        assert await name.evaluate("n => n.scrollWidth <= n.clientWidth"), "a name cut short"

    # The medication list is a sheet, closed until the patient opens it.
    side = maria.locator("#side")
    assert not await side.is_visible()
    toggle = maria.get_by_test_id("panel-toggle")
    await toggle.tap()
    await maria.get_by_text("Lisinopril").first.wait_for()
    sheet = await side.bounding_box()
    assert sheet is not None and sheet["height"] >= 0.95 * viewport["height"]
    assert await toggle.get_attribute("aria-expanded") == "true"
    assert await sizes(maria) == {"text under 16 px": [], "targets under 44 px": []}
    await maria.get_by_test_id("panel-close").tap()
    assert not await side.is_visible()
    assert await maria.evaluate("document.activeElement.id") == "panel-toggle"
    assert await sizes(maria) == {"text under 16 px": [], "targets under 44 px": []}

    # A chat message while the sheet is closed: the toggle and the status line say so.
    await ana.get_by_test_id("chat-input").fill("Can you show me the bottle?")
    await ana.get_by_test_id("chat-send").click()
    await poll(lambda: _says(toggle, "Medication list (1 new)"), what="the unread count")
    assert "New chat message from Ana" in await maria.get_by_test_id("status").inner_text()
    await toggle.tap()
    await maria.get_by_test_id("chat-message").wait_for()
    assert await toggle.inner_text() == "Medication list"
