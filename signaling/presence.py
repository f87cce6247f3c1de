"""Who is in which consult (in the call, or in the waiting room), behind one small interface.

`InMemoryPresence` serves one process. `RedisPresence` lets several instances see one
roster: each entry names the instance holding the participant's connection, so any
instance can relay to it, admit it or end its consult (through `signaling.cluster`), and
when an instance dies its entries are taken out (`reap`) and announced as departures.
Each instance also keeps its own entries in memory: they are its truth, rewritten into
Redis after Redis restarts (`resync`) and used alone while Redis cannot be reached.
Nothing here lives in module globals.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from signaling.wire import log_limited

log = logging.getLogger(__name__)

PresenceState = Literal["in-call", "waiting"]

# Consults whose last roster read is kept for a Redis outage.
_LAST_READ_KEPT = 10_000


@dataclass(frozen=True)
class PresentParticipant:
    participant_id: str
    role: str
    display_name: str
    sid: str
    state: PresenceState = "in-call"
    # The instance holding the connection (signaling.cluster), and the client's session: the
    # same page reconnecting keeps its session, so its peers keep their media connections.
    instance: str = ""
    session: str = ""
    since: float = field(default_factory=time.time)
    # What the participant's page says its microphone ("on", "off") and camera ("on", "off",
    # "audio-only") do, so that everyone's tile shows it (docs/protocol.md, "media").
    microphone: str = "on"
    camera: str = "on"

    def public(self) -> dict[str, Any]:
        """The roster entry other participants see (never the socket id or the instance)."""
        return {
            "id": self.participant_id,
            "role": self.role,
            "display_name": self.display_name,
            "session": self.session,
            "media": {"microphone": self.microphone, "camera": self.camera},
        }


class PresenceStore(Protocol):
    async def add(self, consult_id: str, entry: PresentParticipant) -> PresentParticipant | None:
        """Record `entry` (replacing the same participant's); returns the entry it replaced."""

    async def remove(self, consult_id: str, participant_id: str, sid: str) -> bool:
        """Forget the participant if `sid` is still its connection; True if removed."""

    async def get(self, consult_id: str, participant_id: str) -> PresentParticipant | None: ...

    async def update_media(
        self, consult_id: str, participant_id: str, sid: str, microphone: str, camera: str
    ) -> bool:
        """Set the entry's microphone and camera if `sid` is still its connection (a
        departure or a newer tab meanwhile is not undone); True if set."""

    async def roster(self, consult_id: str) -> list[PresentParticipant]:
        """Everyone present, in the call or waiting, in arrival order."""

    def local(self) -> list[tuple[str, PresentParticipant]]:
        """This instance's own entries, as (consult id, entry)."""

    async def reap(self, instance: str) -> list[tuple[str, PresentParticipant]]:
        """Take out every entry of a dead `instance`; returns them (each exactly once)."""

    async def resync(self) -> None:
        """Write this instance's entries again (the shared store lost them)."""

    @property
    def needs_resync(self) -> bool:
        """Whether the shared store missed a change of this instance's own entries (it
        could not be reached), so that the next heartbeat writes them again."""

    async def refresh(self) -> None:
        """Read again the rosters of the consults this instance holds someone in (each
        heartbeat), so that what it knows of the other instances is never older than that."""


class InMemoryPresence:
    """Presence for a single server process."""

    def __init__(self) -> None:
        self._consults: dict[str, dict[str, PresentParticipant]] = {}

    async def add(self, consult_id: str, entry: PresentParticipant) -> PresentParticipant | None:
        members = self._consults.setdefault(consult_id, {})
        previous = members.pop(entry.participant_id, None)
        members[entry.participant_id] = entry
        return previous

    async def remove(self, consult_id: str, participant_id: str, sid: str) -> bool:
        members = self._consults.get(consult_id)
        if not members or participant_id not in members:
            return False
        if members[participant_id].sid != sid:
            return False
        del members[participant_id]
        if not members:
            del self._consults[consult_id]
        return True

    async def get(self, consult_id: str, participant_id: str) -> PresentParticipant | None:
        return self._consults.get(consult_id, {}).get(participant_id)

    async def update_media(
        self, consult_id: str, participant_id: str, sid: str, microphone: str, camera: str
    ) -> bool:
        members = self._consults.get(consult_id, {})
        entry = members.get(participant_id)
        if entry is None or entry.sid != sid:
            return False
        members[participant_id] = replace(entry, microphone=microphone, camera=camera)
        return True

    async def roster(self, consult_id: str) -> list[PresentParticipant]:
        return list(self._consults.get(consult_id, {}).values())

    def local(self) -> list[tuple[str, PresentParticipant]]:
        return [
            (consult_id, entry)
            for consult_id, members in self._consults.items()
            for entry in members.values()
        ]

    async def reap(self, instance: str) -> list[tuple[str, PresentParticipant]]:
        return []  # one process: no other instance to outlive

    async def resync(self) -> None:
        return None

    @property
    def needs_resync(self) -> bool:
        return False

    async def refresh(self) -> None:
        return None


# Delete a participant's entry only if it is still the one we read (same socket id): a newer
# connection of the same participant, made meanwhile, stays.
_REMOVE_IF_SID = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
if cjson.decode(raw)['sid'] ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""
# Set an entry's microphone and camera only if it is still the connection that asked.
_UPDATE_MEDIA_IF_SID = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local entry = cjson.decode(raw)
if entry['sid'] ~= ARGV[2] then return 0 end
entry['microphone'] = ARGV[3]
entry['camera'] = ARGV[4]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return 1
"""
# Replace a participant's entry, returning the previous one, and index the consult under
# the instance that holds the connection.
_ADD = """
local previous = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return previous
"""


class RedisPresence:
    """Presence shared by every instance through Redis.

    Keys: `<prefix>presence:<consult>` (hash: participant id → entry as JSON) and
    `<prefix>consults-of:<instance>` (set: the consults where that instance holds someone).
    """

    def __init__(self, redis: Redis, instance: str, *, prefix: str = "mtm:") -> None:
        self._redis = redis
        self._instance = instance
        self._prefix = prefix
        self._mine: dict[str, dict[str, PresentParticipant]] = {}
        # The last roster read of each consult: while Redis cannot be reached, the other
        # instances' participants as they were (so a host can still admit one; the command
        # crosses once Redis is back).
        self._last_read: OrderedDict[str, list[PresentParticipant]] = OrderedDict()
        self._add = redis.register_script(_ADD)
        self._remove_if_sid = redis.register_script(_REMOVE_IF_SID)
        self._update_media_if_sid = redis.register_script(_UPDATE_MEDIA_IF_SID)
        self._missed = False

    def _consult_key(self, consult_id: str) -> str:
        return f"{self._prefix}presence:{consult_id}"

    def _index_key(self, instance: str) -> str:
        return f"{self._prefix}consults-of:{instance}"

    async def add(self, consult_id: str, entry: PresentParticipant) -> PresentParticipant | None:
        self._mine.setdefault(consult_id, {})[entry.participant_id] = entry
        try:
            previous = await self._add(
                keys=[self._consult_key(consult_id), self._index_key(entry.instance)],
                args=[entry.participant_id, _encode(entry), consult_id],
            )
        except RedisError as exc:
            _unreachable("add", exc)
            self._missed = True
            return None
        return _decode(previous) if previous is not None else None

    async def remove(self, consult_id: str, participant_id: str, sid: str) -> bool:
        members = self._mine.get(consult_id, {})
        mine = members.get(participant_id)
        if mine is not None and mine.sid == sid:
            del members[participant_id]
            if not members:
                self._mine.pop(consult_id, None)
        try:
            removed = await self._remove_if_sid(
                keys=[self._consult_key(consult_id)], args=[participant_id, sid]
            )
        except RedisError as exc:
            _unreachable("remove", exc)
            self._missed = True
            return mine is not None and mine.sid == sid
        return bool(removed)

    async def get(self, consult_id: str, participant_id: str) -> PresentParticipant | None:
        try:
            raw = await self._redis.hget(self._consult_key(consult_id), participant_id)
        except RedisError as exc:
            _unreachable("get", exc)
            for entry in self._fallback(consult_id):
                if entry.participant_id == participant_id:
                    return entry
            return None
        if raw is None:
            # Ours, not written back yet after Redis restarted (the next heartbeat does).
            return self._mine.get(consult_id, {}).get(participant_id)
        return _decode(raw)

    async def update_media(
        self, consult_id: str, participant_id: str, sid: str, microphone: str, camera: str
    ) -> bool:
        members = self._mine.get(consult_id, {})
        mine = members.get(participant_id)
        here = mine is not None and mine.sid == sid
        if mine is not None and here:
            members[participant_id] = replace(mine, microphone=microphone, camera=camera)
        try:
            updated = await self._update_media_if_sid(
                keys=[self._consult_key(consult_id)],
                args=[participant_id, sid, microphone, camera],
            )
        except RedisError as exc:
            _unreachable("update_media", exc)
            self._missed = True  # the next heartbeat writes our entries again
            return here
        return bool(updated)

    async def roster(self, consult_id: str) -> list[PresentParticipant]:
        try:
            found = await self._redis.hgetall(self._consult_key(consult_id))
        except RedisError as exc:
            _unreachable("roster", exc)
            return self._fallback(consult_id)
        entries = [_decode(raw) for raw in found.values()]
        return self._remember(consult_id, self._with_mine(consult_id, entries))

    def _fallback(self, consult_id: str) -> list[PresentParticipant]:
        """Without Redis: this instance's own entries, and the others' as last read."""
        mine = self._mine.get(consult_id, {})
        others = [
            entry
            for entry in self._last_read.get(consult_id, [])
            if entry.instance != self._instance and entry.participant_id not in mine
        ]
        return sorted(
            [*others, *mine.values()], key=lambda entry: (entry.since, entry.participant_id)
        )

    def local(self) -> list[tuple[str, PresentParticipant]]:
        return [
            (consult_id, entry)
            for consult_id, members in self._mine.items()
            for entry in members.values()
        ]

    async def reap(self, instance: str) -> list[tuple[str, PresentParticipant]]:
        index = self._index_key(instance)
        taken: list[tuple[str, PresentParticipant]] = []
        for raw_consult in await self._redis.smembers(index):
            consult_id = raw_consult.decode() if isinstance(raw_consult, bytes) else raw_consult
            for raw in (await self._redis.hgetall(self._consult_key(consult_id))).values():
                entry = _decode(raw)
                if entry.instance != instance:
                    continue
                removed = await self._remove_if_sid(
                    keys=[self._consult_key(consult_id)], args=[entry.participant_id, entry.sid]
                )
                if removed:
                    taken.append((consult_id, entry))
        await self._redis.delete(index)
        return taken

    async def refresh(self) -> None:
        consults = list(self._mine)
        if not consults:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for consult_id in consults:
                    pipe.hgetall(self._consult_key(consult_id))
                found = await pipe.execute()
        except RedisError as exc:
            _unreachable("refresh", exc)
            return
        for consult_id, entries in zip(consults, found, strict=True):
            decoded = [_decode(raw) for raw in entries.values()]
            self._remember(consult_id, self._with_mine(consult_id, decoded))

    def _with_mine(
        self, consult_id: str, entries: list[PresentParticipant]
    ) -> list[PresentParticipant]:
        """`entries` and this instance's own entries Redis lacks (after Redis restarted,
        until the next heartbeat writes them back): they are present, whatever Redis says."""
        listed = {entry.participant_id for entry in entries}
        mine = self._mine.get(consult_id, {})
        return entries + [entry for pid, entry in mine.items() if pid not in listed]

    def _remember(
        self, consult_id: str, entries: list[PresentParticipant]
    ) -> list[PresentParticipant]:
        entries.sort(key=lambda entry: (entry.since, entry.participant_id))
        self._last_read[consult_id] = entries
        self._last_read.move_to_end(consult_id)
        while len(self._last_read) > _LAST_READ_KEPT:
            self._last_read.popitem(last=False)
        return entries

    @property
    def needs_resync(self) -> bool:
        return self._missed

    async def resync(self) -> None:
        # Cleared first: a change that misses Redis while this runs asks for the next one.
        self._missed = False
        try:
            await self._write_back()
        except BaseException:
            self._missed = True
            raise

    async def _write_back(self) -> None:
        index = self._index_key(self._instance)
        # Entries of ours that left while Redis could not be told (it kept them).
        for raw_consult in await self._redis.smembers(index):
            consult_id = raw_consult.decode() if isinstance(raw_consult, bytes) else raw_consult
            mine = self._mine.get(consult_id, {})
            for raw in (await self._redis.hgetall(self._consult_key(consult_id))).values():
                entry = _decode(raw)
                kept = mine.get(entry.participant_id)
                if entry.instance == self._instance and (kept is None or kept.sid != entry.sid):
                    await self._remove_if_sid(
                        keys=[self._consult_key(consult_id)],
                        args=[entry.participant_id, entry.sid],
                    )
        async with self._redis.pipeline(transaction=False) as pipe:
            for consult_id, members in self._mine.items():
                for entry in members.values():
                    pipe.hset(self._consult_key(consult_id), entry.participant_id, _encode(entry))
                    pipe.sadd(index, consult_id)
            await pipe.execute()


def _encode(entry: PresentParticipant) -> bytes:
    return orjson.dumps(asdict(entry))


def _decode(raw: Any) -> PresentParticipant:
    return PresentParticipant(**orjson.loads(raw))


def _unreachable(operation: str, exc: RedisError) -> None:
    # While Redis is down this instance knows only its own participants; the heartbeat
    # writes them back once Redis answers again (ConsultSignaling._beat).
    log_limited(
        log,
        logging.WARNING,
        "presence %s: Redis unreachable (%s); using this instance's own view",
        operation,
        type(exc).__name__,
    )
