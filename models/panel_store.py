"""Loading and saving a consult's panel, and reading its audit log.

`models/mutations.py` decides; this module reads `PanelState` from the database and writes
`Changes` back with a few bulk statements.

The fence between writers (two instances that both believe they serve a consult, a paused
process that wakes up): every write first locks the consult's row and compares its
`last_seq` with the `last_seq` the changes were decided on; a writer whose copy of the state
is stale gets `StaleState` and writes nothing. The log's primary key (consult, seq) is the
backstop: a second writer of the same seq cannot commit, so the history never forks.

Lock order (Postgres): every transaction that writes a consult's panel first locks the
consult row `FOR NO KEY UPDATE` (several consults: in id order), then writes the log,
entities and receipts, then the consult row. Taking the strongest lock it will need first
matters: the log's and receipts' foreign keys take a key-share lock on the consult row, and
a transaction that held that and then upgraded to update the row deadlocked with one that
was already waiting to lock it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Row, Table, bindparam, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from models import replay
from models.database import sqlstate
from models.mutations import (
    DEFAULT_MAX_ENTITIES,
    Actor,
    Changes,
    EntityRecord,
    EventRecord,
    MutationError,
    PanelState,
    PrescriberResponse,
    apply,
    respond,
)
from models.tables import Base, ChangeEvent, Consult, ConsultStatus, MutationReceipt, PanelEntity


def unknown_consult() -> MutationError:
    return MutationError("unknown_consult", "There is no such consult.")


class StaleState(Exception):
    """The panel changed under a cached state (another writer, or the consult ended)."""


# What Postgres's `mtm_persist_panel` (migration 0009) raises for StaleState.
STALE_SQLSTATE = "MT001"


# -- reading --------------------------------------------------------------------------------


_ENTITY_COLUMNS = (
    PanelEntity.entity_type,
    PanelEntity.id,
    PanelEntity.position,
    PanelEntity.data,
    PanelEntity.versions,
    PanelEntity.created_seq,
    PanelEntity.updated_seq,
    PanelEntity.updated_at,
    PanelEntity.updated_by_name,
    PanelEntity.updated_by_role,
    PanelEntity.authors,
)


def _record(row: PanelEntity | Row[Any]) -> EntityRecord:
    """A record of an ORM entity, or of a row of its `_ENTITY_COLUMNS`."""
    return EntityRecord(
        type=row.entity_type,
        id=row.id,
        position=row.position,
        data=dict(row.data),
        versions=dict(row.versions),
        created_seq=row.created_seq,
        updated_seq=row.updated_seq,
        updated_at=row.updated_at,
        updated_by_name=row.updated_by_name,
        updated_by_role=row.updated_by_role,
        authors=dict(row.authors or {}),
    )


def _event(row: ChangeEvent) -> EventRecord:
    return EventRecord(
        seq=row.seq,
        at=row.at,
        actor_id=row.actor_id,
        actor_name=row.actor_name,
        actor_role=row.actor_role,
        op=row.op,
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        field=row.field,
        old=row.old,
        new=row.new,
        mutation_id=row.mutation_id,
        outcome=row.outcome,
        source=row.source,
        detail=row.detail,
    )


async def _entities(session: AsyncSession, consult_id: str) -> list[EntityRecord]:
    query = (
        select(PanelEntity)
        .where(PanelEntity.consult_id == consult_id)
        .order_by(PanelEntity.position, PanelEntity.id)
        .execution_options(populate_existing=True)
    )
    return [_record(row) for row in (await session.execute(query)).scalars()]


async def _consult_row(
    session: AsyncSession, consult_id: str, *, lock: bool = False
) -> tuple[str, int]:
    query = select(Consult.status, Consult.last_seq).where(Consult.id == consult_id)
    if lock:
        # Serialises writers of a consult across processes (a no-op on SQLite, whose
        # writers are serialised by the database lock); see "Lock order" above.
        query = query.with_for_update(key_share=True)  # FOR NO KEY UPDATE
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise unknown_consult()
    return row.status, row.last_seq


async def load(
    session: AsyncSession,
    consult_id: str,
    *,
    lock: bool = False,
    max_entities: int = DEFAULT_MAX_ENTITIES,
) -> PanelState:
    """The consult's panel with every receipt, for applying mutations to."""
    status, last_seq = await _consult_row(session, consult_id, lock=lock)
    receipts = {
        (row.participant_id, row.mutation_id): dict(row.result)
        for row in (
            await session.execute(
                select(MutationReceipt).where(MutationReceipt.consult_id == consult_id)
            )
        ).scalars()
    }
    return PanelState(
        consult_id=consult_id,
        status=status,
        last_seq=last_seq,
        entities={record.id: record for record in await _entities(session, consult_id)},
        receipts=receipts,
        max_entities=max_entities,
    )


async def snapshot(session: AsyncSession, consult_id: str) -> dict[str, Any]:
    """The whole panel at one seq: `{seq, entities}`, each kind in list order."""
    found = await snapshots(session, [consult_id])
    panel: dict[str, Any] | None = found.get(consult_id)
    if panel is None:
        raise unknown_consult()
    return panel


async def snapshots(session: AsyncSession, consult_ids: Collection[str]) -> dict[str, Any]:
    """`snapshot` of each of these consults that exists, all read by one statement.

    One statement reads each consult's `last_seq` and its entities together, without
    locking: Postgres and SQLite give a statement one view of committed data, and every
    commit that changes entities also moves `last_seq`, so the entities are exactly the
    state at that seq. A client that got entities newer than their seq would apply those
    changes twice; one that got a seq newer than its entities would miss them for good.
    """
    # Columns, not ORM objects: every joiner reads this, and building the objects cost
    # more than the statement.
    query = (
        select(Consult.id.label("of_consult"), Consult.last_seq, *_ENTITY_COLUMNS)
        .select_from(Consult)
        .outerjoin(PanelEntity, PanelEntity.consult_id == Consult.id)
        .where(Consult.id.in_(consult_ids))
        .order_by(PanelEntity.position, PanelEntity.id)
    )
    found: dict[str, Any] = {}
    for row in await session.execute(query):
        panel = found.setdefault(row.of_consult, {"seq": row.last_seq, "entities": []})
        if row.id is not None:
            panel["entities"].append(_record(row).json())
    return found


async def events_since(
    session: AsyncSession, consult_id: str, since: int, *, limit: int = 10_000
) -> list[dict[str, Any]]:
    query = (
        select(ChangeEvent)
        .where(ChangeEvent.consult_id == consult_id, ChangeEvent.seq > since)
        .order_by(ChangeEvent.seq)
        .limit(limit)
    )
    return [_event(row).json() for row in (await session.execute(query)).scalars()]


async def snapshot_at(session: AsyncSession, consult_id: str, seq: int) -> dict[str, Any]:
    """The panel as it was at `seq` (0 up to the consult's latest), rebuilt from the change
    log (models/replay.py): `{seq, entities}` like `snapshot`. Raises ReplayError for a seq
    past the log's end."""
    status, _ = await _consult_row(session, consult_id)
    # Seqs are gap-free from 1, so the first `seq` events are exactly those up to it.
    events = await events_since(session, consult_id, 0, limit=seq) if seq > 0 else []
    return replay.state_at(consult_id, status, events, seq).snapshot()


async def history(session: AsyncSession, consult_id: str, entity_id: str) -> list[dict[str, Any]]:
    """Every event of one entity, oldest first (the audit trail a history drawer shows)."""
    query = (
        select(ChangeEvent)
        .where(ChangeEvent.consult_id == consult_id, ChangeEvent.entity_id == entity_id)
        .order_by(ChangeEvent.seq)
    )
    return [_event(row).json() for row in (await session.execute(query)).scalars()]


# -- writing --------------------------------------------------------------------------------


async def persist(
    connection: AsyncConnection,
    batch: Iterable[tuple[PanelState, int, Changes]],
    *,
    now: dt.datetime,
    after_end: bool = False,
) -> None:
    """Write what mutations changed, for any number of consults, in the caller's transaction
    (or, on Postgres, as one statement that is its own transaction: `write_batch`).

    Each item is (state after the mutations, its `last_seq` before them, the changes).
    Locks the consults first (see "Lock order"), then raises StaleState if one ended
    (unless `after_end`: a prescriber's answer to an ended consult's letter) or another
    writer moved its seq since the state was read (the caller rolls back).
    """
    rows = _Rows.of(batch, now=now)
    if rows is None:
        return
    if connection.dialect.name == "postgresql":
        await _persist_in_postgres(connection, rows, after_end=after_end)
    else:
        await _persist_with_core(connection, rows, after_end=after_end)


async def write_batch(
    engine: AsyncEngine,
    batch: Iterable[tuple[PanelState, int, Changes]],
    *,
    now: dt.datetime,
) -> None:
    """`persist` in a transaction of its own: the group-commit writer's path. On Postgres
    the batch is one statement in autocommit mode, a single round trip (every round trip
    costs the edit path more CPU than the rest of an edit); elsewhere BEGIN ... COMMIT."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await persist(autocommit, batch, now=now)
        return
    async with engine.begin() as connection:
        await persist(connection, batch, now=now)


@dataclass
class _Rows:
    """A batch's rows, keyed by column, for either way of writing them."""

    fence: list[dict[str, Any]]  # {id, last_seq (before), has_events}, in id order
    events: list[dict[str, Any]]
    created: list[dict[str, Any]]
    updated: list[dict[str, Any]]
    receipts: list[dict[str, Any]]
    moved: list[dict[str, Any]]  # {id, last_seq (after)}

    @classmethod
    def of(
        cls, batch: Iterable[tuple[PanelState, int, Changes]], *, now: dt.datetime
    ) -> _Rows | None:
        items = [item for item in batch if item[2].events or item[2].receipts]
        if not items:
            return None
        fence: dict[str, dict[str, Any]] = {}
        for state, first_seq, changes in items:
            entry = fence.setdefault(
                state.consult_id,
                {"id": state.consult_id, "last_seq": first_seq, "has_events": False},
            )
            entry["has_events"] = entry["has_events"] or bool(changes.events)
        return cls(
            fence=[fence[consult_id] for consult_id in sorted(fence)],
            events=[
                {"consult_id": state.consult_id, **_event_row(event)}
                for state, _, changes in items
                for event in changes.events
            ],
            created=[
                {"consult_id": state.consult_id, "id": record.id, **_entity_row(record)}
                for state, _, changes in items
                for record in changes.created.values()
            ],
            updated=[
                {"consult_id": state.consult_id, "id": record.id, **_entity_row(record)}
                for state, _, changes in items
                for record in changes.updated.values()
            ],
            receipts=[
                {
                    "consult_id": state.consult_id,
                    "participant_id": participant_id,
                    "mutation_id": mutation_id,
                    "result": result,
                    "created_at": now,
                }
                for state, _, changes in items
                for participant_id, mutation_id, result in changes.receipts
            ],
            moved=[
                {"id": state.consult_id, "last_seq": state.last_seq}
                for state, first_seq, _ in items
                if state.last_seq != first_seq
            ],
        )


async def _persist_in_postgres(
    connection: AsyncConnection, rows: _Rows, *, after_end: bool
) -> None:
    """One call of `mtm_persist_panel` (migration 0009), which does what
    `_persist_with_core` does, in the same order."""
    arguments: dict[str, Any] = {
        name: orjson.dumps(value).decode() for name, value in vars(rows).items()
    }
    try:
        await connection.execute(_PERSIST_FUNCTION, {"after_end": after_end, **arguments})
    except DBAPIError as exc:
        if sqlstate(exc) == STALE_SQLSTATE:
            raise StaleState("another writer moved the consult's log, or it ended") from None
        raise


async def _persist_with_core(connection: AsyncConnection, rows: _Rows, *, after_end: bool) -> None:
    await _fence(connection, rows.fence, after_end=after_end)
    if rows.events:
        await connection.execute(_INSERT_EVENTS, rows.events)
    if rows.created:
        await connection.execute(_INSERT_ENTITIES, rows.created)
    if rows.updated:
        # The key goes to the WHERE clause's parameters, every other column to SET.
        await connection.execute(
            _UPDATE_ENTITIES,
            [
                {
                    "b_consult_id": row["consult_id"],
                    "b_id": row["id"],
                    **{column: value for column, value in row.items() if column not in _KEY},
                }
                for row in rows.updated
            ],
        )
    if rows.receipts:
        await connection.execute(_INSERT_RECEIPTS, rows.receipts)
    if rows.moved:
        await connection.execute(
            _UPDATE_LAST_SEQ, [{"b_id": r["id"], "last_seq": r["last_seq"]} for r in rows.moved]
        )


async def _fence(
    connection: AsyncConnection, fence: list[dict[str, Any]], *, after_end: bool
) -> None:
    """Lock the consults' rows (id order, before anything else is written) and check that
    each is still at the seq its changes were decided on, and not ended if it gets events
    (unless `after_end`: a prescriber's answer to an ended consult's letter)."""
    rows = await connection.execute(_LOCK_CONSULTS, {"ids": [entry["id"] for entry in fence]})
    now_at = {consult_id: (status, last_seq) for consult_id, status, last_seq in rows}
    for entry in fence:
        status, last_seq = now_at.get(entry["id"], (None, None))
        if last_seq != entry["last_seq"]:
            raise StaleState("another writer moved the consult's log")
        if entry["has_events"] and status == ConsultStatus.ENDED.value and not after_end:
            raise StaleState("a consult ended while its mutations were being applied")


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


# The edit path's statements: Core with executemany (the ORM's bulk paths cost several
# times more CPU per row), each built once so that its cache key is computed once.
_consults = _table(Consult)
_entities_table = _table(PanelEntity)
_INSERT_EVENTS = insert(_table(ChangeEvent))
_INSERT_ENTITIES = insert(_entities_table)
_KEY = frozenset({"consult_id", "id"})
_UPDATE_ENTITIES = (
    update(_entities_table)
    .where(_entities_table.c.consult_id == bindparam("b_consult_id"))
    .where(_entities_table.c.id == bindparam("b_id"))
)
_INSERT_RECEIPTS = insert(_table(MutationReceipt))
_UPDATE_LAST_SEQ = update(_consults).where(_consults.c.id == bindparam("b_id"))
_PERSIST_FUNCTION = text(
    "SELECT mtm_persist_panel(:after_end, CAST(:fence AS json), CAST(:events AS json),"
    " CAST(:created AS json), CAST(:updated AS json), CAST(:receipts AS json),"
    " CAST(:moved AS json))"
)
_LOCK_CONSULTS = (
    select(_consults.c.id, _consults.c.status, _consults.c.last_seq)
    .where(_consults.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_consults.c.id)
    .with_for_update(key_share=True)  # FOR NO KEY UPDATE
)


def _event_row(event: EventRecord) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at,
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "actor_role": event.actor_role,
        "op": event.op,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "field": event.field,
        "old": event.old,
        "new": event.new,
        "mutation_id": event.mutation_id,
        "outcome": event.outcome,
        "source": event.source,
        "detail": event.detail,
    }


def _entity_row(record: EntityRecord) -> dict[str, Any]:
    return {
        "entity_type": record.type,
        "position": record.position,
        "data": record.data,
        "versions": record.versions,
        "created_seq": record.created_seq,
        "updated_seq": record.updated_seq,
        "updated_at": record.updated_at,
        "updated_by_name": record.updated_by_name,
        "updated_by_role": record.updated_by_role,
        "authors": record.authors,
    }


async def apply_mutation(
    session: AsyncSession,
    consult_id: str,
    actor: Actor,
    raw: Any,
    *,
    now: dt.datetime,
    max_entities: int = DEFAULT_MAX_ENTITIES,
) -> dict[str, Any]:
    """Load, apply and save one mutation in the caller's transaction (the one-off path)."""
    state = await load(session, consult_id, lock=True, max_entities=max_entities)
    first_seq = state.last_seq
    result, changes = apply(state, actor, raw, now=now)
    await persist(await session.connection(), [(state, first_seq, changes)], now=now)
    return result


class InitialMedicationRefused(MutationError):
    """One entry of a consult's initial medication list is refused; `index` says which."""

    def __init__(self, index: int, code: str, message: str) -> None:
        super().__init__(code, message)
        self.index = index


async def add_initial_medications(
    session: AsyncSession,
    consult_id: str,
    clinic: str,
    medications: list[dict[str, Any]],
    *,
    now: dt.datetime,
) -> None:
    """The list a clinic gives at creation: audited adds by the clinic, all or nothing.

    Raises InitialMedicationRefused for the first bad entry; the caller rolls back.
    """
    if not medications:
        return
    actor = Actor(participant_id=None, name=clinic, role="clinic")
    state = await load(session, consult_id, lock=True)
    first_seq = state.last_seq
    changes = Changes()
    for index, fields in enumerate(medications):
        mutation = {
            "mutation_id": f"initial-{index}",
            "op": "add",
            "entity": "medication",
            "value": fields,
        }
        result, applied = apply(state, actor, mutation, now=now)
        if not result["ok"]:
            error = result["error"]
            raise InitialMedicationRefused(index, error["code"], error["message"])
        changes.extend(applied)
    await persist(await session.connection(), [(state, first_seq, changes)], now=now)


class MedicationsRefused(MutationError):
    """Entries of a medication list are refused: `errors` holds (index, message) for each;
    nothing was written."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        super().__init__("invalid_value", "Some medications cannot be added.")
        self.errors = errors


async def add_medications(
    session: AsyncSession,
    consult_id: str,
    actor: Actor,
    medications: list[dict[str, Any]],
    *,
    mutation_prefix: str,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Add a list of medications as audited adds by `actor`, all or nothing, in the
    caller's transaction; returns the new entities in list order.

    Every entry is tried, so MedicationsRefused names each refused one; the caller rolls
    back. `mutation_prefix` plus the index is each add's mutation id.
    """
    state = await load(session, consult_id, lock=True)
    first_seq = state.last_seq
    changes = Changes()
    added: list[dict[str, Any]] = []
    errors: list[tuple[int, str]] = []
    for index, fields in enumerate(medications):
        mutation = {
            "mutation_id": f"{mutation_prefix}{index}",
            "op": "add",
            "entity": "medication",
            "value": fields,
        }
        result, applied = apply(state, actor, mutation, now=now)
        if not result["ok"]:
            errors.append((index, result["error"]["message"]))
            continue
        changes.extend(applied)
        added.append(result["entity"])
    if errors:
        raise MedicationsRefused(errors)
    await persist(await session.connection(), [(state, first_seq, changes)], now=now)
    return added


async def record_response(
    session: AsyncSession,
    consult_id: str,
    actor: Actor,
    response: PrescriberResponse,
    *,
    now: dt.datetime,
) -> dict[str, Any]:
    """A prescriber's answer to a recommendation (models.mutations.respond), written in the
    caller's transaction under the consult's lock: of two concurrent uses of one link, the
    second finds the recommendation decided. Raises MutationError; nothing is written then.
    """
    state = await load(session, consult_id, lock=True)
    first_seq = state.last_seq
    result, changes = respond(state, actor, response, now=now)
    await persist(
        await session.connection(), [(state, first_seq, changes)], now=now, after_end=True
    )
    return result
