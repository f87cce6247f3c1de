"""Stopping long-lived tasks: a shutdown never hangs on a task that lost its cancellation."""

from __future__ import annotations

import asyncio

from models.background import stop_task


async def _loses_first_cancellations(lost: int) -> None:
    # The shape of the server's writers, listeners and heartbeats: a loop that logs a fault
    # and goes on. On Python 3.11, asyncio.wait_for (redis-py uses it) returns the inner
    # result when a cancellation arrives just as the inner await completes: the
    # cancellation is lost and the loop goes round again. Here the first `lost` are.
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if lost == 0:
                raise
            lost -= 1


async def test_a_loop_that_loses_a_cancellation_still_stops() -> None:
    """Regression: one `cancel()` and one `await` hung the shutdown for good when the
    cancellation was lost (the suite stopped there in CI until its time ran out)."""
    task = asyncio.create_task(_loses_first_cancellations(2))
    await asyncio.sleep(0)
    async with asyncio.timeout(30):
        await stop_task(task)
    assert task.cancelled()


async def test_a_finished_or_missing_task_is_left_as_it_is() -> None:
    async def fails() -> None:
        raise ValueError("logged by the task itself")

    failed = asyncio.create_task(fails())
    await asyncio.wait({failed})
    await stop_task(failed)
    await stop_task(None)
    assert isinstance(failed.exception(), ValueError)
