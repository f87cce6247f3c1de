"""Languages (issue 12), in real Chromium: a Spanish browser gets the patient's first
screens and the call's controls in Spanish with `lang="es"`, the page's switch changes
and remembers it, and a language that is not offered is passed over."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page
from sqlalchemy import select

from models.tables import ConsentRecord
from tests.browser.conftest import join, open_page, start_join, wait_for_state
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser


async def spanish_page(browser: Browser, url: str) -> Page:
    context = await browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 720})
    page = await context.new_page()
    await page.goto(url)
    return page


async def test_a_spanish_browser_gets_spanish(server: RunningServer, browser: Browser) -> None:
    consult = await server.create_consult(patient_name="María López", admit_patient=False)
    ana = await open_page(browser, consult["links"]["pharmacist"])
    await join(ana, "Ana P.")
    maria = await spanish_page(browser, consult["links"]["patient"])
    assert await maria.evaluate("document.documentElement.lang") == "es"
    assert await maria.get_by_role("heading", level=1).first.inner_text() == (
        "Únase a su revisión de medicamentos"
    )
    assert await maria.get_by_test_id("join-button").inner_text() == "Unirse"
    assert await maria.title() == "Revisión de medicamentos · MTM Consult"
    # The consent is read in Spanish, and the Spanish text is the one on record.
    consent = maria.get_by_test_id("consent-text")
    assert await consent.get_attribute("lang") == "es"
    assert await consent.inner_text() == server.state.config.consent.text_for("es")
    await start_join(maria, "María López")
    await wait_for_state(maria, "waiting")
    async with server.state.sessions() as session:
        [record] = list((await session.execute(select(ConsentRecord))).scalars())
    assert (record.language, record.text) == ("es", server.state.config.consent.text_for("es"))
    assert await maria.get_by_test_id("waiting-message").inner_text() == (
        "Su farmacéutico le dejará entrar en breve."
    )
    await ana.get_by_test_id("admit-button").click()
    await wait_for_state(maria, "in-call")
    mic = maria.get_by_test_id("mic-button")
    assert await mic.inner_text() == "Silenciar"
    await mic.click()
    assert await mic.inner_text() == "Activar micrófono"
    # The pharmacist's English page is untouched.
    assert await ana.evaluate("document.documentElement.lang") == "en"
    assert await ana.get_by_test_id("mic-button").inner_text() == "Mute"


async def test_the_switch_changes_the_language_and_remembers_it(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult()
    page = await spanish_page(browser, consult["links"]["patient"])
    await page.get_by_test_id("language-select").select_option("en")
    await page.wait_for_function("document.documentElement.lang === 'en'")
    assert await page.get_by_test_id("join-button").inner_text() == "Join"
    # The next visit from this browser: still English, though the browser prefers Spanish.
    again = await page.context.new_page()
    await again.goto(consult["links"]["patient"])
    assert await again.evaluate("document.documentElement.lang") == "en"


@pytest.mark.parametrize(
    ("query", "lang"), [("?lang=es", "es"), ("?lang=xx", "en"), ("?lang=", "en")]
)
async def test_a_language_asked_for_in_the_address(
    server: RunningServer, browser: Browser, query: str, lang: str
) -> None:
    consult = await server.create_consult()
    page = await open_page(browser, consult["links"]["clinician"] + query)
    assert await page.evaluate("document.documentElement.lang") == lang
    assert "Traceback" not in await page.content()


async def test_the_connection_check_and_the_devices_read_spanish(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult(admit_patient=False)
    context = await browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 720})
    # Devices without names of their own (as some browsers list them): the page names them.
    await context.add_init_script(
        """const listed = MediaDevices.prototype.enumerateDevices;
           MediaDevices.prototype.enumerateDevices = async function () {
             return (await listed.call(this)).map(({ deviceId, kind, groupId }) =>
               ({ deviceId, kind, groupId, label: "" }));
           };"""
    )
    page = await context.new_page()
    await page.goto(consult["links"]["patient"])
    assert await page.evaluate("document.documentElement.lang") == "es"
    await page.wait_for_function(
        "() => ['done', 'failed'].includes(window.mtm.networkCheck.state)", timeout=30_000
    )
    assert (await page.evaluate("window.mtm.networkCheck"))["state"] == "done"
    assert await page.get_by_test_id("network-summary").inner_text() == (
        "Su conexión es buena para video."
    )
    assert "✓ Bien" in await page.get_by_test_id("network-rtt").inner_text()
    assert await page.get_by_test_id("network-check-button").inner_text() == "Probar de nuevo"
    cameras = page.get_by_test_id("camera-select").locator("option")
    await page.wait_for_function(
        "() => document.querySelector('#camera-select option')?.textContent === 'Cámara 1'"
    )
    assert (await cameras.all_inner_texts())[0] == "Cámara 1"
    microphones = await page.get_by_test_id("microphone-select").locator("option").all_inner_texts()
    assert microphones[0] == "Micrófono 1"
    assert await page.get_by_test_id("mic-level-text").inner_text() in {
        "Diga algo para probar.",
        "Se le oye bien.",
    }
    await context.close()


MESSAGES = Path(__file__).resolve().parents[2] / "web" / "static" / "messages"


def english_sentences() -> set[str]:
    """The catalogue's English sentences that Spanish words differently (placeholders cut
    off): none of them may appear on a Spanish page."""
    english = json.loads((MESSAGES / "en.json").read_text())
    spanish = json.loads((MESSAGES / "es.json").read_text())
    found = set()
    for key, text in english.items():
        if spanish[key] == text:
            continue
        for piece in re.split(r"\{\w+\}", text):
            piece = piece.strip(" .,:;()“”")
            if len(piece.split()) >= 3:
                found.add(piece)
    return found


async def test_the_patients_medication_list_reads_spanish(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult(
        medications=[{"name": "Lisinopril", "strength": "10 mg", "how_taken": "1 por la mañana"}]
    )
    ana = await open_page(browser, consult["links"]["pharmacist"])
    await join(ana, "Ana P.")
    maria = await spanish_page(browser, consult["links"]["patient"])
    await join(maria, "María López")
    panel = maria.get_by_test_id("panel")
    await panel.wait_for()
    row = maria.locator('[data-testid="med-row"][data-name="Lisinopril"]')
    state = row.get_by_test_id("med-field-patient_confirmation")
    assert (await state.first.inner_text()).strip() == "Aún sin confirmar. ¿Es así como lo toma?"
    confirm = row.get_by_test_id("confirm-how-taken")
    assert (await confirm.inner_text()).strip() == "Sí, así lo tomo"
    await confirm.click()
    badge = ana.locator('[data-testid="med-row"][data-name="Lisinopril"]').get_by_test_id(
        "med-field-patient_confirmation"
    )
    # The pharmacist's page stays English.
    await badge.filter(has_text="Confirmed by patient").wait_for(timeout=10_000)
    await state.filter(has_text="Usted confirmó que así lo toma").wait_for(timeout=10_000)
    text = await panel.inner_text()
    assert "Lisinopril" in text and "1 por la mañana" in text  # data stays as written
    left = sorted(sentence for sentence in english_sentences() if sentence in text)
    assert left == [], left
    # The whole page in the call, controls and chat included.
    whole = await maria.locator("body").inner_text()
    left = sorted(sentence for sentence in english_sentences() if sentence in whole)
    assert left == [], left
