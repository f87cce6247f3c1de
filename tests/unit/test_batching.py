"""`ReadBatch` (models/batching.py): concurrent reads gathered into one fetch, never answered
from an older one. `WriteBatch` needs a database: tests/integration/test_batching.py."""

import asyncio
from collections.abc import Collection

import pytest

from models.batching import ReadBatch


class Store:
    """A fetch that records each call's keys and can be held open."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.calls: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_with: BaseException | None = None

    async def fetch(self, keys: Collection[str]) -> dict[str, int]:
        self.calls.append(sorted(keys))
        asked = {key: self.values[key] for key in keys if key in self.values}
        await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return asked


async def settle() -> None:
    """Let every task that can run go as far as it can."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_read_is_fetched_at_once() -> None:
    store = Store()
    store.values["a"] = 1
    batch = ReadBatch(store.fetch)
    assert await batch.get("a") == 1
    assert await batch.get("missing") is None
    assert store.calls == [["a"], ["missing"]]


async def test_reads_that_arrive_during_a_fetch_share_the_next_one() -> None:
    store = Store()
    store.values.update(a=1, b=2, c=3)
    store.gate.clear()
    batch = ReadBatch(store.fetch)
    first = asyncio.create_task(batch.get("a"))
    await settle()
    others = [asyncio.create_task(batch.get(key)) for key in ("b", "c", "b")]
    await settle()
    store.gate.set()
    assert await first == 1
    assert await asyncio.gather(*others) == [2, 3, 2]
    assert store.calls == [["a"], ["b", "c"]]


async def test_a_read_asked_during_a_fetch_of_its_key_waits_for_a_newer_one() -> None:
    """What the running fetch read may predate the ask (a joiner entered its room, then
    asked for the panel): the ask gets the next fetch's answer."""
    store = Store()
    store.values["a"] = 1
    store.gate.clear()
    batch = ReadBatch(store.fetch)
    before = asyncio.create_task(batch.get("a"))
    await settle()
    store.values["a"] = 2  # committed after the first fetch read, before the second ask
    after = asyncio.create_task(batch.get("a"))
    await settle()
    store.gate.set()
    assert await before == 1
    assert await after == 2
    assert store.calls == [["a"], ["a"]]


async def test_a_failed_fetch_fails_its_readers_only() -> None:
    store = Store()
    store.values.update(a=1, b=2)
    store.gate.clear()
    store.fail_with = ConnectionError("database gone")
    batch = ReadBatch(store.fetch)
    failing = asyncio.create_task(batch.get("a"))
    await settle()
    later = asyncio.create_task(batch.get("b"))
    await settle()
    store.gate.set()
    with pytest.raises(ConnectionError, match="database gone"):
        await failing
    # The fetch after the failure is tried afresh; here it fails too, then recovers.
    with pytest.raises(ConnectionError):
        await later
    store.fail_with = None
    assert await batch.get("b") == 2


async def test_a_reader_that_gives_up_leaves_the_fetch_to_the_others() -> None:
    store = Store()
    store.values["a"] = 1
    store.gate.clear()
    batch = ReadBatch(store.fetch)
    leaving = asyncio.create_task(batch.get("a"))
    staying = asyncio.create_task(batch.get("a"))
    await settle()
    leaving.cancel()
    await settle()
    store.gate.set()
    assert await staying == 1
    assert leaving.cancelled()


async def test_one_fetch_takes_at_most_max_keys() -> None:
    store = Store()
    store.values.update({str(n): n for n in range(5)})
    store.gate.clear()
    batch = ReadBatch(store.fetch, max_keys=2)
    first = asyncio.create_task(batch.get("0"))
    await settle()
    rest = [asyncio.create_task(batch.get(str(n))) for n in range(1, 5)]
    await settle()
    store.gate.set()
    assert [await first, *await asyncio.gather(*rest)] == [0, 1, 2, 3, 4]
    assert store.calls == [["0"], ["1", "2"], ["3", "4"]]


async def test_a_runner_cancelled_before_it_ran_does_not_stop_later_reads() -> None:
    """A task cancelled before its first step never runs its `finally`: the batch must not
    take it for a running fetch and leave every later read waiting."""
    store = Store()
    store.values.update(a=1, b=2)
    batch = ReadBatch(store.fetch)
    first = asyncio.create_task(batch.get("a"))
    await asyncio.sleep(0)  # `first` asked and made the runner, which has not run yet
    runner = batch._running
    assert runner is not None and not runner.done()
    runner.cancel()
    await asyncio.sleep(0)
    assert await asyncio.wait_for(batch.get("b"), 1) == 2
    # The first ask, left waiting by the cancelled runner, is served by the next one.
    assert await asyncio.wait_for(first, 1) == 1
