"""`/healthz` (the process answers) and `/readyz` (it can do its work), for load balancers
and orchestrators (docs/operations.md, "Health and readiness").

`/readyz` answers 503 with the first failing check as `reason` while the database cannot be
reached, Redis cannot be reached (when `redis.url` is set), or a background task the server
needs has stopped (the panel writer; the webhook delivery task when webhooks are on). A
load balancer then sends new connections to another instance; `/healthz` stays 200, since
restarting the process would not bring the database back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from server.state import STATE, AppState

# Each check gets this long: a readiness probe must answer well within the prober's own
# timeout (nginx, Kubernetes: a few seconds) even when a dependency hangs instead of failing.
CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Failure:
    reason: str
    message: str


DATABASE = Failure(
    "database_unreachable",
    "The database cannot be reached; edits cannot be saved on this instance.",
)
REDIS = Failure(
    "redis_unreachable",
    "Redis (redis.url) cannot be reached; this instance cannot reach the others.",
)
PANEL_WRITER = Failure(
    "panel_writer_stopped",
    "The task that saves panel edits has stopped; restart this instance.",
)
WEBHOOKS = Failure(
    "webhook_delivery_stopped",
    "The task that delivers webhooks has stopped; restart this instance.",
)


@dataclass(frozen=True)
class Check:
    name: str
    failure: Failure
    # True: ready; False: failing; None: not configured here.
    probe: Callable[[], Awaitable[bool | None]]


class Readiness:
    def __init__(self, state: AppState) -> None:
        self._state = state
        self._redis: redis.asyncio.Redis | None = None
        self._abandoned: set[asyncio.Future[bool | None]] = set()
        self.checks = (
            Check("database", DATABASE, self._database),
            Check("redis", REDIS, self._redis_ping),
            Check("panel_writer", PANEL_WRITER, self._panel_writer),
            Check("webhooks", WEBHOOKS, self._webhooks),
        )

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def run(self) -> tuple[dict[str, str], Failure | None]:
        """Each check's outcome ("ok", "off" or its failure's reason), and the first failure."""
        outcomes = await asyncio.gather(*(self._outcome(check) for check in self.checks))
        failed = [
            check.failure for check, ok in zip(self.checks, outcomes, strict=True) if ok is False
        ]
        report = {
            check.name: "off" if ok is None else "ok" if ok else check.failure.reason
            for check, ok in zip(self.checks, outcomes, strict=True)
        }
        return report, (failed[0] if failed else None)

    async def _outcome(self, check: Check) -> bool | None:
        probe = asyncio.ensure_future(check.probe())
        done, _ = await asyncio.wait({probe}, timeout=CHECK_TIMEOUT_SECONDS)
        if done:
            return probe.result()
        # Answer now. Cancelling a statement on a hung connection can itself hang (the
        # driver sends the cancel request over the same dead path): it ends in the
        # background, held here so that it is not collected mid-way.
        probe.cancel()
        self._abandoned.add(probe)
        probe.add_done_callback(self._forget)
        return False

    def _forget(self, probe: asyncio.Future[bool | None]) -> None:
        self._abandoned.discard(probe)
        if not probe.cancelled():
            probe.exception()  # retrieved: whatever it was, the answer was given already

    async def _database(self) -> bool:
        # Twice: the first use of a pooled connection that died (the database restarted
        # since) fails and discards it; only a second failure says the database is down.
        for attempt in range(2):
            try:
                async with self._state.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                return True
            except DBAPIError as exc:
                if attempt > 0 or not exc.connection_invalidated:
                    return False
            except OSError:
                return False
        return False

    async def _redis_ping(self) -> bool | None:
        url = self._state.config.redis.url
        if url is None:
            return None
        if self._redis is None:
            self._redis = redis.asyncio.from_url(
                url,
                socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
                socket_timeout=CHECK_TIMEOUT_SECONDS,
            )
        try:
            return bool(await self._redis.ping())
        except (redis.RedisError, OSError):
            return False

    async def _panel_writer(self) -> bool:
        return self._state.panel_writer.running

    async def _webhooks(self) -> bool | None:
        webhooks = self._state.webhooks
        return webhooks.running if webhooks.enabled else None


READINESS = web.AppKey("mtm_readiness", Readiness)


def add_routes(app: web.Application) -> None:
    """The routes; call after `app[STATE]` is set."""
    readiness = Readiness(app[STATE])
    app[READINESS] = readiness
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)

    async def close(_app: web.Application) -> None:
        await readiness.close()

    app.on_cleanup.append(close)


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process and its event loop answer. Depends on nothing else."""
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    checks, failure = await request.app[READINESS].run()
    if failure is None:
        return web.json_response({"ok": True, "checks": checks})
    return web.json_response(
        {"ok": False, "reason": failure.reason, "message": failure.message, "checks": checks},
        status=503,
    )
