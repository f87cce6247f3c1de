"""The consult's documents (issue 9): the patient's CMS summary, the prescriber letter and
the FHIR Bundle, through the REST API and the participants' links, on the real server and
database; PDFs read back with Debian's `pdftotext`, FHIR validated with fhir.resources."""

from __future__ import annotations

import asyncio
import html
import re
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from models import panel_store
from tests.conftest import API_KEY, OTHER_API_KEY, RunningServer, token_of
from tests.support.database import database_digest
from tests.support.pdf import pdf_text, squash
from tests.support.review import INITIAL_MEDICATIONS, MARKUP, TEAM_ONLY, Review, tell_review

DOCUMENTS = [
    "summary.html",
    "summary.pdf",
    "prescriber-letter.html",
    "prescriber-letter.pdf",
    "fhir-bundle.json",
]


async def fetch(
    server: RunningServer, consult_id: str, name: str, key: str = API_KEY, **query: Any
) -> tuple[int, dict[str, str], bytes]:
    url = f"{server.base_url}/api/v1/consults/{consult_id}/documents/{name}"
    params = {k: str(v) for k, v in query.items()}
    async with server.http.get(url, params=params, headers={"X-API-Key": key}) as response:
        return response.status, dict(response.headers), await response.read()


def html_text(page: bytes) -> str:
    """The visible text of a document's HTML (tags dropped, entities decoded)."""
    body = page.decode().split("<body", 1)[1]
    return squash(html.unescape(re.sub(r"<[^>]+>", " ", body)))


@pytest.fixture
async def review(server: RunningServer) -> Review:
    return await tell_review(server)


# -- the patient's summary -----------------------------------------------------------------

FIELD_TEXT = [
    # Medication and strength, how I use it, why, prescriber, started, stopped, why stopped.
    "Metformin 1000 mg tablet",
    "1 tablet twice daily with meals",
    "Type 2 diabetes",
    "Dr. Rivera",
    "March 1, 2023",
    "Ibuprofen 200 mg",
    "2 tablets when needed for knee pain",
    "Knee pain",
    "June 10, 2025",
    "November 27, 2026",
    "Stomach upset; risky with lisinopril",
    "Lisinopril 10 mg tablet",
    "1 tablet every morning",
    "High blood pressure",
    "September 15, 2021",
    "Vitamin D3 1000 IU capsule",
    "1 capsule daily",
    "Bone health",
    "Take it with a meal",  # care-team notes the team shared
    "One capsule with breakfast",
    "I buy it at the store",
    # The new medication, from the recommendation the clinician accepted.
    "Atorvastatin 20 mg",
    "1 tablet at bedtime",
    "Lower cholesterol",
    # Allergies and side effects (the shared adverse drug reaction).
    "Stomach upset after ibuprofen",
    # The Medication Action Plan.
    "Taking metformin with meals",
    "Take metformin with breakfast and with dinner",
    "Knee pain without ibuprofen",
    "Use acetaminophen 500 mg, up to 3 times a day",
    # Shared recommendations with their outcome.
    "Increase metformin to 1000 mg twice daily — Your doctor agreed",
    "Start low-dose aspirin — Not changed",
    "Check potassium and kidney function in 2 weeks — Waiting for your doctor's answer",
    # Cover letter: provider, contact, plan, date of service; source of the list.
    "North Clinic Pharmacy",
    "555-0100",
    "Acme Part D",
    "what you told us, your pharmacy fill records and your medical record",
]


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {
        "documents": {
            "provider_contact": "555-0100 (weekdays 9 to 5)",
            "clinics": {"north": {"plan_name": "Acme Part D"}},
        }
    }


async def test_every_medication_and_field_appears_in_the_pdf(
    server: RunningServer, review: Review
) -> None:
    status, headers, pdf = await fetch(server, review.consult_id, "summary.pdf")
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    text = await pdf_text(pdf)
    for expected in FIELD_TEXT:
        assert expected in text, expected
    # Stopped medicines show why, next to their stop date.
    stopped = text.split("Ibuprofen 200 mg", 2)[2]
    assert "Stopped" in stopped[:200]
    assert "Stomach upset; risky with lisinopril" in stopped[:800]
    for section in ["Medication Action Plan", "Personal Medication List", "Dear María López:"]:
        assert section in text
    # The blank "what I did and when I did it", follow-up plan and questions.
    for prompt in [
        "What I did and when I did it:",
        "My follow-up plan",
        "Questions I want to ask",
    ]:
        assert prompt in text


async def test_the_spanish_copy_has_every_medication_in_spanish_words(
    server: RunningServer, review: Review
) -> None:
    status, _, pdf = await fetch(server, review.consult_id, "summary.pdf", lang="es")
    assert status == 200
    text = await pdf_text(pdf)
    for expected in [
        "Plan de Acción de Medicamentos",
        "Lista Personal de Medicamentos",
        "Estimado(a) María López:",
        "Metformin 1000 mg tablet",
        "Ibuprofen 200 mg",
        "Lo dejé",
        "27 de noviembre de 2026",
        "Stomach upset; risky with lisinopril",
        "Atorvastatin 20 mg",
        "Su médico estuvo de acuerdo",
        "Lo que hice y cuándo lo hice:",
    ]:
        assert expected in text, expected
    assert "Dear " not in text and "Medication Action Plan" not in text


async def test_nothing_care_team_only_is_in_the_patients_copy(
    server: RunningServer, review: Review
) -> None:
    for lang in ["en", "es"]:
        _, _, page = await fetch(server, review.consult_id, "summary.html", lang=lang)
        _, _, pdf = await fetch(server, review.consult_id, "summary.pdf", lang=lang)
        text = await pdf_text(pdf)
        for copy in [page.decode(), text]:
            assert TEAM_ONLY not in copy
            assert "Consider losartan" not in copy
            assert "check potassium before any change" not in copy
    # The letter for the care team has them all.
    _, _, letter = await fetch(server, review.consult_id, "prescriber-letter.pdf")
    letter_text = await pdf_text(letter)
    assert letter_text.count(TEAM_ONLY) >= 4


async def test_markup_is_escaped_in_html_and_inert_in_pdf(
    server: RunningServer, review: Review
) -> None:
    _, headers, page = await fetch(server, review.consult_id, "summary.html")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src" not in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    source = page.decode()
    assert "<script" not in source and "<img" not in source and "<b>Bold" not in source
    assert squash(MARKUP) in html_text(page)
    _, _, pdf = await fetch(server, review.consult_id, "summary.pdf")
    # The markup is text on the page (a line may wrap inside it), and the PDF holds no
    # image it could have fetched.
    assert "".join(MARKUP.split()) in "".join((await pdf_text(pdf)).split())
    assert b"/Image" not in pdf


# -- the prescriber letter and its answers ---------------------------------------------------


def response_links(letter: bytes) -> list[str]:
    return re.findall(r'href="(http://[^"]+/r/[^"]+)"', letter.decode())


async def test_the_letter_shows_problems_outcomes_and_a_response_block_for_each_undecided(
    server: RunningServer, review: Review
) -> None:
    status, _, letter = await fetch(server, review.consult_id, "prescriber-letter.html")
    assert status == 200
    text = html_text(letter)
    for expected in [
        "Adverse drug reaction",
        "Dosage too low",
        "Needs additional drug therapy",
        "Accepted by Dr. Rivera (clinician)",
        "Declined by Dr. Rivera (clinician)",
        "Strength: 1000 mg",
        "2 recommendations wait for your response",
    ]:
        assert expected in text, expected
    # Undecided and to the prescriber: "switch lisinopril" and "check labs".
    assert text.count("☐ Accept") == 2
    assert len(response_links(letter)) == 2


async def events_of(server: RunningServer, consult_id: str) -> list[dict[str, Any]]:
    async with server.state.sessions() as session:
        return await panel_store.events_since(session, consult_id, 0)


async def answer(server: RunningServer, link: str, **form: str) -> tuple[int, str]:
    async with server.http.post(link, data=form) as response:
        return response.status, await response.text()


async def test_a_prescribers_online_answer_lands_in_the_change_log_once(
    server: RunningServer, review: Review
) -> None:
    _, _, letter = await fetch(server, review.consult_id, "prescriber-letter.html")
    switch_link, labs_link = response_links(letter)
    async with server.http.get(labs_link) as page:
        assert page.status == 200
        assert "Check potassium and kidney function" in await page.text()
    before = await events_of(server, review.consult_id)
    status, body = await answer(
        server, labs_link, decision="accepted", notes="Ordered BMP", name="Dr. Chen"
    )
    assert status == 200 and "Your answer is recorded: accepted" in body
    after = await events_of(server, review.consult_id)
    assert len(after) == len(before) + 1
    event = after[-1]
    assert (event["entity_id"], event["field"], event["new"]) == (
        review.ids["check_labs"],
        "status",
        "accepted",
    )
    assert event["actor"]["name"] == "Dr. Chen" and event["actor"]["role"] == "prescriber"
    assert event["detail"] == {"response": {"notes": "Ordered BMP"}}

    # The same link again, a second answer, or a forged link: refused, nothing written.
    digest = await database_digest(server.state.sessions)
    status, body = await answer(server, labs_link, decision="declined", name="Dr. Chen")
    assert status == 409 and "already accepted by Dr. Chen" in body
    async with server.http.get(labs_link) as page:
        assert page.status == 409 and "Already answered" in await page.text()
    payload, signature = switch_link.rsplit("/r/", 1)[1].split(".")
    forged = switch_link.replace(signature, signature[::-1])
    status, body = await answer(server, forged, decision="accepted", name="Dr. Chen")
    assert status == 404 and "This link is not valid" in body
    status, _ = await answer(server, switch_link, decision="maybe", name="Dr. Chen")
    assert status == 422
    status, _ = await answer(server, switch_link, decision="declined", name="  ")
    assert status == 422
    assert await database_digest(server.state.sessions) == digest

    # Two answers through one link at the same time: one lands, the other is refused.
    results = await asyncio.gather(
        answer(server, switch_link, decision="declined", name="Dr. Chen"),
        answer(server, switch_link, decision="accepted", name="Dr. Chen"),
    )
    assert sorted(status for status, _ in results) == [200, 409]
    final = await events_of(server, review.consult_id)
    assert len(final) == len(after) + 1

    # The default documents stay those of the end; the answer shows at a later seq.
    _, _, at_end = await fetch(server, review.consult_id, "prescriber-letter.html")
    assert at_end == letter
    _, _, later = await fetch(
        server, review.consult_id, "prescriber-letter.html", seq=final[-1]["seq"]
    )
    later_text = html_text(later)
    assert "Accepted by Dr. Chen (prescriber)" in later_text and "Ordered BMP" in later_text
    assert len(response_links(later)) == 0
    # The prescriber's notes are for the care team only.
    _, _, summary = await fetch(server, review.consult_id, "summary.html", seq=final[-1]["seq"])
    assert "Ordered BMP" not in summary.decode()


async def test_a_response_link_answers_only_after_the_consult_ends(
    server: RunningServer,
) -> None:
    review = await tell_review(server, end=False)
    _, _, letter = await fetch(server, review.consult_id, "prescriber-letter.html")
    assert b"Preview: this consult is still in progress." in letter
    link = response_links(letter)[0]
    digest = await database_digest(server.state.sessions)
    status, body = await answer(server, link, decision="accepted", name="Dr. Chen")
    assert status == 409 and "still in progress" in body
    assert await database_digest(server.state.sessions) == digest


# -- determinism and the seq -------------------------------------------------------------------


async def test_the_same_request_twice_gives_the_same_document(
    server: RunningServer, review: Review
) -> None:
    for name in DOCUMENTS:
        first = await fetch(server, review.consult_id, name)
        server.state.pdf.clear_cache()  # the PDF is made again, not served from memory
        second = await fetch(server, review.consult_id, name)
        assert first[0] == 200 and first[2] == second[2], name
    # An earlier seq is another, equally stable document.
    early = await fetch(server, review.consult_id, "summary.html", seq=5)
    assert early[2] == (await fetch(server, review.consult_id, "summary.html", seq=5))[2]
    assert early[2] != (await fetch(server, review.consult_id, "summary.html"))[2]
    assert b"Atorvastatin" not in early[2]


async def test_documents_of_a_live_consult_follow_its_latest_change(
    server: RunningServer,
) -> None:
    review = await tell_review(server, end=False)
    _, _, page = await fetch(server, review.consult_id, "summary.html")
    assert b"Preview: this consult is still in progress." in page
    assert b"Atorvastatin" in page


async def test_replaying_the_log_gives_the_stored_panel(
    server: RunningServer, review: Review
) -> None:
    async with server.state.sessions() as session:
        stored = await panel_store.snapshot(session, review.consult_id)
        replayed = await panel_store.snapshot_at(session, review.consult_id, stored["seq"])
    assert replayed == stored


# -- FHIR ------------------------------------------------------------------------------------


async def import_fhir(
    server: RunningServer, consult_id: str, resource: Any
) -> tuple[int, dict[str, Any]]:
    url = f"{server.base_url}/api/v1/consults/{consult_id}/medications/import"
    async with server.http.post(url, json=resource, headers={"X-API-Key": API_KEY}) as response:
        return response.status, await response.json()


CARRIED = [
    "name", "strength", "form", "rxnorm_code", "how_taken", "why", "prescriber", "start_date",
    "stop_date", "why_stopped", "status", "kind", "source", "notes", "notes_audience",
]  # fmt: skip


def carried(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{name: e["data"].get(name) for name in CARRIED} for e in entities]


async def test_the_fhir_bundle_validates_and_round_trips_through_import(
    server: RunningServer, review: Review
) -> None:
    status, headers, raw = await fetch(server, review.consult_id, "fhir-bundle.json")
    assert status == 200 and headers["Content-Type"] == "application/fhir+json; charset=utf-8"
    bundle = Bundle.model_validate_json(raw)
    assert bundle.type == "document" and bundle.entry[0].resource.get_resource_type() == (
        "Composition"
    )
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry]
    assert kinds.count("MedicationStatement") == 5
    assert kinds.count("DetectedIssue") == 3
    assert kinds.count("CarePlan") == 1 and kinds.count("List") == 1
    assert kinds.count("Provenance") == 5 + 3 + 5 + 3  # one per panel entity
    urls = {entry.fullUrl for entry in bundle.entry}
    assert len(urls) == len(bundle.entry)

    fresh = await server.create_consult()
    status, imported = await import_fhir(server, fresh["id"], await_json(raw))
    assert status == 200, imported
    async with server.state.sessions() as session:
        original = await panel_store.snapshot(session, review.consult_id)
    medications = [e for e in original["entities"] if e["type"] == "medication"]
    assert carried(imported["medications"]) == carried(medications)
    # The List alone (contained MedicationStatements) reads the same.
    statements = [
        e.resource for e in bundle.entry if e.resource.get_resource_type() == "MedicationStatement"
    ]
    contained = {
        "resourceType": "List",
        "status": "current",
        "mode": "snapshot",
        "contained": [
            {**s.model_dump(mode="json", exclude_none=True), "id": f"m{i}"}
            for i, s in enumerate(statements)
        ],
        "entry": [{"item": {"reference": f"#m{i}"}} for i in range(len(statements))],
    }
    other = await server.create_consult()
    status, from_list = await import_fhir(server, other["id"], contained)
    assert status == 200, from_list
    assert carried(from_list["medications"]) == carried(medications)


def await_json(raw: bytes) -> Any:
    import json

    return json.loads(raw)


def statement(**fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "subject": {"display": "Patient"},
        "medicationCodeableConcept": {"text": "Metformin"},
        **fields,
    }


def bundle_of(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{i}", "resource": r} for i, r in enumerate(resources)],
    }


@pytest.mark.parametrize(
    ("resource", "code", "fields"),
    [
        ({"resourceType": "Patient", "id": "x"}, "invalid_body", ["resourceType"]),
        ({"hello": "world"}, "invalid_body", ["resourceType"]),
        ({"resourceType": "Bundle", "entry": []}, "invalid_fhir", ["bundle"]),
        (
            bundle_of(statement(), statement(medicationCodeableConcept=None)),
            "invalid_fhir",
            ["entry.1.resource"],
        ),
        (
            bundle_of(
                statement(effectivePeriod={"start": "03/01/2023"}),
                statement(),
                statement(effectivePeriod={"start": "2023-03"}),
                statement(effectivePeriod={"end": "2023-02-30"}),
            ),
            "invalid_fhir",
            ["entry.0.resource", "entry.2.resource", "entry.3.resource"],
        ),
        (
            bundle_of(statement(status="dreaming")),
            "invalid_fhir",
            ["entry.0.resource"],
        ),
        (
            # Read, then refused by the panel's own rules (a stop before the start).
            bundle_of(statement(effectivePeriod={"start": "2024-05-01", "end": "2024-01-01"})),
            "invalid_fhir",
            ["entry.0.resource"],
        ),
        (
            {"resourceType": "List", "entry": [{"item": {"reference": "#nope"}}]},
            "invalid_fhir",
            ["entry.0.item"],
        ),
    ],
)
async def test_bad_fhir_is_refused_per_entry_and_nothing_is_added(
    server: RunningServer, resource: dict[str, Any], code: str, fields: list[str]
) -> None:
    consult = await server.create_consult(medications=INITIAL_MEDICATIONS[:1])
    digest = await database_digest(server.state.sessions)
    status, body = await import_fhir(server, consult["id"], resource)
    assert status == 422, body
    assert body["error"]["code"] == code
    assert [item["field"] for item in body["error"]["fields"]] == fields
    assert all(item["message"] for item in body["error"]["fields"])
    assert await database_digest(server.state.sessions) == digest


async def test_import_is_for_a_consult_that_has_not_started(
    server: RunningServer, review: Review
) -> None:
    status, body = await import_fhir(server, review.consult_id, bundle_of(statement()))
    assert status == 409 and body["error"]["code"] == "consult_ended"


# -- who may see what -----------------------------------------------------------------------


async def test_unknown_consults_seqs_and_languages_are_refused(
    server: RunningServer, review: Review
) -> None:
    assert (await fetch(server, "c_unknown123", "summary.pdf"))[0] == 404
    # Another clinic's consult is as unknown as one that does not exist.
    assert (await fetch(server, review.consult_id, "summary.pdf", key=OTHER_API_KEY))[0] == 404
    status, _, body = await fetch(server, review.consult_id, "summary.html", seq=10_000)
    assert status == 400 and b"invalid_query" in body
    status, _, body = await fetch(server, review.consult_id, "summary.html", lang="fr")
    assert status == 400 and b"invalid_query" in body
    # A misspelt parameter is refused, not ignored (the letter takes no language).
    for name, query in [
        ("summary.html", {"language": "es"}),
        ("prescriber-letter.pdf", {"lang": "es"}),
    ]:
        status, _, body = await fetch(server, review.consult_id, name, **query)
        assert status == 400 and b"invalid_query" in body


async def test_participants_links_open_what_their_role_may_see(server: RunningServer) -> None:
    review = await tell_review(server, end=False)
    links = review.consult["links"]

    async def page(role: str, name: str) -> tuple[int, bytes, dict[str, str]]:
        url = f"{server.base_url}/c/{token_of(links[role])}/documents/{name}"
        async with server.http.get(url) as response:
            return response.status, await response.read(), dict(response.headers)

    # During the call: the care team previews everything; the patient waits for the end.
    status, body, _ = await page("pharmacist", "summary.html")
    assert status == 200 and b"Personal Medication List" in body
    assert (await page("clinician", "prescriber-letter.pdf"))[0] == 200
    status, body, _ = await page("patient", "summary.pdf")
    assert status == 403 and b"when your medication review has ended" in body
    async with server.http.get(links["pharmacist"]) as call:
        assert f"/c/{token_of(links['pharmacist'])}/documents/summary.html" in await call.text()

    await server.end_consult(review.consult_id)
    status, body, headers = await page("patient", "summary.pdf")
    assert status == 200 and body.startswith(b"%PDF-")
    assert headers["Content-Disposition"].startswith("attachment;")
    assert headers["Cache-Control"] == "no-store"
    assert TEAM_ONLY not in await pdf_text(body)
    status, body, _ = await page("patient", "prescriber-letter.html")
    assert status == 403 and b"for your care team" in body
    assert (await page("pharmacist", "summary.html"))[0] == 410
    async with server.http.get(links["patient"]) as record:
        text = await record.text()
    assert f"/c/{token_of(links['patient'])}/documents/summary.pdf" in text
    assert (await page("patient", "nothing.pdf"))[0] == 404
