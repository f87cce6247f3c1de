"""The browser keeps an edit queued while the server cannot reach its database, then sends
it again: it arrives once, and the author never sees it refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser

from models import panel_store
from tests.browser.conftest import join, open_page
from tests.browser.test_panel import edit, wait_for_text
from tests.conftest import RunningServer
from tests.support.tcp_proxy import TcpProxy, postgres_proxy, through

pytestmark = pytest.mark.browser

OUTAGE_SECONDS = 10


@pytest.fixture
async def proxy(database_url: tuple[str, str | None]) -> AsyncIterator[TcpProxy]:
    url, schema = database_url
    if schema is None:
        pytest.fail("this test needs Postgres: set MTM_TEST_DATABASE_URL (./run.sh test does)")
    async with postgres_proxy(url) as proxy:
        yield proxy


@pytest.fixture
def config_overrides(
    config_overrides: dict[str, Any], database_url: tuple[str, str | None], proxy: TcpProxy
) -> dict[str, Any]:
    return {**config_overrides, "database": {"url": through(proxy, database_url[0])}}


async def test_an_edit_made_while_the_database_is_down_is_kept_and_saved_once(
    server: RunningServer, browser: Browser, proxy: TcpProxy
) -> None:
    consult = await server.create_consult(medications=[{"name": "Metformin", "how_taken": "daily"}])
    pharmacist = await open_page(browser, consult["links"]["pharmacist"])
    clinician = await open_page(browser, consult["links"]["clinician"])
    for page in (pharmacist, clinician):
        await join(page)
        await page.get_by_test_id("panel").wait_for()

    await proxy.cut()
    await edit(pharmacist, "Metformin", "how_taken", "1 tablet with breakfast")
    await (
        pharmacist.get_by_test_id("queue-indicator")
        .filter(has_text="1 edit not saved yet")
        .wait_for()
    )
    await asyncio.sleep(OUTAGE_SECONDS)
    # Still queued, never shown as refused, and nobody else has it.
    assert await pharmacist.evaluate("window.mtmPanel.queueLength") == 1
    assert await pharmacist.evaluate("window.mtmPanel.rejected.length") == 0
    await wait_for_text(clinician, "Metformin", "how_taken", "daily")
    await proxy.restore()

    for page in (pharmacist, clinician):
        await wait_for_text(page, "Metformin", "how_taken", "with breakfast")
    await pharmacist.wait_for_function("() => window.mtmPanel.queueLength === 0")
    assert await pharmacist.evaluate("window.mtmPanel.rejected.length") == 0
    async with server.state.sessions() as session:
        events = await panel_store.events_since(session, consult["id"], 0)
    changed = [e for e in events if e["field"] == "how_taken"]
    assert len(changed) == 1 and changed[0]["outcome"] == "applied"
