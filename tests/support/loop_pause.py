"""How long the event loop stalls while some work runs: a 2 ms ticker records its gaps.
Shared by the documents tests and `./run.sh bench documents`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def longest_pause(work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(the longest gap between 2 ms ticks of the event loop while `work` ran, its time),
    both in seconds."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    started = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - started
    done.set()
    await ticker
    return max(gaps, default=elapsed), elapsed
