"""Real browsers through nginx (deploy/nginx.conf, TLS) in front of two instances: the
three-way call, and `kill -9` of the instance serving it while everyone edits, with media
still flowing (it never passed through the server) and every edit applied once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from server.state import STATE
from tests.browser.conftest import join, stats, wait_for_frames
from tests.browser.test_call import assert_relay_on_loopback
from tests.conftest import RunningServer, relay_through
from tests.support.coturn import Coturn
from tests.support.deployment import Deployment, deployed
from tests.support.nginx import Nginx
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.browser

ROLES = ("pharmacist", "clinician", "patient")
MEDICATIONS = [{"name": "Metformin"}, {"name": "Lisinopril"}, {"name": "Atorvastatin"}]


@pytest.fixture
def instances() -> int:
    return 2


@pytest.fixture
def site() -> Iterator[Nginx]:
    nginx = Nginx([])
    yield nginx
    nginx.close()


@pytest.fixture
def config_overrides(turn: Coturn, site: Nginx) -> dict[str, dict[str, Any]]:
    return {
        **relay_through(turn),
        "testing": {"expose_hooks": True},
        "server": {"public_url": site.url, "trust_forwarded": True},
    }


async def open_through_proxy(browser: Browser, url: str) -> Page:
    """A page in a context of its own that accepts the test nginx's self-signed certificate."""
    context = await browser.new_context(
        viewport={"width": 1280, "height": 720}, ignore_https_errors=True
    )
    page = await context.new_page()
    page.on("pageerror", lambda error: print(f"[page error] {error}"))
    await page.goto(url)
    return page


async def test_three_way_call_through_nginx_reaches_one_instance(
    server: RunningServer, site: Nginx, browser: Browser
) -> None:
    site.instances = [url.removeprefix("http://") for url in server.urls]
    # On the event loop's thread: a child process dies with the thread that started it.
    site.start()
    consult = await server.create_consult()
    assert consult["links"]["patient"].startswith(site.url)
    pages = [await open_through_proxy(browser, consult["links"][role]) for role in ROLES]
    for page, role in zip(pages, ROLES, strict=True):
        await join(page, f"{role.title()} tester")
    for page in pages:
        await wait_for_frames(page, remotes=2)
        assert_relay_on_loopback(await stats(page))
    held = [
        sum(
            1
            for session in app[STATE].signaling.router.sessions.values()
            if session.identity.consult_id == consult["id"]
        )
        for app in server.apps
    ]
    assert sorted(held) == [0, 3], held


@pytest.fixture
async def deployment(private_redis: RedisServer, turn: Coturn) -> AsyncIterator[Deployment]:
    settings: dict[str, dict[str, Any]] = {
        **relay_through(turn),
        "testing": {"expose_hooks": True},
        "signaling": {"presence_ttl_seconds": 2},
    }
    async with deployed(private_redis.url, settings) as deployment:
        yield deployment


def row(page: Page, name: str) -> Any:
    return page.locator(f'[data-testid="med-row"][data-name="{name}"]')


async def edit(page: Page, name: str, field: str, value: str) -> None:
    target = row(page, name)
    await target.get_by_test_id(f"edit-{field}").click()
    await target.get_by_test_id(f"input-{field}").fill(value)
    await target.get_by_test_id(f"save-{field}").click()


# Who edits what: the care team a medication's notes, the patient their own note.
EDITS = {
    "pharmacist": ("Metformin", "notes"),
    "clinician": ("Lisinopril", "notes"),
    "patient": ("Atorvastatin", "patient_note"),
}


async def edit_round(pages: dict[str, Page], label: str) -> None:
    for role, page in pages.items():
        name, field = EDITS[role]
        await edit(page, name, field, f"{role} {label}")


async def what_pages_show(pages: dict[str, Page]) -> dict[str, Any]:
    return {
        role: await page.evaluate(
            "() => ({states: window.mtm.states, joins: window.mtm.joins,"
            " status: document.getElementById('status')?.textContent})"
        )
        for role, page in pages.items()
    }


async def frames(page: Page) -> dict[str, int]:
    return {entry["peer"]: int(entry["framesDecoded"]) for entry in await stats(page)}


async def test_kill_9_of_the_owner_keeps_media_flowing_and_applies_every_edit_once(
    deployment: Deployment, browser: Browser
) -> None:
    consult = await deployment.new_consult(MEDICATIONS)
    pages: dict[str, Page] = {}
    for role in ROLES:
        page = await open_through_proxy(browser, consult["links"][role])
        await join(page)
        await page.get_by_test_id("panel").wait_for()
        pages[role] = page
    for page in pages.values():
        await wait_for_frames(page, remotes=2)
        # Mark the peer connections: the same objects must still be there afterwards.
        await page.evaluate("() => { for (const pc of window.mtm.peers.values()) pc.kept = 1; }")
    await edit_round(pages, "before")
    owner = await deployment.holder_of(consult["id"])

    owner.kill()
    samples: dict[str, list[dict[str, int]]] = {role: [] for role in ROLES}

    async def sample_frames() -> None:
        while True:
            for role, page in pages.items():
                samples[role].append(await frames(page))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_frames())
    try:
        # Edits while the pages reconnect: queued in the browser, sent once back.
        await edit_round(pages, "during")
        for role, page in pages.items():
            try:
                await page.wait_for_function("() => window.mtm.joins >= 2", timeout=30_000)
            except Exception:
                raise AssertionError(
                    f"the {role}'s page did not come back: {await what_pages_show(pages)}\n"
                    + "\n".join(process.log()[-3000:] for process in deployment.instances)
                    + deployment.nginx.errors()[-2000:]
                ) from None
        await asyncio.sleep(2)
    finally:
        sampler.cancel()
    await edit_round(pages, "after")

    # Media never stopped: each page decoded more frames from each peer at every sample,
    # from the kill until after everyone was back, on the very same connections.
    for role, series in samples.items():
        assert len(series) >= 6, series
        for earlier, later in zip(series, series[1:], strict=False):
            for peer, count in earlier.items():
                assert later.get(peer, 0) > count, f"{role}: video from {peer} stalled"
    for page in pages.values():
        assert (
            await page.evaluate(
                "() => [...window.mtm.peers.values()].filter((pc) => pc.kept === 1).length"
            )
            == 2
        )

    # Every edit is in the log once, without a gap, and every page shows the last ones.
    for page in pages.values():
        await page.wait_for_function("() => window.mtmPanel.queueLength === 0", timeout=20_000)
    rows = await deployment.database.fetch(
        "SELECT seq, field, new FROM change_event WHERE consult_id = $1 ORDER BY seq",
        consult["id"],
    )
    seqs = [row["seq"] for row in rows]
    assert seqs == list(range(1, len(rows) + 1))
    values = [row["new"] for row in rows if row["field"] in ("notes", "patient_note")]
    expected = [f'"{role} {label}"' for label in ("before", "during", "after") for role in ROLES]
    assert sorted(values) == sorted(expected)
    for page in pages.values():
        await page.wait_for_function(
            "seq => window.mtmPanel.seq === seq", arg=seqs[-1], timeout=10_000
        )
