"""Documents without a server: the replay of the change log, the prescriber's answer as a
domain rule, both languages' words, FHIR import of hostile input, response-link tokens, and
PDFs that fetch nothing and render off the event loop."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from documents import content, fhir, render, text
from documents.pdf import html_to_pdf
from models.mutations import (
    PRESCRIBER,
    Actor,
    EventRecord,
    MutationError,
    PanelState,
    PrescriberResponse,
    apply,
    respond,
)
from models.replay import ReplayError, state_at
from models.roles import Action
from server.documents import PdfRenderer
from server.security import redact_path
from server.tokens import LinkSigner, ResponseClaims, ResponseSigner, TokenError
from tests.support.loop_pause import longest_pause

NOW = dt.datetime(2026, 11, 27, 15, 30, tzinfo=dt.UTC)
PHARMACIST = Actor("p1", "Ana", "pharmacist")
CLINICIAN = Actor("p2", "Dr. Lee", "clinician")
PATIENT = Actor("p3", "Maria", "patient")


class Story:
    """A panel changed by real mutations; every event and the snapshot after each kept."""

    def __init__(self) -> None:
        self.state = PanelState("c_story", "live", 0)
        self.events: list[EventRecord] = []
        self.snapshots: dict[int, dict[str, Any]] = {0: self.state.snapshot()}
        self.count = 0
        self.now = NOW

    def do(self, actor: Actor, **mutation: Any) -> dict[str, Any]:
        self.count += 1
        mutation.setdefault("mutation_id", f"m{self.count}")
        result, changes = apply(self.state, actor, mutation, now=self.now)
        self.keep(changes.events)
        self.now += dt.timedelta(seconds=3)
        return result

    def keep(self, events: list[EventRecord]) -> None:
        self.events += events
        self.snapshots[self.state.last_seq] = copy.deepcopy(self.state.snapshot())

    def version(self, entity_id: str, name: str) -> int:
        return self.state.entities[entity_id].versions[name]


def tell() -> tuple[Story, dict[str, str]]:
    story = Story()
    ids: dict[str, str] = {}
    med = story.do(
        PHARMACIST,
        op="add",
        entity="medication",
        value={"name": "Metformin", "strength": "500 mg", "how_taken": "twice daily"},
    )["entity"]["id"]
    other = story.do(PHARMACIST, op="add", entity="medication", value={"name": "Aspirin"})
    ids["med"], ids["other"] = med, other["entity"]["id"]
    story.do(PHARMACIST, op="move", entity="medication", entity_id=ids["other"], after=None)
    # The patient confirms; a change of a bound value resets it (a derived event).
    story.do(
        PATIENT,
        op="set",
        entity="medication",
        entity_id=med,
        field="patient_confirmation",
        value="confirmed",
        base_version=story.version(med, "patient_confirmation"),
    )
    story.do(
        PHARMACIST,
        op="set",
        entity="medication",
        entity_id=med,
        field="how_taken",
        value="with meals",
        base_version=story.version(med, "how_taken"),
    )
    # A stale write: a conflict event, nothing changed.
    conflict = story.do(
        CLINICIAN,
        op="set",
        entity="medication",
        entity_id=med,
        field="how_taken",
        value="at night",
        base_version=1,
    )
    assert conflict["error"]["code"] == "conflict"
    rec = story.do(
        PHARMACIST,
        op="add",
        entity="recommendation",
        value={"text": "Raise the dose", "medication_id": med, "proposed": {"strength": "1000 mg"}},
    )["entity"]["id"]
    start = story.do(
        PHARMACIST,
        op="add",
        entity="recommendation",
        value={"text": "Start a statin", "change": "start", "proposed": {"name": "Atorvastatin"}},
    )["entity"]["id"]
    later = story.do(PHARMACIST, op="add", entity="recommendation", value={"text": "Check labs"})[
        "entity"
    ]["id"]
    ids.update(rec=rec, start=start, later=later)
    # Accepting applies the proposed values (derived events; a new medication for a start).
    for target in (rec, start):
        story.do(
            CLINICIAN,
            op="set",
            entity="recommendation",
            entity_id=target,
            field="status",
            value="accepted",
            base_version=story.version(target, "status"),
        )
    story.do(
        PHARMACIST,
        op="add",
        entity="plan_item",
        value={"talked_about": "Meals", "to_do": "Take it with food"},
    )
    return story, ids


def end(story: Story) -> None:
    story.state.status = "ended"


def event_json(story: Story) -> list[dict[str, Any]]:
    return [event.json() for event in story.events]


def test_replaying_the_log_gives_the_panel_as_it_was_at_every_seq() -> None:
    story, ids = tell()
    end(story)
    result, changes = respond(
        story.state,
        Actor(None, "Dr. Chen", PRESCRIBER),
        PrescriberResponse(
            ids["later"], "declined", "Not needed", story.version(ids["later"], "status"), "r1"
        ),
        now=story.now,
    )
    assert result["ok"]
    story.keep(changes.events)
    events = event_json(story)
    kinds = {(event["op"], event["outcome"]) for event in events}
    assert {("derived", "applied"), ("move", "applied"), ("set", "conflict")} <= kinds
    for seq, expected in story.snapshots.items():
        assert state_at("c_story", "ended", events, seq).snapshot() == expected, seq
    with pytest.raises(ReplayError):
        state_at("c_story", "ended", events, story.state.last_seq + 1)
    with pytest.raises(ReplayError):
        state_at("c_story", "ended", events[1:], 3)


def prescriber(name: str = "Dr. Chen") -> Actor:
    return Actor(None, name, PRESCRIBER)


def test_a_prescriber_answers_once_after_the_end_and_nothing_else() -> None:
    story, ids = tell()
    later = ids["later"]
    base = story.version(later, "status")

    def answer(**overrides: Any) -> tuple[dict[str, Any], Any]:
        fields: dict[str, Any] = {
            "recommendation_id": later,
            "decision": "accepted",
            "notes": None,
            "base_version": base,
            "response_id": "response-1",
        }
        fields.update(overrides)
        actor = fields.pop("actor", prescriber())
        return respond(story.state, actor, PrescriberResponse(**fields), now=story.now)

    def refused(code: str, **overrides: Any) -> None:
        before = copy.deepcopy(story.state.snapshot())
        with pytest.raises(MutationError) as error:
            answer(**overrides)
        assert error.value.code == code
        assert story.state.snapshot() == before

    refused("consult_not_ended")
    end(story)
    refused("invalid_value", decision="maybe")
    refused("invalid_value", notes="x" * 2001)
    refused("invalid_value", actor=prescriber(" "))
    refused("unknown_entity", recommendation_id="r_nope")
    refused("unknown_entity", recommendation_id=ids["med"])
    refused("stale_link", base_version=base - 1)
    refused("already_answered", recommendation_id=ids["rec"])
    result, changes = answer(notes="Ordered labs")
    assert [e.field for e in changes.events] == ["status"]
    data = story.state.entities[later].data
    assert (data["status"], data["decided_by"], data["decided_by_role"]) == (
        "accepted",
        "Dr. Chen",
        "prescriber",
    )
    assert data["decision_notes"] == "Ordered labs"
    refused("already_answered")
    # A prescriber may decide, and nothing else.
    assert prescriber().may(Action.DECIDE_RECOMMENDATION)
    assert not prescriber().may(Action.EDIT_MEDICATION)


def test_both_languages_have_every_word() -> None:
    for table in (
        text.WORDS,
        text.STATUS,
        text.KIND,
        text.SOURCE,
        text.ADHERENCE,
        text.CONFIRMATION,
        text.OUTCOME,
    ):
        assert set(table["en"]) == set(table["es"])
        assert all(table["es"].values())
    assert text.long_date(dt.date(2026, 1, 5), "es") == "5 de enero de 2026"
    assert text.long_date(dt.date(2026, 1, 5), "en") == "January 5, 2026"


def facts(seq: int, status: str = "ended") -> content.ConsultFacts:
    return content.ConsultFacts(
        consult_id="c_story",
        patient_name="María <López>",
        service_date=dt.date(2026, 11, 27),
        status=status,
        seq=seq,
        prepared_at=NOW,
        provider_name="North & Co",
        provider_contact=None,
        plan_name=None,
        pharmacist_name="Ana",
    )


def test_the_same_panel_gives_the_same_bytes_and_names_are_escaped() -> None:
    story, _ = tell()
    snapshot = story.state.snapshot()
    pages = [
        render.summary_html(content.patient_summary(facts(story.state.last_seq), snapshot, "es"))
        for _ in range(2)
    ]
    assert pages[0] == pages[1]
    assert "María &lt;López&gt;" in pages[0] and "<López>" not in pages[0]
    assert "North &amp; Co" in pages[0]
    bundles = [
        fhir.export_bundle(facts(story.state.last_seq), snapshot, event_json(story))
        for _ in range(2)
    ]
    assert bundles[0] == bundles[1]


# -- FHIR import of anything ---------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "resourceType",
                    "entry",
                    "resource",
                    "fullUrl",
                    "item",
                    "reference",
                    "contained",
                    "id",
                    "status",
                    "medicationCodeableConcept",
                    "text",
                    "coding",
                    "effectivePeriod",
                    "start",
                    "end",
                    "dosage",
                    "note",
                    "extension",
                    "url",
                    "valueString",
                    "medicationReference",
                    "reasonCode",
                    "statusReason",
                    "informationSource",
                ]
            ),  # fmt: skip
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)
RESOURCES = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Bundle", "List", "Patient"])}, optional={"entry": JSON}
) | st.builds(
    lambda statement: {
        "resourceType": "Bundle",
        "entry": [
            {
                "fullUrl": "urn:uuid:1",
                "resource": {"resourceType": "MedicationStatement", **statement},
            }
        ],
    },
    st.dictionaries(
        st.sampled_from(
            [
                "status",
                "medicationCodeableConcept",
                "effectivePeriod",
                "dosage",
                "note",
                "extension",
                "effectiveDateTime",
            ]
        ),
        JSON,
        max_size=5,
    ),
)


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(resource=RESOURCES)
def test_import_reads_or_names_the_entry_it_cannot_read_whatever_it_is_sent(
    resource: dict[str, Any],
) -> None:
    try:
        medications, errors = fhir.import_medications(resource)
    except fhir.NotFhir:
        assert resource["resourceType"] not in ("Bundle", "List")
        return
    assert medications or errors
    for error in errors:
        assert error.where and error.message
    for medication in medications:
        assert isinstance(medication.fields["name"], str) and medication.fields["name"]


# -- response links ------------------------------------------------------------------------

SECRET = "s" * 40


def test_response_links_are_signed_deterministic_and_their_own_kind() -> None:
    signer = ResponseSigner(SECRET)
    claims = ResponseClaims("c_1", "r_1", 7, expires_at=2_000_000_000)
    token = signer.sign(claims)
    assert token == signer.sign(claims)
    assert signer.verify(token, now=1_900_000_000) == claims
    with pytest.raises(TokenError) as expired:
        signer.verify(token, now=2_000_000_000)
    assert expired.value.code == "expired_token"
    payload, signature = token.split(".")
    for forged in [f"{payload}.{signature[::-1]}", f"{payload[:-2]}xx.{signature}", "", "a.b.c"]:
        with pytest.raises(TokenError) as invalid:
            signer.verify(forged, now=0)
        assert invalid.value.code == "invalid_token"
    with pytest.raises(TokenError):
        ResponseSigner("t" * 40).verify(token, now=0)
    # A join link's token is never a response link's, signed with the same secret.
    from models.roles import Role
    from server.tokens import LinkClaims

    join = LinkSigner(SECRET).sign(LinkClaims("c_1", "p_1", Role.PATIENT, 2_000_000_000, "t_1"))
    with pytest.raises(TokenError):
        signer.verify(join, now=0)
    assert redact_path(f"/r/{token}") == "/r/<token>"


# -- PDFs ------------------------------------------------------------------------------------


@pytest.fixture
async def counting_server() -> AsyncIterator[tuple[list[str], str]]:
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=b"body{}", content_type="text/css")

    app = web.Application()
    app.router.add_get("/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield hits, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_a_pdf_fetches_nothing_even_from_markup_that_was_not_escaped(
    counting_server: tuple[list[str], str],
) -> None:
    hits, base = counting_server
    raw = (
        f'<link rel="stylesheet" href="{base}/style.css">'
        f'<style>@import url("{base}/import.css");</style>'
        f'<p>hello <img src="{base}/pixel.png"> <img src="file:///etc/hostname"></p>'
    )
    pdf = await asyncio.to_thread(html_to_pdf, raw)
    assert pdf.startswith(b"%PDF-") and hits == []
    # The same page through WeasyPrint's own fetcher would have fetched (the check above
    # can fail).
    import weasyprint

    await asyncio.to_thread(weasyprint.HTML(string=raw).write_pdf)
    assert hits


def twenty_medications() -> str:
    story = Story()
    for index in range(20):
        story.do(
            PHARMACIST,
            op="add",
            entity="medication",
            value={
                "name": f"Medication {index}",
                "strength": "10 mg",
                "how_taken": "1 tablet every morning with water",
                "why": "Blood pressure",
                "prescriber": "Dr. Rivera",
                "start_date": "2024-01-05",
            },
        )
    summary = content.patient_summary(facts(story.state.last_seq), story.state.snapshot(), "en")
    return render.summary_html(summary)


async def test_a_pdf_renders_off_the_event_loop() -> None:
    page = twenty_medications()
    renderer = PdfRenderer(1)
    try:
        await renderer.pdf("<p>warm up</p>")  # starts the worker and loads WeasyPrint

        async def in_worker() -> None:
            assert (await renderer.pdf(page)).startswith(b"%PDF-")

        async def on_loop() -> None:
            html_to_pdf(page)

        pause, elapsed = await longest_pause(in_worker)
        blocked, on_loop_elapsed = await longest_pause(on_loop)
    finally:
        await renderer.stop()
    # On the loop, the render is one pause as long as itself; in a worker the loop keeps
    # ticking: its longest pause is a small part of that (a loose bound: the worker, this
    # process and others share two cores, so the scheduler alone pauses it for tens of ms).
    assert blocked >= 0.8 * on_loop_elapsed > 0.1
    assert pause < 0.25 * blocked, (pause, elapsed, blocked)
