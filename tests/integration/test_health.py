"""`/healthz` (alive) and `/readyz` (able to work), with real faults: Postgres and Redis cut
off by a loopback TCP proxy (the shared services keep running), and the background tasks
the server needs stopped."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.health import CHECK_TIMEOUT_SECONDS
from tests.conftest import RunningServer
from tests.support.tcp_proxy import TcpProxy, postgres_proxy, through


async def probe(server: RunningServer, path: str) -> tuple[int, dict[str, Any]]:
    async with server.http.get(f"{server.base_url}{path}") as answer:
        body: dict[str, Any] = await answer.json()
        return answer.status, body


async def test_ready_when_everything_answers(server: RunningServer) -> None:
    assert await probe(server, "/healthz") == (200, {"ok": True})
    assert await probe(server, "/readyz") == (
        200,
        {
            "ok": True,
            "checks": {"database": "ok", "redis": "off", "panel_writer": "ok", "webhooks": "off"},
        },
    )


async def test_not_ready_once_the_panel_writer_task_died(server: RunningServer) -> None:
    task = server.state.panel_writer._task
    assert task is not None
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    status, body = await probe(server, "/readyz")
    assert status == 503
    assert body["reason"] == "panel_writer_stopped" and "restart" in body["message"]
    assert body["checks"]["panel_writer"] == "panel_writer_stopped"
    assert body["checks"]["database"] == "ok"
    assert await probe(server, "/healthz") == (200, {"ok": True})


class TestWebhookTask:
    @pytest.fixture
    def config_overrides(self) -> dict[str, Any]:
        # Nobody listens there: deliveries fail, which must not stop the task.
        return {"webhooks": {"url": "http://127.0.0.1:9/hooks", "secret": "s" * 16}}

    async def test_not_ready_once_the_webhook_delivery_task_died(
        self, server: RunningServer
    ) -> None:
        await server.create_consult()
        await asyncio.sleep(0.5)
        assert (await probe(server, "/readyz"))[1]["checks"]["webhooks"] == "ok"
        task = server.state.webhooks._task
        assert task is not None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        status, body = await probe(server, "/readyz")
        assert (status, body["reason"]) == (503, "webhook_delivery_stopped")


@pytest.fixture
async def database_proxy(database_url: tuple[str, str | None]) -> AsyncIterator[TcpProxy]:
    url, schema = database_url
    if schema is None:
        pytest.fail("this test needs Postgres: set MTM_TEST_DATABASE_URL (./run.sh test does)")
    async with postgres_proxy(url) as proxy:
        yield proxy


class TestDatabaseFault:
    @pytest.fixture
    def config_overrides(
        self, database_url: tuple[str, str | None], database_proxy: TcpProxy
    ) -> dict[str, Any]:
        return {"database": {"url": through(database_proxy, database_url[0])}}

    async def test_not_ready_while_the_database_is_unreachable(
        self, server: RunningServer, database_proxy: TcpProxy
    ) -> None:
        assert (await probe(server, "/readyz"))[0] == 200
        await database_proxy.cut()
        status, body = await probe(server, "/readyz")
        assert status == 503
        assert body["reason"] == "database_unreachable"
        assert body["checks"]["database"] == "database_unreachable"
        assert body["message"].startswith("The database cannot be reached")
        assert await probe(server, "/healthz") == (200, {"ok": True})
        await database_proxy.restore()
        # Ready again at once: the pool's dead connections are replaced, not reported.
        assert (await probe(server, "/readyz"))[0] == 200

    async def test_not_ready_within_the_check_timeout_while_the_database_hangs(
        self, server: RunningServer, database_proxy: TcpProxy
    ) -> None:
        """A partition that drops packets: no error ever comes, the check's timeout answers."""
        assert (await probe(server, "/readyz"))[0] == 200
        database_proxy.stall()
        started = asyncio.get_running_loop().time()
        status, body = await probe(server, "/readyz")
        waited = asyncio.get_running_loop().time() - started
        assert (status, body["reason"]) == (503, "database_unreachable")
        assert CHECK_TIMEOUT_SECONDS <= waited < CHECK_TIMEOUT_SECONDS + 2
        await database_proxy.restore()
        async with asyncio.timeout(10):
            while (await probe(server, "/readyz"))[0] != 200:
                await asyncio.sleep(0.2)


@pytest.fixture
async def redis_proxy(database_url: tuple[str, str | None]) -> AsyncIterator[TcpProxy]:
    if database_url[1] is None:
        pytest.fail("redis.url is for Postgres deployments: set MTM_TEST_DATABASE_URL")
    url = os.environ.get("MTM_TEST_REDIS_URL")
    if not url:
        pytest.fail("this test needs Redis: set MTM_TEST_REDIS_URL (./run.sh test does)")
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    async with TcpProxy(host or "127.0.0.1", int(port or 6379)) as proxy:
        yield proxy


class TestRedisFault:
    @pytest.fixture
    def config_overrides(self, redis_proxy: TcpProxy) -> dict[str, Any]:
        return {"redis": {"url": f"redis://127.0.0.1:{redis_proxy.port}/0"}}

    async def test_not_ready_while_redis_is_unreachable(
        self, server: RunningServer, redis_proxy: TcpProxy
    ) -> None:
        assert await probe(server, "/readyz") == (
            200,
            {
                "ok": True,
                "checks": {
                    "database": "ok",
                    "redis": "ok",
                    "panel_writer": "ok",
                    "webhooks": "off",
                },
            },
        )
        await redis_proxy.cut()
        status, body = await probe(server, "/readyz")
        assert (status, body["reason"]) == (503, "redis_unreachable")
        assert body["checks"]["database"] == "ok"
        await redis_proxy.restore()
        async with asyncio.timeout(10):
            while (await probe(server, "/readyz"))[0] != 200:
                await asyncio.sleep(0.2)
