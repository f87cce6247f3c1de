"""The embed page over HTTP (docs/embed.md): per-clinic allowed origins through the REST API
and config, enforced as the embed page's CSP frame-ancestors ('none' everywhere else), theme
parameters checked, expired links and ended consults still framed for their clinic so the
host page is told why, the SDK served to any origin, tokens kept out of the access log."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from tests.conftest import API_KEY, OTHER_API_KEY, RunningServer, token_of
from tests.integration.test_security_headers import directives

PORTAL = "https://portal.north.example"
LOCAL_PORTAL = "http://localhost:8081"


async def put_settings(
    server: RunningServer, body: Any, *, key: str = API_KEY
) -> tuple[int, dict[str, Any]]:
    async with server.http.put(
        f"{server.base_url}/api/v1/clinic/embed", json=body, headers={"X-API-Key": key}
    ) as answer:
        return answer.status, await answer.json()


async def get_settings(server: RunningServer, *, key: str = API_KEY) -> dict[str, Any]:
    async with server.http.get(
        f"{server.base_url}/api/v1/clinic/embed", headers={"X-API-Key": key}
    ) as answer:
        assert answer.status == 200
        settings: dict[str, Any] = await answer.json()
    return settings


def embed_link(link: str, query: str = "") -> str:
    return link.replace("/c/", "/embed/") + query


def boot_of(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="boot">(.*?)</script>', html, re.S)
    assert match, html[:500]
    boot: dict[str, Any] = json.loads(match.group(1))
    return boot


async def test_no_origin_may_embed_until_the_clinic_allows_one(server: RunningServer) -> None:
    assert await get_settings(server) == {
        "allowed_origins": [],
        "medication_names_in_events": False,
        "source": "default",
        "updated_at": None,
    }
    consult = await server.create_consult()
    async with server.http.get(embed_link(consult["links"]["patient"])) as page:
        assert page.status == 200
        policy = directives(page.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == "'none'"


async def test_allowed_origins_set_through_the_api_frame_the_embed_page_only(
    server: RunningServer,
) -> None:
    status, answer = await put_settings(
        server,
        {"allowed_origins": [PORTAL, LOCAL_PORTAL], "medication_names_in_events": True},
    )
    assert status == 200, answer
    assert answer["allowed_origins"] == [PORTAL, LOCAL_PORTAL]
    assert answer["source"] == "api" and answer["updated_at"] is not None
    assert await get_settings(server) == answer
    consult = await server.create_consult()
    link = consult["links"]["pharmacist"]
    async with server.http.get(embed_link(link)) as page:
        assert page.status == 200
        html = await page.text()
        policy = directives(page.headers["Content-Security-Policy"])
        assert page.headers["Cache-Control"] == "no-store"
        permissions = page.headers["Permissions-Policy"]
    assert policy["frame-ancestors"] == f"{PORTAL} {LOCAL_PORTAL}"
    assert policy["script-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert "camera=(self)" in permissions and "microphone=(self)" in permissions
    embed = boot_of(html)["embed"]
    assert embed["allowed_origins"] == [PORTAL, LOCAL_PORTAL]
    assert embed["medication_names_in_events"] is True
    assert embed["theme"] == {"accent": None, "logo": True, "panel": True, "language": "en"}
    assert 'data-embed="true"' in html and 'data-testid="embed-logo"' in html
    # No way out of the frame: the only link reloads this page, forms have no action.
    assert re.findall(r"<a [^>]*href=\"([^\"]*)\"", html) == [""]
    assert "target=" not in html and "action=" not in html
    # Every other page still refuses to be framed, the call page of the same link included.
    for url in (link, f"{server.base_url}/healthz", f"{server.base_url}/api/v1/openapi.json"):
        async with server.http.get(url) as other:
            assert directives(other.headers["Content-Security-Policy"])["frame-ancestors"] == (
                "'none'"
            ), url
    # Another clinic's settings are its own.
    assert (await get_settings(server, key=OTHER_API_KEY))["allowed_origins"] == []


@pytest.mark.parametrize(
    ("config_overrides"),
    [{"embed": {"clinics": {"north": {"allowed_origins": [PORTAL]}}}}],
)
async def test_configured_origins_apply_until_the_api_replaces_them(
    server: RunningServer,
) -> None:
    settings = await get_settings(server)
    assert settings["allowed_origins"] == [PORTAL] and settings["source"] == "config"
    consult = await server.create_consult()
    async with server.http.get(embed_link(consult["links"]["patient"])) as page:
        assert directives(page.headers["Content-Security-Policy"])["frame-ancestors"] == PORTAL
    status, _ = await put_settings(
        server, {"allowed_origins": [LOCAL_PORTAL], "medication_names_in_events": False}
    )
    assert status == 200
    async with server.http.get(embed_link(consult["links"]["patient"])) as page:
        policy = directives(page.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == LOCAL_PORTAL


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"allowed_origins": ["http://portal.example"]}, "allowed_origins.0", "https"),
        ({"allowed_origins": ["https://Portal.example"]}, "allowed_origins.0", "lower case"),
        ({"allowed_origins": ["https://portal.example/path"]}, "allowed_origins.0", "origin"),
        ({"allowed_origins": ["https://portal.example:443"]}, "allowed_origins.0", "default"),
        ({"allowed_origins": ["https://portal.example:99999"]}, "allowed_origins.0", "port"),
        ({"allowed_origins": ["*"]}, "allowed_origins.0", "origin"),
        ({"allowed_origins": ["https://a.example; script-src *"]}, "allowed_origins.0", ""),
        ({"allowed_origins": ["'self'"]}, "allowed_origins.0", "origin"),
        ({"allowed_origins": [PORTAL, PORTAL]}, "allowed_origins", "twice"),
        ({"allowed_origins": [f"https://p{n}.example" for n in range(21)]}, "allowed_origins", ""),
        ({"allowed_origins": PORTAL}, "allowed_origins", ""),
        ({"allowed_origins": [PORTAL], "medication_names_in_events": "yes"}, "", ""),
        ({"allowed_origins": [PORTAL], "extra": 1}, "extra", "not a known field"),
        ({"medication_names_in_events": False}, "allowed_origins", ""),
    ],
)
async def test_bad_settings_are_refused_and_change_nothing(
    server: RunningServer, body: dict[str, Any], field: str, words: str
) -> None:
    status, answer = await put_settings(
        server, {"allowed_origins": [LOCAL_PORTAL], "medication_names_in_events": False}
    )
    assert status == 200
    before = await get_settings(server)
    body.setdefault("medication_names_in_events", False)
    status, answer = await put_settings(server, body)
    assert status == 422, answer
    assert answer["error"]["code"] == "invalid_body"
    fields = {item["field"]: item["message"] for item in answer["error"]["fields"]}
    if field:
        assert any(name.startswith(field) for name in fields), fields
    if words:
        assert any(words in message for message in fields.values()), fields
    assert await get_settings(server) == before


async def test_settings_need_a_key(server: RunningServer) -> None:
    async with server.http.get(f"{server.base_url}/api/v1/clinic/embed") as answer:
        assert answer.status == 401
    async with server.http.put(
        f"{server.base_url}/api/v1/clinic/embed",
        json={"allowed_origins": [PORTAL], "medication_names_in_events": False},
    ) as answer:
        assert answer.status == 401
    assert (await get_settings(server))["source"] == "default"


@pytest.mark.parametrize(
    ("query", "theme"),
    [
        ("?accent=%230b5cad", {"accent": "#0b5cad"}),
        ("?accent=%23036", {"accent": "#003366"}),
        ("?accent=%23B91C1C&logo=0&panel=0&lang=es", {"accent": "#b91c1c", "logo": False}),
    ],
)
async def test_theme_parameters_reach_the_page(
    server: RunningServer, query: str, theme: dict[str, Any]
) -> None:
    consult = await server.create_consult()
    async with server.http.get(embed_link(consult["links"]["patient"], query)) as page:
        assert page.status == 200
        html = await page.text()
    given = boot_of(html)["embed"]["theme"]
    assert {name: given[name] for name in theme} == theme
    if "logo=0" in query:
        assert 'data-testid="embed-logo"' not in html
        assert 'data-panel="hidden"' in html and given["language"] == "es"


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?accent=red", "#rrggbb"),
        ("?accent=%23ffee00", "too light"),  # white on yellow: 1.2:1
        ("?accent=%230b5cad%3Bcolor:red", "#rrggbb"),
        ("?logo=no", "logo must be 1"),
        ("?panel=2", "panel must be 1"),
        ("?lang=fr", "lang must be one of"),
        ("?colour=blue", "Unknown embed parameter"),
        ("?logo=0&logo=1", "given twice"),
    ],
)
async def test_bad_theme_parameters_are_a_clear_error_the_host_hears_about(
    server: RunningServer, query: str, words: str
) -> None:
    await put_settings(server, {"allowed_origins": [PORTAL], "medication_names_in_events": False})
    consult = await server.create_consult()
    async with server.http.get(embed_link(consult["links"]["patient"], query)) as page:
        assert page.status == 400
        html = await page.text()
        policy = directives(page.headers["Content-Security-Policy"])
    assert words in html
    # Framed by the clinic's portal, which gets an `error` event (web/static/embed-error.js).
    assert policy["frame-ancestors"] == PORTAL
    embed = boot_of(html)["embed"]
    assert embed["error"]["code"] == "invalid_theme" and words in embed["error"]["message"]
    assert '<script type="module" src="/static/embed-error.js"></script>' in html


async def test_an_ended_consult_is_still_framed_for_its_clinic_to_say_so(
    server: RunningServer,
) -> None:
    await put_settings(server, {"allowed_origins": [PORTAL], "medication_names_in_events": False})
    consult = await server.create_consult()
    await server.end_consult(consult["id"])
    async with server.http.get(embed_link(consult["links"]["patient"])) as page:
        assert page.status == 410
        html = await page.text()
        policy = directives(page.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == PORTAL
    assert boot_of(html)["embed"]["error"]["code"] == "consult_ended"


async def test_an_expired_link_is_framed_for_its_clinic_and_a_forged_one_for_nobody(
    server: RunningServer,
) -> None:
    await put_settings(server, {"allowed_origins": [PORTAL], "medication_names_in_events": False})
    consult = await server.create_consult(scheduled_at="2026-01-01T00:00:00+00:00")
    server.clock.advance(25 * 3600)
    async with server.http.get(embed_link(consult["links"]["clinician"])) as page:
        assert page.status == 410
        assert directives(page.headers["Content-Security-Policy"])["frame-ancestors"] == PORTAL
        assert boot_of(await page.text())["embed"]["error"]["code"] == "expired_token"
    token = token_of(consult["links"]["clinician"])
    async with server.http.get(f"{server.base_url}/embed/{token}x") as page:
        assert page.status == 404
        assert directives(page.headers["Content-Security-Policy"])["frame-ancestors"] == "'none'"


async def test_the_sdk_is_served_to_any_origin(server: RunningServer) -> None:
    async with server.http.get(
        f"{server.base_url}/sdk/mtm-consult.js", headers={"Origin": PORTAL}
    ) as sdk:
        assert sdk.status == 200
        assert sdk.content_type == "text/javascript"
        assert sdk.headers["Access-Control-Allow-Origin"] == "*"
        assert "export function createFrame" in await sdk.text()
    async with server.http.get(f"{server.base_url}/sdk/mtm-consult.d.ts") as types:
        assert types.status == 200
        assert "export declare function createFrame" in await types.text()


async def test_the_access_log_never_records_an_embed_token(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    consult = await server.create_consult()
    token = token_of(consult["links"]["patient"])
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        async with server.http.get(embed_link(consult["links"]["patient"], "?lang=es")) as page:
            assert page.status == 200
    logged = [record.getMessage() for record in caplog.records]
    assert any("GET /embed/<token> 200" in line for line in logged), logged
    assert not any(token in line for line in logged)
