"""axe-core over every state of the pages people see (issue 12): no serious or critical
violation, on a laptop and on phones (Playwright's Pixel 5 and iPhone 12 descriptors).
axe-core is installed from npm by setup (web/package.json)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page, Playwright

from tests.browser.conftest import (
    join,
    open_on_device,
    open_page,
    open_sheet,
    start_join,
    wait_for_state,
)
from tests.conftest import RunningServer
from tests.support.axe import serious_violations

pytestmark = pytest.mark.browser

MEDICATIONS = [
    {"name": "Metformin", "strength": "500 mg", "how_taken": "1 tablet twice daily"},
    {"name": "Lisinopril", "strength": "10 mg", "how_taken": "once a day"},
]


class Audit:
    """Every state checked, and what axe found in each; asserted once, all at once."""

    def __init__(self) -> None:
        self.found: dict[str, list[dict[str, Any]]] = {}

    async def check(self, state: str, page: Page) -> None:
        self.found[state] = await serious_violations(page)

    def assert_clean(self) -> None:
        bad = {state: found for state, found in self.found.items() if found}
        assert not bad, "\n".join(
            f"{state}: {v['impact']} {v['id']} ({v['help']}) at {v['nodes']}"
            for state, found in bad.items()
            for v in found
        )


async def test_every_call_state_has_no_serious_violation(
    server: RunningServer, browser: Browser, playwright: Playwright
) -> None:
    audit = Audit()
    consult = await server.create_consult(
        patient_name="Maria Lopez", medications=MEDICATIONS, admit_patient=False
    )
    links = consult["links"]
    ana = await open_page(browser, links["pharmacist"])
    await audit.check("pharmacist, pre-join", ana)
    await join(ana, "Ana P.")
    await ana.get_by_text("Lisinopril").first.wait_for()
    await audit.check("pharmacist, alone in the call", ana)

    maria = await open_on_device(playwright, browser, links["patient"], "Pixel 5")
    await audit.check("patient, pre-join with consent (Pixel 5)", maria)
    await start_join(maria, "Maria Lopez")
    await wait_for_state(maria, "waiting")
    await audit.check("patient, waiting room (Pixel 5)", maria)
    await ana.get_by_test_id("waiting-person").wait_for()
    await audit.check("pharmacist, someone waiting", ana)
    await ana.get_by_test_id("admit-button").click()
    await wait_for_state(maria, "in-call")

    lee = await open_on_device(playwright, browser, links["clinician"], "iPhone 12")
    await join(lee, "Dr Lee")
    await ana.get_by_test_id("chat-input").fill("Metformin: M-E-T-F-O-R-M-I-N")
    await ana.get_by_test_id("chat-send").click()
    await ana.get_by_test_id("mic-button").click()
    await audit.check("pharmacist, three in the call, muted, a chat message", ana)
    await audit.check("patient, in the call (Pixel 5)", maria)
    await audit.check("clinician, in the call (iPhone 12)", lee)
    await open_sheet(maria)
    await maria.get_by_test_id("chat-message").wait_for()
    await audit.check("patient, the medication list and chat sheet (Pixel 5)", maria)
    await maria.get_by_test_id("panel-close").tap()

    await ana.get_by_test_id("settings-button").click()
    await ana.get_by_test_id("settings-dialog").wait_for()
    await audit.check("pharmacist, settings", ana)
    await ana.get_by_test_id("settings-close-button").click()
    await ana.get_by_test_id("remove-button").first.click()
    await ana.get_by_test_id("remove-dialog").wait_for()
    await audit.check("pharmacist, remove dialog", ana)
    await ana.get_by_test_id("remove-cancel").click()
    await maria.get_by_test_id("leave-button").tap()
    await maria.get_by_test_id("leave-dialog").wait_for()
    await audit.check("patient, leave dialog (Pixel 5)", maria)
    await maria.get_by_test_id("leave-cancel").tap()

    await ana.get_by_test_id("end-consult-button").click()
    await ana.get_by_test_id("end-consult-dialog").wait_for()
    await audit.check("pharmacist, end dialog", ana)
    await ana.get_by_test_id("end-consult-confirm").click()
    for page in (ana, maria, lee):
        await wait_for_state(page, "ended")
    await audit.check("pharmacist, ended", ana)
    await audit.check("patient, ended (Pixel 5)", maria)

    record = await open_on_device(playwright, browser, links["patient"], "Pixel 5")
    await audit.check("patient, the record after the consult (Pixel 5)", record)
    expired = await open_page(browser, links["pharmacist"])
    await audit.check("pharmacist, a link that no longer works", expired)
    broken = await open_page(browser, links["patient"][:-6] + "xxxxxx")
    await audit.check("a broken link", broken)
    audit.assert_clean()


async def test_the_patients_spanish_pages_have_no_serious_violation(
    server: RunningServer, browser: Browser, playwright: Playwright
) -> None:
    """The same pages in Spanish (longer words, other line breaks; `lang` on the page and
    on the consent): a Spanish patient on a Pixel 5."""
    audit = Audit()
    consult = await server.create_consult(
        patient_name="María López", medications=MEDICATIONS, admit_patient=False
    )
    links = consult["links"]
    ana = await open_page(browser, links["pharmacist"])
    await join(ana, "Ana P.")
    spanish = f"{links['patient']}?lang=es"
    maria = await open_on_device(playwright, browser, spanish, "Pixel 5")
    assert await maria.evaluate("document.documentElement.lang") == "es"
    await audit.check("patient, pre-join in Spanish (Pixel 5)", maria)
    await start_join(maria, "María López")
    await wait_for_state(maria, "waiting")
    await audit.check("patient, waiting room in Spanish (Pixel 5)", maria)
    await ana.get_by_test_id("admit-button").click()
    await wait_for_state(maria, "in-call")
    await audit.check("patient, in the call in Spanish (Pixel 5)", maria)
    await open_sheet(maria)
    await maria.get_by_test_id("panel").wait_for()
    await audit.check("patient, the medication list in Spanish (Pixel 5)", maria)
    await maria.get_by_test_id("panel-close").tap()
    await server.end_consult(consult["id"])
    await wait_for_state(maria, "ended")
    await audit.check("patient, ended in Spanish (Pixel 5)", maria)
    record = await open_on_device(playwright, browser, spanish, "Pixel 5")
    await audit.check("patient, the record in Spanish (Pixel 5)", record)
    audit.assert_clean()
