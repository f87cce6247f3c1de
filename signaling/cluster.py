"""The instances of one service, and the commands that must reach another instance.

A consult is served by one instance in the normal case (the load balancer routes by consult
id, docs/deploy.md), but nothing is wrong when its participants are spread over several: a
REST call, an admission or a takeover can always touch a connection held elsewhere. What
must cross goes through here:

- `publish` delivers a `Command` to every instance, this one first. A command names what to
  do (end a consult; admit, deny, remove or replace one connection) and each instance acts
  on the connections it holds. A command that could not reach every live instance (Redis
  down or restarting) is kept and sent again by the next heartbeats, so cross-instance
  commands resume by themselves; they are idempotent, so a repeat changes nothing.
- `beat` is the heartbeat: it keeps this instance alive in Redis (a key with a TTL), says
  when Redis lost this instance's state (restarted, or this instance was partitioned away
  long enough to be declared dead) so that presence is written again, and hands each dead
  instance to exactly one survivor, which announces its participants' departure.
- `RedisManager` is python-socketio's `AsyncRedisManager` with a listener that comes back
  within two seconds of Redis, not after the library's backoff of up to a minute: what
  one instance emits to a room reaches the others' clients again soon after a restart.

`LocalCluster` is the one-process version: commands go straight to this instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import orjson
import socketio
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from models.background import stop_task
from signaling.wire import log_limited

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsultEnded:
    """The consult ended: tell its connections and close them."""

    consult_id: str
    reason: str


SessionAction = Literal["admit", "deny", "remove", "replace"]


@dataclass(frozen=True)
class SessionCommand:
    """Act on one connection (`sid`), wherever it is held."""

    action: SessionAction
    consult_id: str
    sid: str


@dataclass(frozen=True)
class PresenceResynced:
    """An instance wrote its presence into Redis again: tell your clients the rosters."""

    instance: str


Command = ConsultEnded | SessionCommand | PresenceResynced
CommandHandler = Callable[[Command], Awaitable[None]]


@dataclass(frozen=True)
class DeadInstance:
    instance: str
    last_seen: float  # unix time of its last heartbeat


@dataclass(frozen=True)
class Beat:
    dead: list[DeadInstance]
    # Redis lost what this instance wrote there (Redis restarted, or this instance was
    # declared dead while partitioned): write presence again and announce it.
    resync: bool


class ClusterRefused(Exception):
    """This instance cannot join the others (its message names the setting)."""


class Cluster(Protocol):
    @property
    def instance(self) -> str: ...

    def on_command(self, handler: CommandHandler) -> None: ...

    async def publish(self, command: Command) -> None:
        """Deliver `command` to every instance, this one first (awaited here)."""

    async def beat(self) -> Beat: ...

    async def forget(self, instance: str) -> None:
        """A dead instance's departures are announced: drop it from the registry."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class _Handlers:
    def __init__(self) -> None:
        self._handlers: list[CommandHandler] = []

    def on_command(self, handler: CommandHandler) -> None:
        self._handlers.append(handler)

    async def _deliver(self, command: Command) -> None:
        for handler in self._handlers:
            try:
                await handler(command)
            except Exception:
                log.exception("handling a %s command failed", type(command).__name__)


class LocalCluster(_Handlers):
    """One process: every connection is here."""

    instance = "local"

    async def publish(self, command: Command) -> None:
        await self._deliver(command)

    async def beat(self) -> Beat:
        return Beat(dead=[], resync=False)

    async def forget(self, instance: str) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


_COMMANDS: dict[str, type[ConsultEnded] | type[SessionCommand] | type[PresenceResynced]] = {
    "consult-ended": ConsultEnded,
    "session": SessionCommand,
    "presence-resynced": PresenceResynced,
}
_KINDS = {cls: kind for kind, cls in _COMMANDS.items()}
# A command that may have missed an instance (Redis unreachable, or fewer receivers than
# live instances) is published again at each heartbeat for this long once Redis takes it:
# the others' listeners subscribe again within a few seconds of Redis coming back, and a
# command is idempotent, so repeats change nothing. One never published is dropped after
# the second figure.
_RESEND_SECONDS = 10.0
_GIVE_UP_SECONDS = 300.0
_UNSENT_LIMIT = 10_000


@dataclass
class _Unsent:
    message: bytes
    queued_at: float
    published_at: float | None = None


class RedisCluster(_Handlers):
    """Instances that share one Redis.

    Keys: `<prefix>alive:<instance>` (expires after `ttl_seconds` without a heartbeat),
    `<prefix>instances` (hash: instance → {beat, fingerprint}), `<prefix>reaping:<instance>`
    (who announces a dead instance's departures); channel `<prefix>commands`.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        ttl_seconds: float,
        fingerprint: str,
        prefix: str = "mtm:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._redis = redis
        self._instance = f"i_{secrets.token_hex(6)}"
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        self._fingerprint = fingerprint
        self._prefix = prefix
        self._clock = clock
        self._channel = f"{prefix}commands"
        self._listener: asyncio.Task[None] | None = None
        self._unsent: deque[_Unsent] = deque(maxlen=_UNSENT_LIMIT)
        self._live_others = 0
        self._lost_contact = False

    @property
    def instance(self) -> str:
        return self._instance

    def _alive_key(self, instance: str) -> str:
        return f"{self._prefix}alive:{instance}"

    async def start(self) -> None:
        """Join the others; refuses an instance whose token secret differs from theirs."""
        registry = await self._redis.hgetall(f"{self._prefix}instances")
        for raw_id, raw in registry.items():
            other = _text(raw_id)
            if other == self._instance or not await self._redis.exists(self._alive_key(other)):
                continue
            if orjson.loads(raw).get("fingerprint") != self._fingerprint:
                raise ClusterRefused(
                    "auth.token_secret: differs from the secret of the running instance "
                    f"{other}; every instance must sign join links with the same secret"
                )
        await self._register()
        self._listener = asyncio.create_task(self._listen(), name="cluster-listener")

    async def stop(self) -> None:
        await stop_task(self._listener)
        with contextlib.suppress(RedisError, OSError):
            # A clean stop: the others need not wait for the TTL (departures are recorded by
            # this instance's own disconnects as it shuts down).
            await self._redis.delete(self._alive_key(self._instance))
            await self._redis.hdel(f"{self._prefix}instances", self._instance)

    async def _register(self) -> str | None:
        """Refresh this instance's keys; returns the alive key's previous value."""
        previous = await self._redis.set(
            self._alive_key(self._instance), "1", px=self._ttl_ms, get=True
        )
        await self._redis.hset(
            f"{self._prefix}instances",
            self._instance,
            orjson.dumps({"beat": self._clock(), "fingerprint": self._fingerprint}),
        )
        return None if previous is None else _text(previous)

    async def publish(self, command: Command) -> None:
        await self._deliver(command)
        message = orjson.dumps(
            {"origin": self._instance, "kind": _KINDS[type(command)], "command": asdict(command)}
        )
        if not await self._send(message):
            self._unsent.append(_Unsent(message, time.monotonic()))

    async def _send(self, message: bytes) -> bool:
        """Whether every other live instance received `message`."""
        try:
            received = int(await self._redis.publish(self._channel, message))
        except (RedisError, OSError) as exc:
            log_limited(log, logging.WARNING, "cluster: Redis unreachable (%s)", type(exc).__name__)
            return False
        return received >= self._live_others

    async def beat(self) -> Beat:
        try:
            previous = await self._register()
            resync = previous is None or self._lost_contact
            self._lost_contact = False
            registry = {
                _text(key): raw
                for key, raw in (await self._redis.hgetall(f"{self._prefix}instances")).items()
            }
            others = [key for key in registry if key != self._instance]
            async with self._redis.pipeline(transaction=False) as pipe:
                for other in others:
                    pipe.exists(self._alive_key(other))
                alive = await pipe.execute()
            self._live_others = sum(1 for exists in alive if exists)
            dead = []
            for other, exists in zip(others, alive, strict=True):
                if exists:
                    continue
                claimed = await self._redis.set(
                    f"{self._prefix}reaping:{other}", self._instance, nx=True, px=60_000
                )
                if claimed:
                    last_seen = float(orjson.loads(registry[other])["beat"])
                    dead.append(DeadInstance(other, last_seen))
            await self._resend()
        except (RedisError, OSError) as exc:
            log_limited(
                log, logging.WARNING, "cluster heartbeat: Redis unreachable (%s)",
                type(exc).__name__,
            )  # fmt: skip
            self._lost_contact = True
            return Beat(dead=[], resync=False)
        return Beat(dead=dead, resync=resync)

    async def _resend(self) -> None:
        now = time.monotonic()
        for _ in range(len(self._unsent)):
            unsent = self._unsent.popleft()
            try:
                await self._redis.publish(self._channel, unsent.message)
            except (RedisError, OSError):
                if now - unsent.queued_at < _GIVE_UP_SECONDS:
                    self._unsent.append(unsent)
                else:
                    log.warning("cluster: a command could not be sent for 5 minutes; dropped")
                continue
            if unsent.published_at is None:
                unsent.published_at = now
            if now - unsent.published_at < _RESEND_SECONDS:
                self._unsent.append(unsent)

    async def forget(self, instance: str) -> None:
        await self._redis.hdel(f"{self._prefix}instances", instance)
        await self._redis.delete(f"{self._prefix}reaping:{instance}")

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                backoff = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._received(message["data"])
            except (RedisError, OSError) as exc:
                log_limited(
                    log, logging.WARNING, "cluster listener: Redis unreachable (%s)",
                    type(exc).__name__,
                )  # fmt: skip
                # Commands sent meanwhile are lost to this listener: the next beat resyncs.
                self._lost_contact = True
                await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _received(self, raw: Any) -> None:
        try:
            data = orjson.loads(raw)
            if data["origin"] == self._instance:
                return
            command = _COMMANDS[data["kind"]](**data["command"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log_limited(log, logging.WARNING, "cluster: a malformed command was ignored")
            return
        await self._deliver(command)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """`socketio.AsyncRedisManager` on a bounded, waiting connection pool, resubscribing
    after 0.25 to 2 s (with jitter) when the connection to Redis is lost; messages published
    meanwhile are lost, as with the library's own (presence and rosters are resent after
    Redis returns: see `beat`). `redis+sentinel://` URLs are not supported here."""

    def _redis_connect(self) -> None:
        # A bounded pool that makes a burst of emits wait for a connection: the library's
        # default pool refuses the 101st concurrent publish, and that message is lost.
        self.redis = Redis(
            connection_pool=BlockingConnectionPool.from_url(
                self.redis_url, max_connections=64, timeout=10
            )
        )
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.connected = True

    async def _redis_listen_with_retries(self) -> Any:
        delay = 0.25
        while True:
            try:
                self._redis_connect()
                await self.pubsub.subscribe(self.channel)
                delay = 0.25
                async for message in self.pubsub.listen():
                    yield message
            except Exception as exc:  # whatever the connection raised: subscribe again
                log_limited(
                    log, logging.WARNING, "Socket.IO manager: Redis unreachable (%s)",
                    type(exc).__name__,
                )  # fmt: skip
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 2.0)
