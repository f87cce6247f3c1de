"""Benchmark 4: what one synthetic (aiortc) participant costs, to size a load test.

For k in `bot_counts`: k consults, each with one headless Chromium page (the pharmacist,
sending its fake camera at 640x360) and one `SyntheticParticipant` (the clinician, sending
640x480 at 15 fps and a tone, decoding what the page sends). The bots join first, so each
page is the newcomer and offers to its bot, which answers (docs/protocol.md, "Negotiation
rules"). All k bots live in one Python process pinned to a core of their own; the server,
coturn (relay only) and Chromium share the other core. Measured over a window once every
bot decodes frames: the bots' process CPU (all threads), per bot, and the video frames each
decodes and sends per second (a bot that can't keep up shows it there). Chromium's and
coturn's CPU in the same window are given for context.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, async_playwright

from bench.common import (
    ROOT,
    Cores,
    CpuWindow,
    Database,
    Server,
    create_consults,
    descendants,
    log,
    pin,
    start_ours,
    taskset,
)
from bench.driver import python_module, run_marked
from bench.join import CHROMIUM, CHROMIUM_ARGS, click_join
from tests.support.coturn import Coturn


@dataclass
class SyntheticSettings:
    bot_counts: list[int] = field(default_factory=lambda: [1, 2, 4])
    window_s: float = 15.0
    warm_s: float = 3.0
    ready_timeout_s: float = 60.0
    db: str = "sqlite"


def _chromium_pids() -> list[int]:
    found = []
    for pid in descendants(os.getpid()):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/comm", encoding="ascii") as handle:
                if "chrom" in handle.read():
                    found.append(pid)
    return found


async def _measure(
    browser: Browser,
    server: Server,
    turn: Coturn,
    cores: Cores,
    settings: SyntheticSettings,
    count: int,
    problems: list[str],
) -> dict[str, Any]:
    """k = `count` pages and bots; the bots' result plus the others' CPU in its window."""
    consults = await create_consults(server.url, count, problems=problems)
    joined = asyncio.Event()
    windows: dict[str, CpuWindow] = {}
    assert turn.pid is not None
    others = {
        "chromium": _chromium_pids,
        "coturn": lambda: [turn.pid or 0],
        "server": lambda: [server.pid],
    }

    def on_mark(mark: dict[str, Any]) -> None:
        if mark["mark"] == "joined":
            joined.set()
        elif mark["mark"] == "window-start":
            for name, pids in others.items():
                windows[name] = CpuWindow(pids())
                windows[name].start()
        elif mark["mark"] == "window-end":
            for window in windows.values():
                window.finish()

    command = taskset(
        cores.server,
        python_module(
            "bench.bots",
            server.url,
            *(c.tokens["clinician"] for c in consults),
            "--window",
            str(settings.window_s),
            "--warm",
            str(settings.warm_s),
            "--ready-timeout",
            str(settings.ready_timeout_s),
        ),
    )
    bots = asyncio.create_task(run_marked(command, ROOT, on_mark, name=f"bots x{count}"))
    contexts = []
    try:
        async with asyncio.timeout(30):
            await joined.wait()
        for consult in consults:
            context = await browser.new_context(viewport={"width": 960, "height": 600})
            contexts.append(context)
            page = await context.new_page()
            await page.goto(f"{server.url}/c/{consult.tokens['pharmacist']}")
            await click_join(page, problems)
        result = await bots
    finally:
        if not bots.done():
            bots.cancel()
            with contextlib.suppress(BaseException):
                await bots
        for context in contexts:
            await context.close()
    if result.get("errors"):
        problems.append(f"synthetic x{count}: bots got errors {result['errors']}")
    return {
        **result,
        "cpu_pct_per_bot": result["cpu_pct"] / count,
        **{
            f"{name}_cpu_pct": windows[name].percent if name in windows else math.nan
            for name in others
        },
    }


async def run(workdir: Path, cores: Cores, settings: SyntheticSettings) -> dict[str, Any]:
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    turn = Coturn(verbose=False)
    await turn.start()  # from the main thread: coturn dies with the thread that started it
    assert turn.pid is not None
    pin(turn.pid, cores.driver)
    db = await Database.create(settings.db, workdir)
    # Everything but the bots on the driver core; the bots get the server core to themselves.
    others = Cores(server=cores.driver, driver=cores.server)
    server = None
    try:
        server = await start_ours(
            workdir, db, others, label="ours-synthetic", env=turn.server_env()
        )
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                for count in settings.bot_counts:
                    log(f"synthetic: {count} bot(s), each paired with a Chromium page")
                    rows.append(
                        await _measure(browser, server, turn, cores, settings, count, problems)
                    )
            finally:
                await browser.close()
    finally:
        if server is not None:
            server.stop()
            problems.extend(f"ours (synthetic): {line}" for line in server.log_problems())
        await turn.stop()
        await db.drop()
    for row in rows:
        if row["received_fps_per_bot"] < 10:
            problems.append(
                f"synthetic x{row['bots']}: bots decoded only "
                f"{row['received_fps_per_bot']:.1f} frames/s each (the pages send ~20)"
            )
    return {"settings": asdict(settings), "rows": rows, "problems": problems}
