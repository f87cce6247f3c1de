"""Several server processes behind nginx, on a throw-away database and a private Redis:
the deployment of docs/deploy.md, on loopback, for the tests of process faults."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from redis.asyncio import Redis

from server.api_keys import hash_key
from tests.conftest import API_KEY, TOKEN_SECRET, flush_redis
from tests.support.nginx import Nginx
from tests.support.processes import ServerProcess, ThrowawayDatabase


@dataclass
class Deployment:
    instances: list[ServerProcess]
    nginx: Nginx
    database: ThrowawayDatabase
    redis_url: str
    http: aiohttp.ClientSession

    async def rest(self, method: str, path: str, *, via: str | None = None, **body: Any) -> Any:
        async with self.http.request(
            method,
            f"{via or self.nginx.url}/api/v1{path}",
            json=body or None,
            headers={"X-API-Key": API_KEY},
            ssl=False,
        ) as response:
            answer = await response.json()
            assert response.status in (200, 201), answer
            return answer

    async def holder_of(self, consult_id: str) -> ServerProcess:
        """The instance holding the consult's connections (from presence in Redis)."""
        redis = Redis.from_url(self.redis_url)
        try:
            entries = await redis.hgetall(f"mtm:presence:{consult_id}")
        finally:
            await redis.aclose()
        holders = {orjson.loads(raw)["instance"] for raw in entries.values()}
        assert len(holders) == 1, holders
        (instance,) = holders
        return next(process for process in self.instances if process.instance() == instance)

    async def new_consult(self, medications: list[dict[str, Any]]) -> dict[str, Any]:
        """A consult made through nginx, its patient admitted earlier by the pharmacist."""
        consult: dict[str, Any] = await self.rest(
            "POST",
            "/consults",
            patient_name="Maria Lopez",
            scheduled_at="2026-11-27T10:00:00+00:00",
            medications=medications,
        )
        await self.database.fetch(
            "UPDATE participant SET admitted_at = now() WHERE consult_id = $1 AND role = 'patient'",
            consult["id"],
        )
        return consult


@asynccontextmanager
async def deployed(
    redis_url: str, settings: dict[str, dict[str, Any]], *, instances: int = 2
) -> AsyncIterator[Deployment]:
    """`instances` processes with `settings` (added to what every test needs), behind nginx."""
    url = os.environ.get("MTM_TEST_DATABASE_URL")
    if not url:
        pytest.fail("this test needs Postgres: set MTM_TEST_DATABASE_URL (./run.sh test does)")
    database = ThrowawayDatabase(url)
    await database.create()
    await flush_redis(redis_url)
    nginx = Nginx([])
    base: dict[str, dict[str, Any]] = {
        "database": {"url": database.url},
        "redis": {"url": redis_url},
        "auth": {"token_secret": TOKEN_SECRET},
        "api": {
            "keys": [{"clinic": "north", "display_name": "North", "hash": hash_key(API_KEY)}],
            "rate_limit_burst": 100_000,
        },
        "server": {"public_url": nginx.url, "trust_forwarded": True},
    }
    for section, values in settings.items():
        base[section] = {**base.get(section, {}), **values}
    processes = [ServerProcess(base) for _ in range(instances)]
    try:
        for process in processes:
            # One after the other (the first migrates the database), on the event loop's
            # thread: a child process dies with the thread that started it.
            process.start()
        nginx.instances = [process.address for process in processes]
        nginx.start()
        async with aiohttp.ClientSession() as http:
            yield Deployment(processes, nginx, database, redis_url, http)
    finally:
        nginx.close()
        for process in processes:
            process.stop()
        await database.drop()
