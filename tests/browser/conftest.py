"""Browser end-to-end fixtures: a real coturn on 127.0.0.1, the server in relay-only mode,
and headless Debian Chromium driven by Playwright (never Playwright's own browser download)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright

from tests.conftest import RunningServer, relay_through
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.coturn import Coturn


@pytest.fixture
def config_overrides(turn: Coturn) -> dict[str, dict[str, Any]]:
    # The pages' test hooks (window.mtm, window.mtmPanel) are off unless a test asks.
    return {**relay_through(turn), "testing": {"expose_hooks": True}}


@pytest.fixture
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as driver:
        yield driver


@pytest.fixture
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    chromium = await playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    await chromium.close()


async def open_on_device(playwright: Playwright, browser: Browser, url: str, device: str) -> Page:
    """A page as on a phone: Playwright's descriptor (`"Pixel 5"`, `"iPhone 12"`): its
    screen, pixel ratio, touch and user agent, in Chromium."""
    context = await browser.new_context(**playwright.devices[device])
    page = await context.new_page()
    page.on("pageerror", lambda error: print(f"[page error] {error}"))
    await page.goto(url)
    return page


async def open_page(browser: Browser, url: str, *, width: int = 1280, height: int = 720) -> Page:
    """A page in a context of its own (own storage, like a separate person's browser)."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    page.on("pageerror", lambda error: print(f"[page error] {error}"))
    await page.goto(url)
    return page


async def start_join(page: Page, name: str | None = None) -> None:
    """Fill the pre-join form (name, consent when asked) and press Join."""
    if name is not None:
        await page.get_by_test_id("name-input").fill(name)
    consent = page.get_by_test_id("consent-checkbox")
    if await consent.is_visible():
        await consent.check()
    await page.get_by_test_id("join-button").click()


async def join(page: Page, name: str | None = None) -> None:
    await start_join(page, name)
    await wait_for_state(page, "in-call")


async def two_in_a_call(server: RunningServer, browser: Browser) -> tuple[Page, Page]:
    """A pharmacist (Ana P.) and a clinician (Dr Lee) in a call, each decoding the other."""
    consult = await server.create_consult()
    pharmacist = await open_page(browser, consult["links"]["pharmacist"])
    clinician = await open_page(browser, consult["links"]["clinician"])
    await join(pharmacist, "Ana P.")
    await join(clinician, "Dr Lee")
    await wait_for_frames(pharmacist, remotes=1)
    await wait_for_frames(clinician, remotes=1)
    return pharmacist, clinician


async def open_sheet(page: Page) -> None:
    """On a phone-sized page: open the medication list and chat (a sheet over the call)."""
    await page.get_by_test_id("panel-toggle").click()
    await page.locator("#side").wait_for()


async def wait_for_state(page: Page, state: str, *, timeout: float = 15_000) -> None:
    await page.wait_for_function(
        "state => window.mtm && window.mtm.state === state", arg=state, timeout=timeout
    )


async def stats(page: Page) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await page.evaluate("window.mtm.stats()")
    return result


async def wait_for_frames(page: Page, remotes: int, *, timeout: float = 30.0) -> None:
    """Until `remotes` remote peers each have decoded video frames (polled: stats are async)."""
    async with asyncio.timeout(timeout):
        while True:
            decoding = [entry for entry in await stats(page) if entry["framesDecoded"] > 5]
            if len(decoding) >= remotes:
                return
            await asyncio.sleep(0.25)


async def poll(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 15.0, what: str = ""
) -> None:
    """Until `check()` is true (for async page state that `wait_for_function` cannot test)."""
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what or check}") from None


async def frames_from(page: Page, peer_id: str) -> int:
    """Video frames `page` decoded so far from one remote participant."""
    for entry in await stats(page):
        if entry["peer"] == peer_id:
            return int(entry["framesDecoded"])
    return 0


async def frames_keep_rising(page: Page, peer_id: str, *, seconds: float = 1.5) -> bool:
    before = await frames_from(page, peer_id)
    await asyncio.sleep(seconds)
    return await frames_from(page, peer_id) > before + 5


async def self_id(page: Page) -> str:
    result: str = await page.evaluate("window.mtm.selfId")
    return result


async def remote_video_tracks(page: Page, peer_id: str) -> int:
    result: int = await page.evaluate("id => window.mtm.remoteVideoTracks(id)", peer_id)
    return result
