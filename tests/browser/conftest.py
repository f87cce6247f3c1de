"""Browser end-to-end fixtures: a real coturn on 127.0.0.1, the server in relay-only mode,
and headless Debian Chromium driven by Playwright (never Playwright's own browser download)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.conftest import relay_through
from tests.support.coturn import Coturn

CHROMIUM = os.environ.get("MTM_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    # Headless tabs must keep decoding and sending even when not focused.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture
def config_overrides(turn: Coturn) -> dict[str, dict[str, Any]]:
    return relay_through(turn)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


async def open_page(browser: Browser, url: str, *, width: int = 1280, height: int = 720) -> Page:
    """A page in a context of its own (own storage, like a separate person's browser)."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    page.on("pageerror", lambda error: print(f"[page error] {error}"))
    await page.goto(url)
    return page


async def join(page: Page, name: str | None = None) -> None:
    if name is not None:
        await page.get_by_test_id("name-input").fill(name)
    await page.get_by_test_id("join-button").click()
    await page.wait_for_function(
        "() => window.mtm && window.mtm.state === 'in-call'", timeout=15_000
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
