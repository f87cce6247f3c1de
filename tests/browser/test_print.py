"""Printing the call page (issue 12): the medication list on white paper, with no video,
controls, chat or open editor in the way. A PDF from Chromium's print (`page.pdf()`, which
uses the print stylesheet), read back with `pdftotext`."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.browser.conftest import join, open_page
from tests.conftest import RunningServer
from tests.support.pdf import pdf_text

pytestmark = pytest.mark.browser

MEDICATIONS = [
    {"name": "Metformin", "strength": "500 mg", "how_taken": "1 tablet twice daily"},
    {"name": "Lisinopril", "strength": "10 mg", "how_taken": "once a day"},
]


@pytest.mark.parametrize("role", ["pharmacist", "patient"])
async def test_the_printed_page_is_the_medication_list(
    server: RunningServer, browser: Browser, role: str
) -> None:
    consult = await server.create_consult(patient_name="Maria Lopez", medications=MEDICATIONS)
    page = await open_page(browser, consult["links"][role])
    await join(page, "Ana P." if role == "pharmacist" else "Maria Lopez")
    await page.get_by_text("Lisinopril").first.wait_for()
    if role == "pharmacist":  # a form left open on screen does not print
        await page.get_by_test_id("add-plan-button").click()
        await page.get_by_test_id("add-plan-form").wait_for()
    await page.emulate_media(media="print")
    assert await page.evaluate("getComputedStyle(document.body).backgroundColor") == (
        "rgb(255, 255, 255)"
    )
    assert await page.evaluate("getComputedStyle(document.body).color") == "rgb(0, 0, 0)"
    text = await pdf_text(await page.pdf(format="Letter"))
    plan = "Medication Action Plan" if role == "pharmacist" else "My action plan"
    for expected in ("Metformin", "500 mg", "1 tablet twice daily", "Lisinopril", "10 mg", plan):
        assert expected in text
    screen_only = ["Turn camera off", "Mute", "Leave", "Settings", "Send", "Chat"]
    for label in [*screen_only, "Add plan item", "What we talked about"]:
        assert label not in text, label
