"""Stopping the long-lived tasks of a process (writers, listeners, heartbeats)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

# How long one cancellation may take to end the task before it is delivered again.
_RECANCEL_SECONDS = 1.0


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` and return once it has ended.

    One cancellation is not always enough on Python 3.11: `asyncio.wait_for` (redis-py
    uses it) returns the inner result when a cancellation arrives just as the inner await
    completes, so a loop built to outlive faults goes round again as if never cancelled.
    Awaiting such a task once hangs the shutdown for good, so the cancellation is
    delivered again until the task has ended.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=_RECANCEL_SECONDS)
    if not task.cancelled():
        # A task that failed by itself has logged why; stopping it is not another fault.
        with contextlib.suppress(Exception):
            task.result()
