"""Security headers: CSP connect-src, Permissions-Policy, HSTS only over TLS."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from server.app import create_app
from server.config import Config
from server.security import RedactingAccessLogger
from tests.conftest import RunningServer
from tests.support.nginx import self_signed


def directives(policy: str) -> dict[str, str]:
    return {
        name: rest.strip()
        for name, _, rest in (part.strip().partition(" ") for part in policy.split(";"))
    }


async def test_pages_connect_to_their_own_origin_only(server: RunningServer) -> None:
    consult = await server.create_consult()
    async with server.http.get(consult["links"]["patient"]) as page:
        assert page.status == 200
        policy = directives(page.headers["Content-Security-Policy"])
        permissions = page.headers["Permissions-Policy"]
        assert "Strict-Transport-Security" not in page.headers  # plain http
    assert policy["connect-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"  # no clickjacking: only embed pages are framed
    assert policy["base-uri"] == "'none'"
    assert "camera=(self)" in permissions and "geolocation=()" in permissions


@pytest.mark.parametrize(
    ("config_overrides", "connect_src"),
    [
        (
            {"server": {"public_url": "https://consult.example.org"}},
            "'self' wss://consult.example.org",
        ),
        ({"server": {"public_url": "http://10.1.2.3:8080"}}, "'self' ws://10.1.2.3:8080"),
    ],
)
async def test_the_public_origin_websocket_is_allowed_too(
    server: RunningServer, connect_src: str
) -> None:
    async with server.http.get(f"{server.base_url}/healthz") as answer:
        policy = directives(answer.headers["Content-Security-Policy"])
    assert policy["connect-src"] == connect_src


TRUSTED = {"server": {"trust_forwarded": True}}
UNTRUSTED = {"server": {"trust_forwarded": False}}


@pytest.mark.parametrize(
    ("config_overrides", "forwarded_proto", "hsts"),
    [
        (UNTRUSTED, None, False),
        (UNTRUSTED, "https", False),  # any client could send the header itself
        (TRUSTED, "http", False),
        (TRUSTED, "https", True),
        (TRUSTED, "https, http", True),  # the first value is the client-facing hop
    ],
)
async def test_hsts_behind_a_proxy_only_when_trusted_and_https(
    server: RunningServer, forwarded_proto: str | None, hsts: bool
) -> None:
    headers = {} if forwarded_proto is None else {"X-Forwarded-Proto": forwarded_proto}
    async with server.http.get(f"{server.base_url}/healthz", headers=headers) as answer:
        assert answer.status == 200
        assert ("Strict-Transport-Security" in answer.headers) is hsts
        if hsts:
            assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"


@pytest.fixture
async def tls_base_url(
    config: Config, database_url: tuple[str, str | None], tmp_path: Path
) -> AsyncIterator[str]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = create_app(config, database_schema=database_url[1])
    runner = web.AppRunner(app, handle_signals=False, access_log_class=RedactingAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_hsts_when_served_over_tls(tls_base_url: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{tls_base_url}/healthz", ssl=False) as answer,
    ):
        assert answer.status == 200
        assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"
