import json
import logging

import pytest

from server.security import redact_path
from tests.conftest import RunningServer, token_of


async def test_join_page_renders_for_each_role(server: RunningServer) -> None:
    consult = await server.create_consult(patient_name="Maria <b>Lopez</b>")
    for role, link in consult["links"].items():
        async with server.http.get(link) as page:
            assert page.status == 200
            html = await page.text()
            assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
            assert page.headers["Referrer-Policy"] == "no-referrer"
            assert page.headers["Cache-Control"] == "no-store"
        assert "<b>Lopez</b>" not in html
        assert f'"role": "{role}"' in html


@pytest.mark.parametrize(
    ("mutate", "status", "text"),
    [
        (lambda token: token + "x", 404, "This link is not valid"),
        (lambda token: "garbage", 404, "This link is not valid"),
    ],
)
async def test_bad_link_is_a_friendly_page(
    server: RunningServer, mutate: object, status: int, text: str
) -> None:
    consult = await server.create_consult()
    token = token_of(consult["links"]["patient"])
    async with server.http.get(f"{server.base_url}/c/{mutate(token)}") as page:  # type: ignore[operator]
        assert page.status == status
        html = await page.text()
    assert text in html
    assert "Traceback" not in html


async def test_expired_link_is_410(server: RunningServer) -> None:
    consult = await server.create_consult(scheduled_at="2026-01-01T00:00:00+00:00")
    server.clock.advance(25 * 3600)
    async with server.http.get(consult["links"]["clinician"]) as page:
        assert page.status == 410
        assert "expired" in await page.text()


async def test_access_log_never_records_the_token(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    consult = await server.create_consult()
    token = token_of(consult["links"]["patient"])
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        async with server.http.get(consult["links"]["patient"]) as page:
            assert page.status == 200
        async with server.http.get(f"{server.base_url}/c/{token}x") as page:
            assert page.status == 404
    logged = [record.getMessage() for record in caplog.records]
    assert any("GET /c/<token> 200" in line for line in logged), logged
    assert any("GET /c/<token> 404" in line for line in logged), logged
    assert not any(token in line for line in logged)
    assert redact_path("/api/v1/consults") == "/api/v1/consults"


async def test_consent_step_is_skipped_once_given(server: RunningServer) -> None:
    from tests.support.sockets import joined

    consult = await server.create_consult()
    link = consult["links"]["patient"]
    async with server.http.get(link) as page:
        html = await page.text()
    assert '"given": false' in html and 'data-testid="consent" hidden' not in html
    boot = json.loads(html.split('id="boot">', 1)[1].split("</script>", 1)[0])
    # The consent in every language the page is offered in (docs/protocol.md, "join").
    assert boot["consent"]["texts"] == server.state.config.consent.texts()
    assert set(boot["consent"]["texts"]) == {"en", "es"}
    async with joined(server.base_url, token_of(link)):
        pass
    async with server.http.get(link) as page:
        html = await page.text()
    assert '"given": true' in html and 'data-testid="consent" hidden' in html


async def test_socket_io_websockets_are_not_compressed(server: RunningServer) -> None:
    url = f"{server.base_url}/socket.io/?EIO=4&transport=websocket"
    async with server.http.ws_connect(url, compress=15) as ws:
        assert ws.compress == 0  # the server declined permessage-deflate
        opening = await ws.receive_str()
        assert opening.startswith("0{")  # an engine.io OPEN packet: the socket works
