"""The live medication panel in three real browsers: edits reach everyone, the patient is
offered only what they may do, an edit made offline arrives once, names render inert."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from models import panel_store
from tests.browser.conftest import join, open_page
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
MEDICATIONS = [
    {"name": "Metformin", "strength": "500 mg", "how_taken": "1 tablet twice daily"},
    {"name": XSS, "strength": "10 mg", "how_taken": "once a day"},
]
ROLES = ("pharmacist", "clinician", "patient")


@pytest.fixture
def config_overrides(config_overrides: dict[str, Any]) -> dict[str, Any]:
    # Notice a cut connection within ~2 s instead of the default ~45 s.
    return {**config_overrides, "signaling": {"ping_interval": 1, "ping_timeout": 1}}


async def three_pages(server: RunningServer, browser: Browser) -> tuple[dict[str, Any], list[Page]]:
    consult = await server.create_consult(medications=MEDICATIONS)
    pages = []
    for role in ROLES:
        page = await open_page(browser, consult["links"][role])
        page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
        await join(page)
        await page.get_by_test_id("panel").wait_for()
        pages.append(page)
    return consult, pages


def row(page: Page, name: str) -> Any:
    return page.locator(f'[data-testid="med-row"][data-name="{name}"]')


async def wait_for_text(page: Page, name: str, field: str, text: str) -> None:
    await (
        row(page, name)
        .get_by_test_id(f"med-field-{field}")
        .filter(has_text=text)
        .wait_for(timeout=10_000)
    )


async def edit(page: Page, name: str, field: str, value: str) -> None:
    target = row(page, name)
    await target.get_by_test_id(f"edit-{field}").click()
    await target.get_by_test_id(f"input-{field}").fill(value)
    await target.get_by_test_id(f"save-{field}").click()


async def test_a_dose_edit_reaches_everyone_and_the_patient_cannot_edit_it(
    server: RunningServer, browser: Browser
) -> None:
    consult, (pharmacist, clinician, patient) = await three_pages(server, browser)
    await edit(pharmacist, "Metformin", "strength", "1000 mg")
    for page in (pharmacist, clinician, patient):
        await wait_for_text(page, "Metformin", "strength", "1000 mg")
    # The patient is not offered what the server would refuse...
    patient_row = row(patient, "Metformin")
    assert await patient_row.get_by_test_id("edit-strength").count() == 0
    assert await patient_row.get_by_test_id("edit-status").count() == 0
    assert await patient.get_by_test_id("add-med-button").count() == 0
    assert await patient.get_by_test_id("history-button").count() == 0
    # ...but may confirm how they take it.
    await patient_row.get_by_test_id("confirm-how-taken").click()
    await pharmacist.wait_for_function(
        """() => [...window.mtmPanel.entities.values()].some(
            (e) => e.data.name === "Metformin" && e.data.patient_confirmation === "confirmed")"""
    )
    # The clinician sees who changed it last.
    await (
        row(clinician, "Metformin")
        .get_by_test_id("med-field-updated_by")
        .filter(has_text="(patient)")
        .wait_for()
    )
    async with server.state.sessions() as session:
        events = await panel_store.events_since(session, consult["id"], 0)
    assert [(e["field"], e["new"], e["actor"]["role"]) for e in events[2:]] == [
        ("strength", "1000 mg", "pharmacist"),
        ("patient_confirmation", "confirmed", "patient"),
    ]


async def test_an_edit_made_offline_arrives_everywhere_once(
    server: RunningServer, browser: Browser
) -> None:
    consult, (pharmacist, clinician, patient) = await three_pages(server, browser)
    await pharmacist.context.set_offline(True)
    await pharmacist.wait_for_function("() => window.mtmPanel.online === false", timeout=15_000)
    await edit(pharmacist, "Metformin", "how_taken", "1 tablet with breakfast and dinner")
    assert await pharmacist.evaluate("window.mtmPanel.queueLength") == 1
    await pharmacist.get_by_test_id("queue-indicator").filter(has_text="1 edit").wait_for()
    await asyncio.sleep(1)
    await wait_for_text(clinician, "Metformin", "how_taken", "1 tablet twice daily")
    await pharmacist.context.set_offline(False)
    for page in (pharmacist, clinician, patient):
        await wait_for_text(page, "Metformin", "how_taken", "with breakfast and dinner")
    await pharmacist.wait_for_function("() => window.mtmPanel.queueLength === 0")
    async with server.state.sessions() as session:
        events = await panel_store.events_since(session, consult["id"], 0)
    changed = [e for e in events if e["field"] == "how_taken"]
    assert len(changed) == 1 and changed[0]["outcome"] == "applied"
    seqs = {await page.evaluate("window.mtmPanel.seq") for page in (pharmacist, clinician, patient)}
    assert seqs == {events[-1]["seq"]}


async def test_a_hostile_name_renders_as_text(server: RunningServer, browser: Browser) -> None:
    _, pages = await three_pages(server, browser)
    for page in pages:
        hostile = row(page, XSS)
        await hostile.wait_for()
        assert XSS in await hostile.inner_text()
        assert await page.locator("[data-testid=panel] img").count() == 0
