"""The call on a phone (issue 12), with Playwright's Pixel 5 and iPhone 12 descriptors in
Chromium: Leave asks first."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Playwright

from tests.browser.conftest import join, open_on_device, open_page, wait_for_state
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser

PHONES = ["Pixel 5", "iPhone 12"]


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
