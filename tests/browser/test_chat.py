"""The call's chat (issue 12), in real Chromium: everyone sees what is written, as text
(markup stays characters), a page that reloads reads the conversation again, and an empty
message is refused on the page."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page

from tests.browser.conftest import (
    join,
    open_page,
    open_sheet,
    poll,
    two_in_a_call,
    wait_for_state,
)
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser


async def texts(page: Page) -> list[str]:
    result: list[str] = await page.locator(
        '[data-testid="chat-message"] .chat__text'
    ).all_inner_texts()
    return result


async def test_everyone_reads_the_chat_as_text(server: RunningServer, browser: Browser) -> None:
    ana, lee = await two_in_a_call(server, browser)
    box = ana.get_by_test_id("chat-input")
    await box.fill("<b>Metformin</b>")
    await box.press("Shift+Enter")
    await box.type("M-E-T-F-O-R-M-I-N")
    await box.press("Enter")
    written = "<b>Metformin</b>\nM-E-T-F-O-R-M-I-N"
    await poll(lambda: _shows(lee, [written]), what="the message on the other page")
    assert await texts(ana) == [written]
    assert await box.input_value() == "", "sent: the box is empty again"
    message = lee.get_by_test_id("chat-message")
    assert await message.locator("b").count() == 0, "markup stays characters"
    assert "Ana P." in await message.inner_text()

    await lee.get_by_test_id("chat-input").fill("Thanks, got it")
    await lee.get_by_test_id("chat-send").click()
    await poll(lambda: _shows(ana, [written, "Thanks, got it"]), what="the reply")

    # Enter twice: one message.
    await box.fill("Once")
    await box.press("Enter")
    await box.press("Enter")
    await poll(lambda: _shows(lee, [written, "Thanks, got it", "Once"]), what="one message")

    # Nothing to send: said on the page, nothing sent.
    await box.fill("   ")
    await box.press("Enter")
    error = ana.get_by_test_id("chat-error")
    await error.wait_for()
    assert "Write something" in await error.inner_text()

    # A reload goes back into the call by itself, and reads the conversation again.
    await lee.reload()
    await wait_for_state(lee, "in-call")
    await poll(lambda: _shows(lee, [written, "Thanks, got it", "Once"]), what="the history")


async def test_the_patient_reads_and_writes_too(server: RunningServer, browser: Browser) -> None:
    consult = await server.create_consult(patient_name="Maria Lopez")
    ana = await open_page(browser, consult["links"]["pharmacist"])
    maria = await open_page(browser, consult["links"]["patient"], width=390, height=844)
    await join(ana, "Ana P.")
    await join(maria, "Maria Lopez")
    await open_sheet(maria)  # on a phone the chat is with the medication list
    await maria.get_by_test_id("chat-input").fill("Is it the 500 mg one?")
    await maria.get_by_test_id("chat-send").click()
    await poll(lambda: _shows(ana, ["Is it the 500 mg one?"]), what="the patient's message")


async def _shows(page: Page, expected: list[str]) -> bool:
    return await texts(page) == expected
