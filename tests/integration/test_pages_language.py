"""The patient's pages other than the call in the language asked for (server/i18n.py): the
pages of a link that cannot be used and the read-only record after the end, in Spanish for
a Spanish request (`?lang=es` or Accept-Language), else English; a language not offered is
passed over, never an error."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from documents.text import LANGUAGES, STATUS
from models.mutations import Actor
from models.panel_store import apply_mutation
from server import pages
from tests.conftest import RunningServer, token_of

WEB = Path(__file__).resolve().parents[2] / "web"
CATALOGUES: dict[str, dict[str, str]] = {
    lang: json.loads((WEB / "static" / "messages" / f"{lang}.json").read_text())
    for lang in LANGUAGES
}
# Offered on a page of another language in its own words: English on a Spanish page.
IN_ITS_OWN_LANGUAGE = {"record.download_in_this_language"}

SPANISH: dict[str, str] = {"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"}
ENGLISH: dict[str, str] = {"Accept-Language": "en-US,en;q=0.9"}
# (query, headers, the page's language): the address wins over the browser.
ASKED = [
    ("", SPANISH, "es"),
    ("?lang=es", ENGLISH, "es"),
    ("", ENGLISH, "en"),
    ("?lang=en", SPANISH, "en"),
    ("?lang=fr", {}, "en"),
]

# Free text is shown as typed: the patient's in Spanish, so that any English the Spanish
# page holds can only be the page's own words.
MEDICATIONS = [
    {
        "name": "Metformina",
        "strength": "500 mg",
        "how_taken": "1 tableta dos veces al día",
        "why": "Diabetes",
        "prescriber": "Dra. Rivera",
    },
    {"name": "Ibuprofeno", "strength": "200 mg", "how_taken": "Cuando me duele la rodilla"},
]
ENDED = dt.datetime(2027, 3, 5, 15, 0, tzinfo=dt.UTC)


def template_keys(template: str) -> set[str]:
    return set(
        re.findall(r"""\bt\(\s*["']([\w.-]+)["']""", (WEB / "templates" / template).read_text())
    )


def visible_text(page: str) -> str:
    """The page's text as read (tags dropped, entities decoded, spaces squashed), with its
    title and the attributes people read."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    attributes = re.findall(r'\s(?:aria-label|placeholder|title|alt)="([^"]*)"', page)
    text = " ".join([re.sub(r"<[^>]*>", " ", page), *attributes])
    return " ".join(html.unescape(text).split())


def assert_in(lang: str, page: str, keys: set[str]) -> None:
    """`page` is in `lang`: `<html lang>`, and no other language's text of `keys`."""
    assert f'<html lang="{lang}">' in page
    text = visible_text(page)
    for key in keys - IN_ITS_OWN_LANGUAGE:
        for other, messages in CATALOGUES.items():
            if other != lang and messages[key] != CATALOGUES[lang][key]:
                assert messages[key] not in text, f"{lang} page: {key} in {other}"


async def get(
    server: RunningServer, link: str, query: str, headers: dict[str, str]
) -> tuple[int, str]:
    async with server.http.get(link + query, headers=headers) as page:
        return page.status, await page.text()


@pytest.fixture
async def consult(server: RunningServer) -> dict[str, Any]:
    server.clock.now = (ENDED - dt.timedelta(minutes=40)).timestamp()
    return await server.create_consult(
        patient_name="María López",
        scheduled_at=(ENDED - dt.timedelta(minutes=30)).isoformat(),
        medications=MEDICATIONS,
    )


async def tell(server: RunningServer, consult: dict[str, Any]) -> None:
    """A recommendation about a medication and one in general, both shared with the
    patient, an action plan item, and the patient's confirmation of one medication."""
    people = {p["role"]: p["id"] for p in consult["participants"]}
    pharmacist = Actor(people["pharmacist"], "Ana", "pharmacist")
    patient = Actor(people["patient"], "María López", "patient")
    metformin = consult["medications"][0]
    mutations: list[tuple[Actor, dict[str, Any]]] = [
        (pharmacist, {"op": "add", "entity": "recommendation", "value": {
            "text": "Subir la metformina a 1000 mg", "medication_id": metformin["id"],
            "audience": "patient"}}),
        (pharmacist, {"op": "add", "entity": "recommendation", "value": {
            "text": "Medir el potasio en 2 semanas", "audience": "patient"}}),
        (pharmacist, {"op": "add", "entity": "plan_item", "value": {
            "talked_about": "La metformina con las comidas",
            "to_do": "Tomarla con el desayuno y la cena"}}),
        (patient, {"op": "set", "entity": "medication", "entity_id": metformin["id"],
                   "field": "patient_confirmation", "value": "confirmed",
                   "base_version": metformin["versions"]["patient_confirmation"]}),
    ]  # fmt: skip
    for number, (actor, mutation) in enumerate(mutations):
        now = dt.datetime.fromtimestamp(server.clock(), dt.UTC)
        async with server.state.sessions() as session, session.begin():
            result = await apply_mutation(
                session, consult["id"], actor, {**mutation, "mutation_id": f"m-{number}"}, now=now
            )
        assert result["ok"], result


@pytest.mark.parametrize(("query", "headers", "lang"), ASKED)
async def test_an_invalid_link_says_so_in_the_language_asked_for(
    server: RunningServer, consult: dict[str, Any], query: str, headers: dict[str, str], lang: str
) -> None:
    keys = template_keys("error.html") | {"link.invalid.title", "link.invalid.message"}
    for link in (consult["links"]["patient"] + "x", f"{server.base_url}/c/garbage"):
        status, page = await get(server, link, query, headers)
        assert status == 404
        assert_in(lang, page, keys)
        title = CATALOGUES[lang]["link.invalid.title"]
        assert f"<title>{title} · MTM Consult</title>" in page
        assert f">{title}</h1>" in page
        assert CATALOGUES[lang]["link.invalid.message"] in page
    if lang == "es":
        assert "MTM Consult · código 404" in page
        assert "Revise que haya abierto el enlace completo." in page
        assert "pida un enlace nuevo a la farmacia o clínica que se lo envió." in page
    else:
        assert "MTM Consult · code 404" in page and "This link is not valid" in page


@pytest.mark.parametrize(("query", "headers", "lang"), ASKED)
async def test_an_expired_or_ended_consults_link_says_so_in_the_language_asked_for(
    server: RunningServer, consult: dict[str, Any], query: str, headers: dict[str, str], lang: str
) -> None:
    error_keys = template_keys("error.html")
    await server.end_consult(consult["id"])
    status, ended = await get(server, consult["links"]["pharmacist"], query, headers)
    assert status == 410
    assert_in(lang, ended, error_keys | {"link.ended.title", "link.ended.message"})
    server.clock.advance(25 * 3600)  # past the links' 24 hours
    status, expired = await get(server, consult["links"]["clinician"], query, headers)
    assert status == 410
    assert_in(lang, expired, error_keys | {"link.expired.title", "link.expired.message"})
    if lang == "es":
        assert "Este enlace ha vencido" in expired
        assert "Pida a su farmacia o clínica que le envíe un enlace nuevo." in expired
        assert "Esta consulta ha terminado" in ended
        assert "Gracias por participar. Puede cerrar esta ventana." in ended
    else:
        assert "This link has expired" in expired and "This consult has ended" in ended


def record_keys() -> set[str]:
    used = template_keys("record.html") | {"record.not_confirmed"}
    for words in (pages.CONFIRMATION_WORDS, pages.DECISION_WORDS):
        used |= set(words.values())
    return used


@pytest.mark.parametrize(("query", "headers", "lang"), ASKED)
async def test_the_patients_record_is_in_the_language_asked_for(
    server: RunningServer, consult: dict[str, Any], query: str, headers: dict[str, str], lang: str
) -> None:
    await tell(server, consult)
    server.clock.now = ENDED.timestamp()
    await server.end_consult(consult["id"])
    status, page = await get(server, consult["links"]["patient"], query, headers)
    assert status == 200
    assert_in(lang, page, record_keys())
    # The patient's words as typed, whatever the page's language.
    typed = ["Metformina", "1 tableta dos veces al día", "Dra. Rivera", "Subir la metformina"]
    for words in [*typed, "Tomarla con el desayuno y la cena"]:
        assert words in page
    # A status reads as in the patient's summary document (documents/text.py).
    assert f"<dd>{STATUS[lang]['active']}" in page
    token = token_of(consult["links"]["patient"])
    other = "en" if lang == "es" else "es"
    # The summary in the page's language first, then in the other one, in its own words.
    assert (
        f'href="/c/{token}/documents/summary.pdf?lang={lang}" data-testid="download-summary"'
        in page
    )
    own_words = html.escape(CATALOGUES[other]["record.download_in_this_language"], quote=False)
    assert (
        f'href="/c/{token}/documents/summary.pdf?lang={other}" lang="{other}" hreflang="{other}"'
        f' data-testid="download-summary-{other}">{own_words}</a>' in page
    )
    text = visible_text(page)
    if lang == "es":
        for spanish in (
            "Su lista de medicamentos · MTM Consult",
            "MTM Consult · solo lectura",
            "De su revisión de medicamentos del 5 de marzo de 2027. "
            "Esta página estará disponible hasta el 4 de abril de 2027.",
            "Descargar su resumen (PDF)",
            "Download your summary in English (PDF)",
            "Medicamentos",
            "Cómo lo uso 1 tableta dos veces al día",
            "Quién me lo recetó Dra. Rivera",
            "Estado Lo tomo",
            "Confirmado por usted Sí, así lo tomo",
            "Confirmado por usted Sin confirmar",
            "Propuesto — esperando a su médico: Subir la metformina a 1000 mg",
            "Recomendaciones Medir el potasio en 2 semanas — Propuesto — esperando a su médico",
            "Mi Plan de Acción de Medicamentos",
            "De qué hablamos La metformina con las comidas",
            "Lo que tengo que hacer Tomarla con el desayuno y la cena",
        ):
            assert spanish in text, spanish
    else:
        for english in (
            "Your medication list · MTM Consult",
            "From your medication review on March 5, 2027. "
            "This page stays available until April 4, 2027.",
            "Download your summary (PDF)",
            "Descargar su resumen en español (PDF)",
            "Status Taking",
            "Confirmed by you Yes, this is how I take it",
            "Confirmed by you Not confirmed",
            "Proposed — waiting for your doctor: Subir la metformina a 1000 mg",
        ):
            assert english in text, english
    # Each download link opens the summary in its language.
    for code in ("en", "es"):
        async with server.http.get(
            f"{server.base_url}/c/{token}/documents/summary.html?lang={code}"
        ) as summary:
            assert summary.status == 200
            assert f'lang="{code}"' in await summary.text()


async def test_an_empty_record_says_so_in_spanish(
    server: RunningServer, consult: dict[str, Any]
) -> None:
    bare = await server.create_consult(scheduled_at=consult["scheduled_at"])
    await server.end_consult(bare["id"])
    status, page = await get(server, bare["links"]["patient"], "?lang=es", {})
    assert status == 200
    assert_in("es", page, record_keys())
    assert "No se anotaron medicamentos." in page
    assert "No se anotaron puntos del plan de acción." in page


@pytest.mark.parametrize(("query", "headers", "lang"), ASKED)
async def test_the_summarys_refusals_are_in_the_language_asked_for(
    server: RunningServer, consult: dict[str, Any], query: str, headers: dict[str, str], lang: str
) -> None:
    base = consult["links"]["patient"] + "/documents/"
    cases = [
        ("summary.pdf", 403, "error.not_ready"),
        ("prescriber-letter.pdf", 403, "error.care_team_only"),
        ("nothing.pdf", 404, "error.no_document"),
    ]
    if query == "?lang=fr":
        # A document's `lang` names the document's language: one not offered is refused.
        cases = [
            ("summary.pdf", 400, "error.unknown_language"),
            ("nothing.pdf", 404, "error.no_document"),
        ]
    seen = {}
    for name, expected, prefix in cases:
        status, seen[name] = await get(server, base + name, query, headers)
        assert status == expected, name
        message = "link.invalid.message" if prefix == "error.no_document" else f"{prefix}.message"
        assert_in(lang, seen[name], template_keys("error.html") | {f"{prefix}.title", message})
        assert CATALOGUES[lang][f"{prefix}.title"] in seen[name]
    if lang == "es":
        assert "Todavía no está listo" in seen["summary.pdf"]
        not_ready = "Su resumen estará aquí cuando termine su revisión de medicamentos."
        assert not_ready in seen["summary.pdf"]
        assert "Este documento es para su equipo de salud." in seen["prescriber-letter.pdf"]


@pytest.mark.parametrize("lang", ["en", "es"])
async def test_an_embedded_ended_consult_says_so_in_the_themes_language(
    server: RunningServer, consult: dict[str, Any], lang: str
) -> None:
    await server.end_consult(consult["id"])
    link = consult["links"]["patient"].replace("/c/", "/embed/") + f"?lang={lang}"
    # The theme's language, whatever the browser prefers.
    status, page = await get(server, link, "", SPANISH if lang == "en" else ENGLISH)
    assert status == 410
    assert_in(lang, page, template_keys("error.html") | {"link.ended.title", "link.ended.message"})
    assert CATALOGUES[lang]["link.ended.title"] in page
    boot = json.loads(page.split('<script type="application/json" id="boot">', 1)[1].split("<")[0])
    assert boot["embed"]["error"] == {
        "code": "consult_ended",
        "message": CATALOGUES[lang]["link.ended.message"],
    }
