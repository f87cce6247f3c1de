"""The call embedded in a clinic's portal, in real Chromium (docs/embed.md).

The portal is the example host page (web/examples/, server/example_host.py) served from
http://localhost:<port>; the call comes from http://127.0.0.1:<port>, another origin. Media
goes through a real coturn, relay only. A foreign page (yet another origin) tries to talk to
both sides; a portal whose origin the clinic did not allow is refused by the browser.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from playwright.async_api import Browser, ConsoleMessage, Frame, Page

from server.example_host import example_host_app
from tests.browser.conftest import open_page, poll, start_join, wait_for_state
from tests.browser.test_call import assert_relay_on_loopback
from tests.conftest import API_KEY, RunningServer, token_of
from tests.support.sockets import joined

pytestmark = pytest.mark.browser


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.fixture
async def portal(server: RunningServer) -> AsyncIterator[str]:
    """The example portal's origin, http://localhost:<port>, embedding calls of `server`."""
    runner, port = await serve(example_host_app(server.base_url))
    yield f"http://localhost:{port}"
    await runner.cleanup()


# A page of a third origin that, opened from the portal, posts well-formed messages to the
# portal's window and to the call's frame inside it (a popup, an ad, a compromised widget).
FOREIGN_PAGE = """<!doctype html><title>foreign</title><script>
const envelope = {mtm: "mtm-consult", v: 1};
const embed = window.opener.frames[0];
embed.postMessage({...envelope, type: "hello"}, "*");
embed.postMessage({...envelope, type: "command", id: "f1", command: "set-panel",
                   args: {visible: false}}, "*");
embed.postMessage({...envelope, type: "command", id: "f2", command: "set-language",
                   args: {language: "es"}}, "*");
window.opener.postMessage({...envelope, type: "event", event: "consult-ended", data: {}}, "*");
window.opener.postMessage({...envelope, type: "event", event: "error",
                           data: {code: "forbidden", message: "forged"}}, "*");
window.opener.postMessage({...envelope, type: "ready", data: {participant_id: "p_forged"}}, "*");
document.title = "sent";
</script>"""


@pytest.fixture
async def foreign() -> AsyncIterator[str]:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=FOREIGN_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner, port = await serve(app)
    yield f"http://localhost:{port}/"
    await runner.cleanup()


async def allow(server: RunningServer, origins: list[str], *, names: bool = False) -> None:
    async with server.http.put(
        f"{server.base_url}/api/v1/clinic/embed",
        json={"allowed_origins": origins, "medication_names_in_events": names},
        headers={"X-API-Key": API_KEY},
    ) as answer:
        assert answer.status == 200, await answer.text()


async def open_portal(browser: Browser, portal: str, link: str, extra: str = "") -> Page:
    host = await open_page(browser, f"{portal}/#link={quote(link, safe=':/')}{extra}")
    await host.locator('[data-event="ready"]').first.wait_for(timeout=15_000)
    return host


def embed_frame(host: Page) -> Frame:
    for frame in host.frames:
        if "/embed/" in frame.url:
            return frame
    raise AssertionError(f"no embed frame in {[frame.url for frame in host.frames]}")


async def events(host: Page, name: str) -> list[dict[str, Any]]:
    """What the portal's event log shows for `name`, oldest first."""
    texts: list[str] = await host.evaluate(
        """name => [...document.querySelectorAll(`[data-event="${name}"] code`)]
             .map((code) => code.textContent)""",
        name,
    )
    return [json.loads(text) for text in texts]


async def wait_for_event(
    host: Page, name: str, check: Any = lambda data: True, *, timeout: float = 15.0
) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    async def seen() -> bool:
        found[:] = [data for data in await events(host, name) if check(data)]
        return bool(found)

    await poll(seen, timeout=timeout, what=f"a {name} event in the portal")
    return found[-1]


async def command(host: Page, script: str) -> dict[str, Any]:
    """Run an SDK call on the portal's `consultFrame`: {ok, value} or {ok: false, code}."""
    result: dict[str, Any] = await host.evaluate(
        f"""async () => {{
          try {{ return {{ ok: true, value: await window.consultFrame.{script} }}; }}
          catch (error) {{ return {{ ok: false, code: error.code, message: error.message }}; }}
        }}"""
    )
    return result


async def frame_state(frame: Frame, state: str) -> None:
    await frame.wait_for_function(
        "state => window.mtm && window.mtm.state === state", arg=state, timeout=15_000
    )


async def frames_decoded(target: Page | Frame) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await target.evaluate("window.mtm.stats()")
    return result


async def wait_for_media(target: Page | Frame) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []

    async def decoding() -> bool:
        entries[:] = await frames_decoded(target)
        return bool(entries) and all(entry["framesDecoded"] > 5 for entry in entries)

    await poll(decoding, timeout=30, what="decoded video frames")
    return entries


async def local_enabled(frame: Frame, kind: str) -> bool:
    tracks: list[dict[str, Any]] = await frame.evaluate("window.mtm.localTracks()")
    return bool(next(track for track in tracks if track["kind"] == kind)["enabled"])


async def test_the_portal_runs_the_waiting_room_and_the_embedded_call(
    server: RunningServer, browser: Browser, portal: str
) -> None:
    await allow(server, [portal])
    consult = await server.create_consult(admit_patient=False)
    host = await open_portal(browser, portal, consult["links"]["pharmacist"])
    frame = embed_frame(host)
    assert frame.url.startswith(f"{server.base_url}/embed/")
    # The portal joins the pharmacist with a command, then sees the patient wait.
    assert (await command(host, "join('Ana Pharmacist')"))["value"] == {"state": "in-call"}
    await frame_state(frame, "in-call")
    joined_event = await wait_for_event(host, "joined")
    assert joined_event["role"] == "pharmacist" and joined_event["participants"] == []
    patient = await open_page(browser, consult["links"]["patient"])
    await start_join(patient, "Maria Lopez")
    await wait_for_state(patient, "waiting")
    waiting = await wait_for_event(host, "participant-waiting", lambda data: data["waiting"])
    assert [(p["display_name"], p["role"]) for p in waiting["waiting"]] == [
        ("Maria Lopez", "patient")
    ]
    # Admitted from the portal's own list (its Admit button, not the call's).
    person = host.get_by_test_id("host-waiting-person")
    assert "Maria Lopez (patient)" in await person.inner_text()
    await host.get_by_test_id("host-admit").click()
    await wait_for_state(patient, "in-call")
    arrived = await wait_for_event(host, "participant-joined")
    assert arrived["participant"]["display_name"] == "Maria Lopez"
    await wait_for_event(host, "participant-waiting", lambda data: data["waiting"] == [])
    # Media both ways through coturn, relay only, between the frame and the patient.
    assert_relay_on_loopback(await wait_for_media(frame))
    assert_relay_on_loopback(await wait_for_media(patient))

    # Commands from the portal's controls act in the frame.
    await host.get_by_test_id("host-mute").click()
    await poll(lambda: _not(local_enabled(frame, "audio")), what="microphone muted")
    await host.get_by_test_id("host-camera").click()
    await poll(lambda: _not(local_enabled(frame, "video")), what="camera off")
    assert await frame.get_by_test_id("mic-button").get_attribute("aria-pressed") == "true"
    assert await frame.locator("#side-panel").is_visible()
    await host.get_by_test_id("host-panel").click()
    await frame.locator("#side-panel").wait_for(state="hidden")
    await host.get_by_test_id("host-language").select_option("es")
    await frame.wait_for_function("() => document.documentElement.lang === 'es'")
    assert await frame.get_by_test_id("leave-button").inner_text() == "Salir"

    # Panel events reach the portal with ids and field names, never names or text.
    clinician_token = token_of(consult["links"]["clinician"])
    async with joined(server.base_url, clinician_token, "Dr Okafor") as (clinician, _):
        added = await clinician.sio.call(
            "mutate",
            {
                "mutation_id": "med-1",
                "op": "add",
                "entity": "medication",
                "value": {"name": "Warfarin", "strength": "5 mg"},
            },
        )
        assert added["ok"], added
        recommended = await clinician.sio.call(
            "mutate",
            {
                "mutation_id": "rec-1",
                "op": "add",
                "entity": "recommendation",
                "value": {"text": "Stop the ibuprofen: bleeding risk", "to": "prescriber"},
            },
        )
        assert recommended["ok"], recommended
        decided = await clinician.sio.call(
            "mutate",
            {
                "mutation_id": "rec-2",
                "op": "set",
                "entity": "recommendation",
                "entity_id": recommended["entity"]["id"],
                "field": "status",
                "value": "accepted",
                "base_version": recommended["entity"]["versions"]["status"],
            },
        )
        assert decided["ok"], decided
        changed = await wait_for_event(host, "medication-changed")
        assert changed == {
            "seq": added["seq"],
            "medication_id": added["entity"]["id"],
            "op": "add",
            "field": None,
            "by_role": "clinician",
        }
        decision = await wait_for_event(host, "recommendation-decided")
        assert decision == {
            "seq": decided["seq"],
            "recommendation_id": recommended["entity"]["id"],
            "decision": "accepted",
            "medication_id": None,
            "by_role": "clinician",
        }
    log = await host.get_by_test_id("host-log").inner_text()
    assert "Warfarin" not in log and "ibuprofen" not in log and "5 mg" not in log

    patient_id = arrived["participant"]["id"]
    await patient.get_by_test_id("leave-button").click()
    left = await wait_for_event(
        host, "participant-left", lambda e: e["participant_id"] == patient_id
    )
    assert left == {"participant_id": patient_id, "reason": "left"}

    await server.end_consult(consult["id"], "all done")
    await wait_for_event(host, "consult-ended")
    await wait_for_event(host, "state", lambda data: data["state"] == "ended")
    assert "all done" not in await host.get_by_test_id("host-log").inner_text()


async def _not(value: Any) -> bool:
    return not await value


async def test_a_patients_embed_cannot_manage_and_bad_messages_are_refused(
    server: RunningServer, browser: Browser, portal: str
) -> None:
    await allow(server, [portal])
    consult = await server.create_consult(
        medications=[{"name": "Lisinopril", "strength": "10 mg", "how_taken": "1 every morning"}]
    )
    theme = "&accent=%23b91c1c&logo=0&panel=0&lang=es"
    host = await open_portal(browser, portal, consult["links"]["patient"], theme)
    frame = embed_frame(host)
    # The theme, checked by the server, applied in the frame.
    # (after the buttons' colour transition)
    # A function, not an expression: polling an expression evals it in the page, which
    # the page's CSP (no 'unsafe-eval') refuses once the first check misses.
    await frame.wait_for_function(
        "() => getComputedStyle(document.getElementById('join-button')).backgroundColor"
        " === 'rgb(185, 28, 28)'",
        timeout=5_000,
    )
    assert await frame.get_by_test_id("embed-logo").count() == 0
    assert await frame.locator("#app").get_attribute("data-panel") == "hidden"
    assert await frame.get_by_test_id("join-button").inner_text() == "Unirse"
    consent_text = frame.get_by_test_id("consent-text")
    assert "telesalud" in await consent_text.inner_text()
    # The portal switches the language: the consent still to be given follows.
    await command(host, "setLanguage('en')")
    await consent_text.filter(has_text="telehealth visit").wait_for(timeout=5_000)
    assert await consent_text.get_attribute("lang") == "en"
    await command(host, "setLanguage('es')")
    await consent_text.filter(has_text="telesalud").wait_for(timeout=5_000)
    # The portal cannot consent for the patient: the patient ticks it in the call.
    refused = await command(host, "join('Maria Lopez')")
    assert refused["ok"] is False and refused["code"] == "join_refused"
    assert "Acepto" in refused["message"], "in the embed's language (the theme says Spanish)"
    await frame.get_by_test_id("consent-checkbox").check()
    assert (await command(host, "join('Maria Lopez')"))["value"] == {"state": "in-call"}
    await frame_state(frame, "in-call")
    pharmacist_id = next(p["id"] for p in consult["participants"] if p["role"] == "pharmacist")

    # The portal hears no more than the patient may see: care-team-only work gives no event.
    medication = consult["medications"][0]
    async with joined(server.base_url, token_of(consult["links"]["clinician"])) as (clinician, _):

        async def mutate(mutation_id: str, **change: Any) -> dict[str, Any]:
            result: dict[str, Any] = await clinician.sio.call(
                "mutate", {"mutation_id": mutation_id, **change}
            )
            assert result["ok"], result
            return result

        await mutate(
            "n1", op="set", entity="medication", entity_id=medication["id"],
            field="notes", value="Care team: watch potassium",
        )  # fmt: skip
        for audience in ("care-team", "patient"):
            added = await mutate(
                f"r-{audience}", op="add", entity="recommendation",
                value={"text": f"Advice kept to {audience}", "audience": audience},
            )  # fmt: skip
            await mutate(
                f"d-{audience}", op="set", entity="recommendation",
                entity_id=added["entity"]["id"], field="status", value="accepted",
                base_version=added["entity"]["versions"]["status"],
            )  # fmt: skip
        strength = await mutate(
            "s1", op="set", entity="medication", entity_id=medication["id"],
            field="strength", value="20 mg", base_version=medication["versions"]["strength"],
        )  # fmt: skip
        await wait_for_event(host, "medication-changed", lambda e: e["seq"] == strength["seq"])
    assert [e["field"] for e in await events(host, "medication-changed")] == ["strength"]
    assert [e["recommendation_id"] for e in await events(host, "recommendation-decided")] == [
        added["entity"]["id"]
    ]
    log = await host.get_by_test_id("host-log").inner_text()
    for secret in ("potassium", "Advice kept", "Lisinopril", "20 mg"):
        assert secret not in log

    # A patient's embed asking to admit or deny: the server refuses it by role.
    for action in ("admit", "deny"):
        answer = await command(host, f"{action}({json.dumps(pharmacist_id)})")
        assert answer == {
            "ok": False,
            "code": "forbidden",
            "message": "A patient may not admit anyone in this consult.",
        }
    forbidden = [e for e in await events(host, "error") if e["code"] == "forbidden"]
    assert [e["command"] for e in forbidden] == ["admit", "deny"]

    # Malformed, oversized, unknown, or with wrong arguments: an `error` event each.
    bad_messages = {
        "invalid_message": "'hello'",
        "unsupported_version": "{mtm: 'mtm-consult', v: 2, type: 'hello'}",
        "unknown_command": (
            "{mtm: 'mtm-consult', v: 1, type: 'command', id: 'x1', command: 'format-disk'}"
        ),
        "invalid_args": (
            "{mtm: 'mtm-consult', v: 1, type: 'command', id: 'x2', command: 'set-muted',"
            " args: {muted: 'yes'}}"
        ),
        "message_too_large": (
            "{mtm: 'mtm-consult', v: 1, type: 'command', id: 'x3', command: 'set-language',"
            " args: {language: 'x'.repeat(10000)}}"
        ),
    }
    for code, message in bad_messages.items():
        await host.evaluate(
            f"window.consultFrame.iframe.contentWindow.postMessage({message},"
            " window.consultFrame.origin)"
        )
        await wait_for_event(host, "error", lambda data, code=code: data["code"] == code)
    unknown = await wait_for_event(host, "error", lambda d: d["code"] == "unknown_command")
    assert unknown["id"] == "x1" and unknown["command"] == "format-disk"
    # Nothing changed: still in the call, microphone on, language as it was.
    assert await frame.evaluate("window.mtm.state") == "in-call"
    assert await local_enabled(frame, "audio")
    assert await frame.evaluate("document.documentElement.lang") == "es"

    # leave works for any role.
    assert (await command(host, "leave()"))["ok"]
    await frame_state(frame, "ended")
    await wait_for_event(host, "state", lambda data: data["state"] == "ended")


async def test_messages_from_a_foreign_origin_are_ignored_by_both_sides(
    server: RunningServer, browser: Browser, portal: str, foreign: str
) -> None:
    await allow(server, [portal], names=True)
    consult = await server.create_consult()
    host = await open_portal(browser, portal, consult["links"]["pharmacist"])
    frame = embed_frame(host)
    assert (await command(host, "join('Ana Pharmacist')"))["ok"]
    await frame_state(frame, "in-call")
    # This clinic allows medication names in events.
    async with joined(server.base_url, token_of(consult["links"]["clinician"])) as (clinician, _):
        added = await clinician.sio.call(
            "mutate",
            {
                "mutation_id": "m1",
                "op": "add",
                "entity": "medication",
                "value": {"name": "Warfarin"},
            },
        )
        assert added["ok"], added
    assert (await wait_for_event(host, "medication-changed"))["name"] == "Warfarin"

    errors_before = len(await events(host, "error"))
    async with host.context.expect_page() as opened:
        await host.evaluate("url => { window.open(url); }", foreign)
    popup = await opened.value
    await popup.wait_for_function("() => document.title === 'sent'")
    await asyncio.sleep(1.0)
    # The call ignored the foreign commands (its parent is the portal, not that page)...
    assert await frame.locator("#app").get_attribute("data-panel") == "shown"
    assert await frame.evaluate("document.documentElement.lang") == "en"
    # ...and the SDK ignored the forged events (they did not come from its frame).
    assert await events(host, "consult-ended") == []
    assert len(await events(host, "error")) == errors_before
    assert await host.evaluate("window.consultFrame.info.participant_id") != "p_forged"
    # Control: the same command from the portal itself works.
    assert (await command(host, "hidePanel()"))["ok"]
    assert await frame.locator("#app").get_attribute("data-panel") == "hidden"


SDK_FRAME = """async ({ sdk, url }) => {
  const { createFrame } = await import(sdk);
  const call = createFrame(document.body, { url, readyTimeoutMs: 4000 });
  return await new Promise((resolve) => {
    call.on("ready", (info) => resolve({ ready: info.role }));
    call.on("error", (error) => resolve({ error: error.code }));
  });
}"""


CAMERA = """async () => {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    stream.getTracks().forEach((track) => track.stop());
    return "granted";
  } catch (error) {
    return error.name;
  }
}"""


async def test_a_portal_must_delegate_the_camera_to_the_call(
    server: RunningServer, browser: Browser
) -> None:
    """docs/embed.md: a portal whose own Permissions-Policy names only itself keeps the
    camera and microphone from the frame, whatever the iframe's `allow` says."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><title>portal</title>",
            content_type="text/html",
            headers={"Permissions-Policy": "camera=(self), microphone=(self)"},
        )

    app = web.Application()
    app.router.add_get("/", page)
    runner, port = await serve(app)
    try:
        await allow(server, [f"http://localhost:{port}"])
        consult = await server.create_consult()
        strict = await open_page(browser, f"http://localhost:{port}/")
        answer = await strict.evaluate(
            SDK_FRAME,
            {"sdk": f"{server.base_url}/sdk/mtm-consult.js", "url": consult["links"]["clinician"]},
        )
        assert answer == {"ready": "clinician"}
        assert await embed_frame(strict).evaluate(CAMERA) == "NotAllowedError"
    finally:
        await runner.cleanup()


async def test_a_portal_origin_the_clinic_did_not_allow_is_refused_by_the_browser(
    server: RunningServer, browser: Browser, portal: str
) -> None:
    await allow(server, [portal])
    consult = await server.create_consult()
    link = consult["links"]["clinician"]
    sdk = f"{server.base_url}/sdk/mtm-consult.js"
    runner, port = await serve(example_host_app(server.base_url))
    try:
        other = await open_page(browser, f"http://localhost:{port}/")
        refusals: list[str] = []

        def on_console(message: ConsoleMessage) -> None:
            if "frame-ancestors" in message.text:
                refusals.append(message.text)

        other.on("console", on_console)
        assert await other.evaluate(SDK_FRAME, {"sdk": sdk, "url": link}) == {
            "error": "embed_unavailable"
        }
        assert refusals and re.search(r"frame-ancestors " + re.escape(portal), refusals[0])
        assert not any("/embed/" in frame.url for frame in other.frames)
    finally:
        await runner.cleanup()
    # Control: the allowed portal gets the same frame's answer, and its camera.
    allowed = await open_page(browser, f"{portal}/")
    assert await allowed.evaluate(SDK_FRAME, {"sdk": sdk, "url": link}) == {"ready": "clinician"}
    assert await embed_frame(allowed).evaluate(CAMERA) == "granted"
    # A theme the server refuses reaches the portal as an `error` event.
    bad = await open_portal(browser, portal, link, "&accent=%23ffff00")
    refused = await wait_for_event(bad, "error")
    assert refused["code"] == "invalid_theme" and "too light" in refused["message"]
