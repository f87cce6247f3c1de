"""What the panel says is true, proposed, and for whom (issue 8), in three real browsers: a
proposed dose change reaches the patient as a proposal, never as what they take; the
clinician's "waiting for you" count follows the others live; an author whose value was
replaced with "use mine" is told next to that field; a confirmation that no longer holds is
shown as such to the patient and the pharmacist."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page

from tests.browser.conftest import join, open_page, open_sheet, wait_for_state
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser

MEDICATIONS = [
    {"name": "Metformin", "strength": "500 mg", "how_taken": "1 tablet twice daily"},
    {"name": "Lisinopril", "strength": "10 mg", "how_taken": "1 tablet every morning"},
]
ROLES = ("pharmacist", "clinician", "patient")


@pytest.fixture
def config_overrides(config_overrides: dict[str, Any]) -> dict[str, Any]:
    return {**config_overrides, "signaling": {"ping_interval": 1, "ping_timeout": 1}}


async def three_pages(
    server: RunningServer, browser: Browser, *, patient_phone: bool = False
) -> tuple[dict[str, Any], list[Page]]:
    consult = await server.create_consult(medications=MEDICATIONS)
    pages = []
    for role in ROLES:
        size = {"width": 390, "height": 844} if role == "patient" and patient_phone else {}
        page = await open_page(browser, consult["links"][role], **size)
        page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
        await join(page)
        if size:
            await open_sheet(page)
        await page.get_by_test_id("panel").wait_for()
        pages.append(page)
    return consult, pages


def row(page: Page, name: str) -> Locator:
    return page.locator(f'[data-testid="med-row"][data-name="{name}"]')


def waiting(page: Page) -> Locator:
    return page.get_by_test_id("waiting-section")


async def wait_for_attr(locator: Locator, name: str, value: str) -> None:
    handle = await locator.element_handle()
    await locator.page.wait_for_function(
        "([el, name, value]) => el.getAttribute(name) === value",
        arg=[handle, name, value],
        timeout=10_000,
    )


async def field_text(page: Page, name: str, field: str) -> str:
    return (await row(page, name).get_by_test_id(f"med-field-{field}").first.inner_text()).strip()


async def edit(page: Page, name: str, field: str, value: str) -> None:
    target = row(page, name)
    await target.get_by_test_id(f"edit-{field}").click()
    await target.get_by_test_id(f"input-{field}").fill(value)
    await target.get_by_test_id(f"save-{field}").click()


async def recommend(
    page: Page,
    text: str,
    *,
    medication: str | None = None,
    change: str | None = None,
    strength: str | None = None,
    audience: str | None = None,
) -> None:
    """Fill and send the pharmacist's "Add recommendation" form."""
    await page.get_by_test_id("add-rec-button").click()
    form = page.get_by_test_id("add-rec-form")
    await form.get_by_test_id("add-rec-text").fill(text)
    if medication is not None:
        option = form.get_by_test_id("add-rec-medication").locator("option", has_text=medication)
        value = await option.first.get_attribute("value")
        await form.get_by_test_id("add-rec-medication").select_option(value)
    if change is not None:
        await form.get_by_test_id("add-rec-change").select_option(change)
    if strength is not None:
        await form.get_by_test_id("add-rec-proposed-strength").fill(strength)
    if audience is not None:
        await form.get_by_test_id("add-rec-audience").select_option(audience)
    await form.get_by_test_id("add-rec-submit").click()


async def test_the_patient_sees_a_proposed_dose_as_proposed_until_the_clinician_accepts(
    server: RunningServer, browser: Browser
) -> None:
    _, (pharmacist, clinician, patient) = await three_pages(server, browser, patient_phone=True)
    await recommend(
        pharmacist,
        "Increase metformin for better glucose control",
        medication="Metformin",
        change="dose-change",
        strength="1000 mg",
        audience="patient",
    )
    proposal = row(patient, "Metformin").get_by_test_id("med-proposal")
    await proposal.filter(has_text="Proposed — waiting for your doctor").wait_for(timeout=10_000)
    assert "1000 mg" in await proposal.inner_text()
    # The card's own values are what the patient takes now: the proposal is not among them.
    assert await field_text(patient, "Metformin", "strength") == "500 mg"
    assert await field_text(patient, "Metformin", "status") == "Taking now"
    fields = row(patient, "Metformin").locator(".mp-fields")
    assert "1000 mg" not in await fields.first.inner_text()
    # Nor does the pharmacist's card pretend it is decided.
    assert await field_text(pharmacist, "Metformin", "strength") == "500 mg"
    pharmacist_line = row(pharmacist, "Metformin").get_by_test_id("med-proposal")
    assert "waiting for a decision" in await pharmacist_line.inner_text()
    # The phone layout holds the proposal without sideways scrolling.
    assert await patient.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1")

    # The clinician decides from the top of the panel.
    decide = waiting(clinician).get_by_test_id("waiting-item").filter(has_text="Increase metformin")
    await decide.get_by_test_id("waiting-accept").click()
    await (
        row(patient, "Metformin")
        .get_by_test_id("med-field-strength")
        .filter(has_text="1000 mg")
        .wait_for(timeout=10_000)
    )
    await proposal.filter(has_text="Your doctor agreed").wait_for(timeout=10_000)
    # Each page gets the accepted change as its own event: the pharmacist's may come after.
    await (
        row(pharmacist, "Metformin")
        .get_by_test_id("med-field-strength")
        .filter(has_text="1000 mg")
        .wait_for(timeout=10_000)
    )
    assert await field_text(pharmacist, "Metformin", "strength") == "1000 mg"
    await wait_for_attr(waiting(clinician), "data-to-decide", "0")
    # The history says where the new strength came from.
    await row(pharmacist, "Metformin").get_by_test_id("history-button").click()
    derived = row(pharmacist, "Metformin").get_by_test_id("history-derived")
    await derived.filter(has_text="applied from accepted recommendation").first.wait_for()


async def test_the_clinicians_waiting_count_follows_the_others_live(
    server: RunningServer, browser: Browser
) -> None:
    _, (pharmacist, clinician, patient) = await three_pages(server, browser)
    await wait_for_attr(waiting(clinician), "data-to-decide", "0")
    assert await waiting(clinician).get_by_test_id("waiting-count").inner_text() == "(0)"
    # The patient has two medications to confirm; the count is read out when it changes.
    await wait_for_attr(waiting(patient), "data-count", "2")
    assert await waiting(patient).get_by_test_id("waiting-summary").get_attribute("aria-live")

    await recommend(pharmacist, "Check kidney function before the next refill")
    await wait_for_attr(waiting(clinician), "data-to-decide", "1")
    assert await waiting(clinician).get_by_test_id("waiting-count").inner_text() == "(1)"
    await recommend(pharmacist, "Stop lisinopril", medication="Lisinopril", change="stop")
    await wait_for_attr(waiting(clinician), "data-to-decide", "2")
    # The pharmacist sees both counts.
    await wait_for_attr(waiting(pharmacist), "data-to-decide", "2")
    await wait_for_attr(waiting(pharmacist), "data-to-confirm", "2")
    # Care-team-only by default: the patient is sent neither recommendation.
    assert await patient.get_by_test_id("rec-row").count() == 0
    tag = clinician.get_by_test_id("rec-row").first.get_by_test_id("audience")
    assert await tag.inner_text() == "Care team only"

    item = waiting(clinician).get_by_test_id("waiting-item").filter(has_text="Stop lisinopril")
    await item.get_by_test_id("waiting-decline").click()
    await wait_for_attr(waiting(clinician), "data-to-decide", "1")
    await wait_for_attr(waiting(pharmacist), "data-to-decide", "1")
    # Declined: the medication is unchanged.
    assert await field_text(pharmacist, "Lisinopril", "status") == "Active"
    assert await field_text(clinician, "Lisinopril", "status") == "Active"

    # Before ending, the pharmacist is told what is still open.
    await pharmacist.get_by_test_id("end-consult-button").click()
    open_items = pharmacist.get_by_test_id("end-open-items")
    await open_items.wait_for()
    text = await open_items.inner_text()
    assert "1 recommendation is still waiting for a decision" in text
    assert "2 medications have not been confirmed" in text
    await pharmacist.get_by_test_id("end-consult-cancel").click()


async def test_the_overwritten_author_sees_the_notice_next_to_the_field(
    server: RunningServer, browser: Browser
) -> None:
    _, (pharmacist, clinician, _patient) = await three_pages(server, browser)
    # The clinician starts editing; meanwhile the pharmacist saves another strength.
    target = row(clinician, "Metformin")
    await target.get_by_test_id("edit-strength").click()
    await edit(pharmacist, "Metformin", "strength", "1000 mg")
    await (
        target.get_by_test_id("med-field-strength")
        .filter(has_text="1000 mg")
        .wait_for(timeout=10_000)
    )
    await target.get_by_test_id("input-strength").fill("750 mg")
    await target.get_by_test_id("save-strength").click()
    await target.get_by_test_id("conflict-prompt").wait_for(timeout=10_000)
    await target.get_by_test_id("use-mine").click()

    # The pharmacist's strength field itself carries the notice, until dismissed.
    strength = row(pharmacist, "Metformin").locator('.mp-field[data-field="strength"]')
    notice = strength.get_by_test_id("override-notice")
    await notice.wait_for(timeout=10_000)
    text = await notice.inner_text()
    assert "replaced your strength “1000 mg” with “750 mg”" in text
    assert await field_text(pharmacist, "Metformin", "strength") == "750 mg"
    # The clinician, who replaced it, gets no such notice.
    assert await clinician.get_by_test_id("override-notice").count() == 0
    # The history shows both values.
    await row(pharmacist, "Metformin").get_by_test_id("history-button").click()
    overrode = row(pharmacist, "Metformin").get_by_test_id("history-overrode")
    await overrode.first.wait_for()
    assert "1000 mg" in await overrode.first.inner_text()
    entry = (
        row(pharmacist, "Metformin")
        .get_by_test_id("history-entry")
        .filter(has=pharmacist.get_by_test_id("history-overrode"))
    )
    assert "750 mg" in await entry.inner_text()
    # It stays through a reload, and goes when dismissed.
    await pharmacist.reload()
    await wait_for_state(pharmacist, "in-call")
    await notice.wait_for(timeout=10_000)
    await notice.get_by_test_id("override-dismiss").click()
    assert await row(pharmacist, "Metformin").get_by_test_id("override-notice").count() == 0


async def test_a_strength_change_resets_the_confirmation_visibly_for_patient_and_pharmacist(
    server: RunningServer, browser: Browser
) -> None:
    _, (pharmacist, clinician, patient) = await three_pages(server, browser)
    assert await field_text(patient, "Lisinopril", "patient_confirmation") == (
        "Not confirmed yet. Is this how you take it?"
    )
    await row(patient, "Lisinopril").get_by_test_id("confirm-how-taken").click()
    badge = row(pharmacist, "Lisinopril").get_by_test_id("med-field-patient_confirmation")
    await badge.filter(has_text="Confirmed by patient").wait_for(timeout=10_000)
    await wait_for_attr(waiting(patient), "data-count", "1")

    await edit(pharmacist, "Lisinopril", "strength", "40 mg")
    await badge.filter(has_text="Needs confirming again").wait_for(timeout=10_000)
    patient_state = row(patient, "Lisinopril").get_by_test_id("med-field-patient_confirmation")
    await patient_state.filter(has_text="Needs confirming again").wait_for(timeout=10_000)
    assert "You confirmed" not in await row(patient, "Lisinopril").inner_text()
    had_confirmed = row(patient, "Lisinopril").get_by_test_id("med-confirmed-values")
    assert "You had confirmed: 10 mg" in await had_confirmed.inner_text()
    await wait_for_attr(waiting(patient), "data-count", "2")
    item = waiting(patient).get_by_test_id("waiting-item").filter(has_text="Lisinopril")
    assert "Needs confirming again" in await item.inner_text()
    clinician_badge = row(clinician, "Lisinopril").get_by_test_id("med-field-patient_confirmation")
    await clinician_badge.filter(has_text="Needs confirming again").wait_for(timeout=10_000)
    # The change log says why.
    await row(pharmacist, "Lisinopril").get_by_test_id("history-button").click()
    derived = row(pharmacist, "Lisinopril").get_by_test_id("history-derived")
    await derived.filter(has_text="reset because strength changed").wait_for()

    # A confirmation of values that changed after the patient saw them is refused, and the
    # patient is asked to look again (compare-and-set), not recorded as confirmed.
    await patient.context.set_offline(True)
    await patient.wait_for_function("() => window.mtmPanel.online === false", timeout=15_000)
    await row(patient, "Lisinopril").get_by_test_id("confirm-how-taken").click()
    await edit(pharmacist, "Lisinopril", "how_taken", "1 tablet every evening")
    await patient.context.set_offline(False)
    conflict = row(patient, "Lisinopril").get_by_test_id("confirm-conflict")
    await conflict.filter(has_text="changed while you were confirming").wait_for(timeout=20_000)
    await patient_state.filter(has_text="Needs confirming again").wait_for()
    await (
        row(patient, "Lisinopril")
        .get_by_test_id("med-field-how_taken")
        .filter(has_text="every evening")
        .wait_for()
    )
    assert "Needs confirming again" in await badge.inner_text()

    # Confirming again, from the "waiting for you" link, settles it.
    await item.get_by_test_id("waiting-check").click()
    focused = await patient.evaluate("document.activeElement.dataset.testid")
    assert focused == "confirm-how-taken"
    await patient.keyboard.press("Enter")
    await badge.filter(has_text="Confirmed by patient").wait_for(timeout=10_000)
    await wait_for_attr(waiting(patient), "data-count", "1")
    assert await conflict.is_hidden()


async def test_wording_reads_naturally_and_notices_end_with_the_consult(
    server: RunningServer, browser: Browser
) -> None:
    consult, (pharmacist, clinician, patient) = await three_pages(server, browser)
    await pharmacist.get_by_test_id("add-plan-button").click()
    await pharmacist.get_by_test_id("add-plan-talked-about").fill("Walk after dinner")
    await pharmacist.get_by_test_id("add-plan-submit").click()
    live = clinician.get_by_test_id("panel-live")
    await live.filter(has_text="added an action plan item").wait_for(timeout=10_000)
    # The patient's editor label names the medicine where it belongs.
    await row(patient, "Metformin").get_by_test_id("edit-adherence").click()
    label = row(patient, "Metformin").locator('[data-testid="editor-adherence"] label')
    assert await label.inner_text() == "How often I take Metformin as directed"
    # "Adding …" is about an edit in progress: gone once the consult has ended.
    await pharmacist.get_by_test_id("add-med-button").click()
    await pharmacist.get_by_test_id("add-med-name").fill("Amlodipine")
    await pharmacist.get_by_test_id("add-med-submit").click()
    await pharmacist.get_by_test_id("panel-live").filter(has_text="Adding Amlodipine.").wait_for()
    await server.end_consult(consult["id"])
    await pharmacist.wait_for_function("() => window.mtmPanel.readOnly === true", timeout=10_000)
    assert "Adding" not in await pharmacist.get_by_test_id("panel-live").inner_text()


async def test_the_patient_sees_only_what_is_shared_and_loses_what_is_unshared(
    server: RunningServer, browser: Browser
) -> None:
    _, (pharmacist, clinician, patient) = await three_pages(server, browser)
    await pharmacist.get_by_test_id("add-problem-button").click()
    await pharmacist.get_by_test_id("add-problem-category").select_option("nonadherence")
    await pharmacist.get_by_test_id("add-problem-description").fill("Misses evening doses")
    await pharmacist.get_by_test_id("add-problem-audience").select_option("patient")
    await pharmacist.get_by_test_id("add-problem-submit").click()
    shared = patient.get_by_test_id("problem-row").filter(has_text="Misses evening doses")
    await shared.wait_for(timeout=10_000)
    # The care team sees who may read it, and may take it back.
    problem = clinician.get_by_test_id("problem-row").filter(has_text="Misses evening doses")
    await problem.get_by_test_id("audience").filter(has_text="Shared with patient").wait_for()
    await problem.get_by_test_id("audience-toggle").click()
    await problem.get_by_test_id("audience").filter(has_text="Care team only").wait_for()
    await shared.wait_for(state="detached", timeout=10_000)

    # A care-team note reaches the patient only once it is shared.
    await edit(pharmacist, "Metformin", "notes", "Check vitamin B12 yearly")
    await pharmacist.wait_for_function(
        "() => [...window.mtmPanel.entities.values()].some("
        "(e) => e.data.notes === 'Check vitamin B12 yearly')"
    )
    patient_notes = row(patient, "Metformin").get_by_test_id("med-field-notes")
    await wait_for_same_seq(pharmacist, patient)
    assert await patient_notes.is_hidden()
    target = row(pharmacist, "Metformin")
    await target.get_by_test_id("edit-notes_audience").click()
    await target.get_by_test_id("input-notes_audience").select_option("patient")
    await target.get_by_test_id("save-notes_audience").click()
    await patient_notes.filter(has_text="Check vitamin B12 yearly").wait_for(timeout=10_000)
    await target.get_by_test_id("edit-notes_audience").click()
    await target.get_by_test_id("input-notes_audience").select_option("care-team")
    await target.get_by_test_id("save-notes_audience").click()
    await wait_for_same_seq(pharmacist, patient)
    assert await patient_notes.is_hidden()
    assert "B12" not in await patient.get_by_test_id("panel").inner_text()


async def wait_for_same_seq(first: Page, second: Page) -> None:
    """Until both pages applied the same last seq (hidden events included, in order)."""
    await first.wait_for_function("() => window.mtmPanel.queueLength === 0", timeout=10_000)
    seq = await first.evaluate("window.mtmPanel.seq")
    await second.wait_for_function(
        "seq => window.mtmPanel.seq === seq && window.mtmPanel.queueLength === 0",
        arg=seq,
        timeout=10_000,
    )
