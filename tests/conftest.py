"""Shared fixtures: a real server on loopback, backed by Postgres when the environment says so.

MTM_TEST_DATABASE_URL (postgresql+asyncpg://...) puts every test's tables in a schema of its
own; without it the tests use a SQLite file. CI (`./run.sh test`) always sets it.

A module runs its tests against several instances by overriding the `instances` fixture
(`tests/integration/test_lobby.py` does, with one and with two): `server` then starts that
many instances in this process, sharing the database and a private redis-server, and each
read of `server.base_url` names the next instance, so that the clients a test connects one
after another are spread over every instance.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models.consults import admit, create_consult
from models.database import make_engine, make_sessionmaker
from models.migrations import upgrade_to_head
from models.mutations import Actor
from models.panel_store import apply_mutation, events_since, snapshot
from models.tables import Participant
from server.api_keys import hash_key
from server.app import create_app
from server.config import Config, load_config
from server.security import RedactingAccessLogger
from server.state import STATE, AppState
from tests.support.coturn import Coturn
from tests.support.redis_server import RedisServer

API_KEY = "north-clinic-key-0123456789abcdef"
OTHER_API_KEY = "south-clinic-key-0123456789abcdef"
NORTH_DISPLAY_NAME = "North Clinic Pharmacy"
TOKEN_SECRET = "test-token-secret-" + "x" * 32


class FakeClock:
    """A clock tests move forward by hand; starts at the real time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[tuple[str, str | None]]:
    """(url, schema): a fresh Postgres schema per test, or a SQLite file."""
    async with fresh_database(tmp_path, os.environ.get("MTM_TEST_DATABASE_URL")) as database:
        yield database


@asynccontextmanager
async def fresh_database(tmp_path: Path, url: str | None) -> AsyncIterator[tuple[str, str | None]]:
    """(url, schema): a fresh schema of the Postgres at `url`, or (None) a SQLite file."""
    if not url:
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.sqlite3'}", None
        return
    schema = f"t_{secrets.token_hex(6)}"
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE SCHEMA "{schema}"')
        yield url, schema
    finally:
        try:
            await _drop_schema(connection, schema)
        finally:
            await connection.close()


# A connection the test's servers left open inside a transaction would make DROP SCHEMA
# wait for it forever: the wait is bounded, and what held the schema is named.
_SCHEMA_HOLDERS = """
    SELECT DISTINCT activity.pid, activity.state, left(activity.query, 120) AS query
    FROM pg_locks AS lock
    JOIN pg_class AS class ON class.oid = lock.relation
    JOIN pg_namespace AS namespace ON namespace.oid = class.relnamespace
    JOIN pg_stat_activity AS activity ON activity.pid = lock.pid
    WHERE namespace.nspname = $1 AND lock.pid <> pg_backend_pid()
"""


async def _drop_schema(connection: asyncpg.Connection, schema: str) -> None:
    await connection.execute("SET lock_timeout = '15s'")
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        return
    except asyncpg.exceptions.LockNotAvailableError:
        holders = [dict(row) for row in await connection.fetch(_SCHEMA_HOLDERS, schema)]
    for holder in holders:
        await connection.execute("SELECT pg_terminate_backend($1)", holder["pid"])
    await connection.execute("SET lock_timeout = 0")
    await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    pytest.fail(f"connections still held the test's schema after its servers stopped: {holders}")


@pytest.fixture
def turn() -> Iterator[Coturn]:
    """A real coturn on 127.0.0.1. Started synchronously from the main thread: coturn is
    tied to the thread that started it."""
    with Coturn() as server:
        yield server


def relay_through(turn: Coturn) -> dict[str, dict[str, Any]]:
    """Settings that send all media through `turn`, relay only (the only mode tests use)."""
    return {
        "ice": {"turn_urls": [turn.url], "turn_secret": turn.secret, "transport_policy": "relay"}
    }


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    """Tests override settings by mutating this before `server` starts."""
    return {}


@pytest.fixture
def instances() -> int:
    """How many server instances `server` starts (modules override it)."""
    return 1


@pytest.fixture(scope="session")
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test run on a free loopback port (the shared one on 6379 is
    never used for instances under test, and never restarted)."""
    with RedisServer() as redis:
        yield redis


@pytest.fixture
def config(
    tmp_path: Path,
    database_url: tuple[str, str | None],
    config_overrides: dict[str, dict[str, Any]],
    instances: int,
    request: pytest.FixtureRequest,
) -> Config:
    overrides: dict[str, dict[str, Any]] = {
        "database": {"url": database_url[0]},
        "paths": {"var_dir": str(tmp_path / "var")},
        "auth": {"token_secret": TOKEN_SECRET},
        "api": {
            "keys": [
                {"clinic": "north", "display_name": NORTH_DISPLAY_NAME, "hash": hash_key(API_KEY)},
                {
                    "clinic": "south",
                    "display_name": "South Clinic",
                    "hash": hash_key(OTHER_API_KEY),
                },
            ],
            # Tests run on a clock that only moves when told: a burst this large never
            # throttles them (the rate-limit tests lower it).
            "rate_limit_burst": 100_000,
        },
    }
    if instances > 1:
        if database_url[1] is None:
            pytest.fail(
                "several instances need Postgres: set MTM_TEST_DATABASE_URL (./run.sh test does)"
            )
        redis: RedisServer = request.getfixturevalue("private_redis")
        overrides["redis"] = {"url": redis.url}
    for section, values in config_overrides.items():
        overrides.setdefault(section, {}).update(values)
    return load_config(None, environ={}, overrides=overrides)


@dataclass
class RunningServer:
    """One instance, or several sharing the database and Redis (`apps`, `urls`)."""

    apps: list[web.Application]
    urls: list[str]
    http: aiohttp.ClientSession
    clock: FakeClock
    created: list[dict[str, Any]] = field(default_factory=list)
    _next: Iterator[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._next = itertools.cycle(self.urls)

    @property
    def app(self) -> web.Application:
        return self.apps[0]

    @property
    def base_url(self) -> str:
        """An instance's URL: with several, each read names the next one."""
        return next(self._next)

    @property
    def state(self) -> AppState:
        return self.app[STATE]

    async def create_consult(self, *, admit_patient: bool = True, **body: Any) -> dict[str, Any]:
        """A consult through the REST API. `admit_patient` lets the patient skip the waiting
        room, as if the pharmacist had admitted them already (tests of the waiting room
        pass False)."""
        body.setdefault("patient_name", "Maria Lopez")
        body.setdefault("scheduled_at", "2026-11-27T10:00:00+00:00")
        async with self.http.post(
            f"{self.base_url}/api/v1/consults", json=body, headers={"X-API-Key": API_KEY}
        ) as response:
            assert response.status == 201, await response.text()
            consult: dict[str, Any] = await response.json()
        self.created.append(consult)
        if admit_patient:
            patient = next(p for p in consult["participants"] if p["role"] == "patient")
            async with self.state.sessions() as session, session.begin():
                participant = await session.get(Participant, patient["id"])
                assert participant is not None
                admit(participant, now=dt.datetime.fromtimestamp(self.clock(), dt.UTC))
        return consult

    async def end_consult(self, consult_id: str, reason: str = "done") -> None:
        async with self.http.post(
            f"{self.base_url}/api/v1/consults/{consult_id}/end",
            json={"reason": reason},
            headers={"X-API-Key": API_KEY},
        ) as response:
            assert response.status == 200, await response.text()


def token_of(link: str) -> str:
    return link.rsplit("/c/", 1)[1]


async def start_instance(
    config: Config, database_url: tuple[str, str | None], clock: FakeClock
) -> tuple[web.AppRunner, str]:
    """One server instance on a free loopback port: its runner and its URL."""
    app = create_app(config, clock=clock, database_schema=database_url[1])
    runner = web.AppRunner(app, handle_signals=False, access_log_class=RedactingAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def server(
    config: Config, database_url: tuple[str, str | None], clock: FakeClock, instances: int
) -> AsyncIterator[RunningServer]:
    if config.redis.url is not None:
        await flush_redis(config.redis.url)
    started = [await start_instance(config, database_url, clock) for _ in range(instances)]
    async with aiohttp.ClientSession() as http:
        yield RunningServer(
            apps=[runner.app for runner, _ in started],
            urls=[url for _, url in started],
            http=http,
            clock=clock,
        )
    for runner, _ in started:
        await runner.cleanup()


async def flush_redis(url: str) -> None:
    """Forget what earlier tests left in the private Redis."""
    client = Redis.from_url(url)
    try:
        await client.flushall()
    finally:
        await client.aclose()


@dataclass
class PanelDb:
    """A migrated database with one consult, for domain tests of the panel."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    consult_id: str
    participants: dict[str, str]  # role -> participant id
    now: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC))

    def actor(self, role: str, name: str | None = None) -> Actor:
        return Actor(participant_id=self.participants[role], name=name or role.title(), role=role)

    async def mutate(self, actor: Actor, **mutation: Any) -> dict[str, Any]:
        async with self.sessions() as session, session.begin():
            return await apply_mutation(session, self.consult_id, actor, mutation, now=self.now)

    async def snapshot(self) -> dict[str, Any]:
        async with self.sessions() as session:
            return await snapshot(session, self.consult_id)

    async def events(self) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            return await events_since(session, self.consult_id, 0)


@pytest.fixture
async def panel_db(database_url: tuple[str, str | None]) -> AsyncIterator[PanelDb]:
    engine = make_engine(database_url[0], schema=database_url[1])
    await upgrade_to_head(engine)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        consult = await create_consult(
            session,
            clinic="north",
            patient_name="Maria Lopez",
            scheduled_at=dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC),
            notes=None,
            now=dt.datetime(2026, 11, 27, 9, tzinfo=dt.UTC),
        )
        participants = {p.role: p.id for p in consult.participants}
    yield PanelDb(
        engine=engine, sessions=sessions, consult_id=consult.id, participants=participants
    )
    await engine.dispose()
