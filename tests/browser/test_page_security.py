"""What the browser enforces for a consult page: CSP connect-src, the Permissions-Policy, and
test hooks that exist only when the server's `testing.expose_hooks` turns them on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page

from tests.browser.conftest import open_page, start_join
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser

MEDICATIONS = [{"name": "Metformin", "strength": "500 mg", "how_taken": "1 tablet twice daily"}]


class OtherHost:
    """A real WebSocket server on another origin (`localhost`, its own port) that counts the
    connections it receives."""

    def __init__(self) -> None:
        self.connections = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        self.connections += 1
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str("hello from another host")
        await socket.close()
        return socket


@pytest.fixture
async def other_host() -> AsyncIterator[OtherHost]:
    host = OtherHost()
    app = web.Application()
    app.router.add_get("/", host.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host.url = f"ws://localhost:{runner.addresses[0][1]}/"
    yield host
    await runner.cleanup()


TRY_WEBSOCKET = """async url => {
  const violations = [];
  document.addEventListener("securitypolicyviolation", (event) =>
    violations.push({ directive: event.effectiveDirective, blocked: event.blockedURI }));
  const outcome = await new Promise((resolve) => {
    let socket;
    try {
      socket = new WebSocket(url);
    } catch (error) {
      resolve(`threw ${error.name}`);
      return;
    }
    socket.onmessage = (event) => resolve(`message: ${event.data}`);
    socket.onerror = () => resolve("error");
    setTimeout(() => resolve("timeout"), 5000);
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  return { outcome, violations };
}"""


async def test_a_websocket_to_another_host_is_blocked_by_the_csp(
    server: RunningServer, browser: Browser, other_host: OtherHost
) -> None:
    # Control: a page without our CSP reaches the other host, so a block below is the CSP's.
    context = await browser.new_context()
    blank = await context.new_page()
    unguarded: dict[str, Any] = await blank.evaluate(TRY_WEBSOCKET, other_host.url)
    assert unguarded["outcome"] == "message: hello from another host", unguarded
    assert other_host.connections == 1
    await context.close()

    consult = await server.create_consult()
    page = await open_page(browser, consult["links"]["pharmacist"])
    guarded: dict[str, Any] = await page.evaluate(TRY_WEBSOCKET, other_host.url)
    assert guarded["outcome"] in ("error", "threw SecurityError"), guarded
    assert any(v["directive"] == "connect-src" for v in guarded["violations"]), guarded
    assert other_host.connections == 1  # nothing new reached it
    # The page's own Socket.IO WebSocket ('self') still connects: it joins the call.
    await start_join(page, "Pharmacist")
    await page.wait_for_selector("#app[data-state='in-call']", timeout=15_000)


async def test_permissions_policy_allows_camera_and_denies_geolocation(
    server: RunningServer, browser: Browser
) -> None:
    consult = await server.create_consult()
    page = await open_page(browser, consult["links"]["patient"])
    allowed: dict[str, bool] = await page.evaluate(
        """() => Object.fromEntries(["camera", "microphone", "geolocation", "payment", "usb"]
              .map((name) => [name, document.featurePolicy.allowsFeature(name)]))"""
    )
    assert allowed == {
        "camera": True,
        "microphone": True,
        "geolocation": False,
        "payment": False,
        "usb": False,
    }


async def hooks(page: Page) -> dict[str, str]:
    result: dict[str, str] = await page.evaluate(
        "() => ({mtm: typeof window.mtm, mtmPanel: typeof window.mtmPanel})"
    )
    return result


class TestWithoutTheSetting:
    @pytest.fixture
    def config_overrides(self, config_overrides: dict[str, Any]) -> dict[str, Any]:
        return {**config_overrides, "testing": {"expose_hooks": False}}

    async def test_pages_have_no_test_hooks(self, server: RunningServer, browser: Browser) -> None:
        consult = await server.create_consult(medications=MEDICATIONS)
        page = await open_page(browser, consult["links"]["pharmacist"])
        await start_join(page, "Pharmacist")
        await page.wait_for_selector("#app[data-state='in-call']", timeout=15_000)
        # The panel is mounted (it would set window.mtmPanel), and still no hook.
        await page.get_by_test_id("med-row").first.wait_for(timeout=15_000)
        assert await hooks(page) == {"mtm": "undefined", "mtmPanel": "undefined"}


async def test_pages_have_test_hooks_with_the_setting(
    server: RunningServer, browser: Browser
) -> None:
    # tests/browser/conftest.py turns `testing.expose_hooks` on for every browser test.
    assert server.state.config.testing.expose_hooks is True
    consult = await server.create_consult(medications=MEDICATIONS)
    page = await open_page(browser, consult["links"]["pharmacist"])
    await start_join(page, "Pharmacist")
    await page.wait_for_selector("#app[data-state='in-call']", timeout=15_000)
    await page.get_by_test_id("med-row").first.wait_for(timeout=15_000)
    await asyncio.sleep(0)
    assert await hooks(page) == {"mtm": "object", "mtmPanel": "object"}
