"""Where an edit's time goes: database round trips per `mutate`, and a py-spy profile of
the server process under fan-out load.

1. Round trips: the real app (`server.app.create_app`) in this process with SQLAlchemy
   event listeners on its engine; two participants join over Socket.IO and the pharmacist
   sends `edits` sequential `mutate` `set`s of medication notes. Counted per edit: SQL
   statements, transactions (BEGIN/COMMIT), pool checkouts (each one a `pool_pre_ping`
   round trip), and the statements of one edit, in order.
2. Profile: the server as a process of its own on the server core, under the fan-out
   driver at `rooms` x 2 edits/s, sampled by `py-spy record` (--threads, --nonblocking)
   during the measured window. Reported: the share of samples in the event-loop thread
   and in other threads (aiosqlite runs each connection in a thread), and the functions
   with the largest inclusive and self shares.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import socketio
from aiohttp import web
from sqlalchemy import event

from bench.common import (
    API_SETTINGS,
    VENV_BIN,
    ConsultLinks,
    Cores,
    CpuWindow,
    Database,
    create_consults,
    free_port,
    log,
    spawn,
    start_ours,
    stop,
)
from bench.driver import run_driver
from bench.fanout import FanoutSettings, _driver_config


@dataclass
class ProfileSettings:
    edits: int = 50
    rooms: int = 300
    duration_s: float = 10.0
    sample_rate: int = 200


def py_spy() -> str | None:
    candidate = VENV_BIN / "py-spy"
    if candidate.exists():
        return str(candidate)
    return shutil.which("py-spy")


# -- 1. round trips ------------------------------------------------------------------------


async def count_round_trips(workdir: Path, db: Database, edits: int) -> dict[str, Any]:
    from server.app import create_app
    from server.config import load_config
    from server.state import STATE

    port = free_port()
    config = load_config(
        None,
        environ={},
        overrides={
            "server": {"host": "127.0.0.1", "port": port},
            "database": {"url": db.url},
            "api": API_SETTINGS,
            "paths": {"var_dir": str(workdir / "var-profile")},
            "auth": {"token_secret": "b" * 48},
            "logging": {"level": "WARNING"},
        },
    )
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base_url = f"http://127.0.0.1:{port}"
    engine = app[STATE].engine.sync_engine
    counts: collections.Counter[str] = collections.Counter()
    statements: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counts["statements"] += 1
        statements.append(" ".join(statement.split())[:160])

    def on_begin(_conn: Any) -> None:
        counts["begin"] += 1

    def on_commit(_conn: Any) -> None:
        counts["commit"] += 1

    def on_checkout(*_args: Any) -> None:
        counts["pool_checkouts"] += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "begin", on_begin)
    event.listen(engine, "commit", on_commit)
    event.listen(engine.pool, "checkout", on_checkout)
    clients: list[Any] = []
    try:
        consult = (await create_consults(base_url, 1))[0]
        for role in ("pharmacist", "clinician"):
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(
                base_url, auth={"token": consult.tokens[role]}, transports=["websocket"]
            )
            ack = await client.call("join", {}, timeout=10)
            if not ack.get("ok"):
                raise RuntimeError(f"join refused: {ack}")
            clients.append(client)
        editor = clients[0]

        async def edit(index: int) -> None:
            ack = await editor.call(
                "mutate",
                {
                    "mutation_id": f"profile-{index}",
                    "op": "set",
                    "entity": "medication",
                    "entity_id": consult.medication_id,
                    "field": "notes",
                    "value": f"note {index} " + "x" * 100,
                },
                timeout=10,
            )
            if not ack.get("ok"):
                raise RuntimeError(f"mutate refused: {ack}")

        await edit(0)  # warm caches
        counts.clear()
        statements.clear()
        await edit(1)
        one_edit = list(statements)
        counts.clear()
        for index in range(2, edits + 2):
            await edit(index)
        per_edit = {key: value / edits for key, value in sorted(counts.items())}
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.disconnect()
        await runner.cleanup()
    return {"db": db.kind, "edits": edits, "per_edit": per_edit, "one_edit": one_edit}


# -- 2. py-spy ------------------------------------------------------------------------------

FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")
THREAD = re.compile(r"^thread \(\d+\): (?P<name>.*)$")

# Leaf-frame file -> what it is, first match wins (self time of the event-loop thread).
BUCKETS = [
    ("sqlalchemy/orm/", "SQLAlchemy ORM (unit of work, loading, identity map)"),
    ("sqlalchemy/", "SQLAlchemy core (compile, cache keys, execution)"),
    ("aiosqlite/", "aiosqlite (handing calls to its thread)"),
    ("asyncpg/", "asyncpg"),
    ("socketio/", "python-socketio"),
    ("engineio/", "python-engineio"),
    ("aiohttp/", "aiohttp"),
    ("pydantic", "pydantic"),
    ("json/", "json"),
    ("models/", "our code: models/"),
    ("signaling/", "our code: signaling/"),
    ("server/", "our code: server/"),
    ("asyncio/", "asyncio event loop"),
    ("selectors.py", "asyncio event loop"),
]


# A sample whose innermost Python frame is one of these is the loop waiting in epoll
# (asyncio's selector), or inside uvloop's C run loop, where py-spy sees no Python frame.
LOOP_LEAVES = (
    "EpollSelector.select ",
    "Runner.run (asyncio/runners.py)",
    "BaseEventLoop.run_forever ",
    "BaseEventLoop.run_until_complete ",
    "run (uvloop/",
)


def _short(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path})"


def _bucket(name: str) -> str:
    for needle, label in BUCKETS:
        if needle in name:
            return label
    return "other"


def analyse(collapsed: str, ticks: float, top: int = 25) -> dict[str, Any]:
    """Shares per function in the event-loop thread from py-spy's raw (collapsed) output
    recorded with --threads; `ticks` = duration x rate (samples a always-busy thread gets).

    Samples whose leaf is the loop itself (asyncio's `epoll` wait, or uvloop's C run loop)
    are counted apart, and the shares are of the loop thread's Python-level samples only."""
    main_total = 0
    idle_total = 0
    worker_total = 0
    inclusive: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    buckets: collections.Counter[str] = collections.Counter()
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = THREAD.match(frames[0]) if frames else None
        if thread is not None:
            frames = frames[1:]
        if thread is None or thread["name"] != "MainThread":
            worker_total += count
            continue
        if frames and _short(frames[-1]).startswith(LOOP_LEAVES):
            idle_total += count  # waiting for I/O (or in uvloop's C code): not Python work
            continue
        main_total += count
        seen = set()
        for frame in frames:
            name = _short(frame)
            if name not in seen:
                inclusive[name] += count
                seen.add(name)
        if frames:
            leaf = _short(frames[-1])
            self_time[leaf] += count
            buckets[_bucket(leaf)] += count

    def share(n: int) -> float:
        return 100.0 * n / main_total if main_total else 0.0

    return {
        "main_samples": main_total,
        "main_busy_pct": 100.0 * main_total / ticks if ticks else 0.0,
        "main_epoll_pct": 100.0 * idle_total / ticks if ticks else 0.0,
        "worker_threads_busy": worker_total / ticks if ticks else 0.0,
        "buckets": [(name, share(n)) for name, n in buckets.most_common()],
        "inclusive": [(name, share(n)) for name, n in inclusive.most_common(top)],
        "self": [(name, share(n)) for name, n in self_time.most_common(top)],
    }


async def spy_under_load(
    workdir: Path,
    cores: Cores,
    db: Database,
    consults: list[ConsultLinks],
    settings: ProfileSettings,
    problems: list[str],
) -> dict[str, Any]:
    spy = py_spy()
    if spy is None:
        return {"skipped": "py-spy is not installed (pip install -r bench/requirements.txt)"}
    server = await start_ours(workdir, db, cores, label="ours-profile")
    out = workdir / "py-spy.txt"
    spy_process: subprocess.Popen[bytes] | None = None
    window = CpuWindow([server.pid])

    def on_mark(mark: dict[str, Any]) -> None:
        nonlocal spy_process
        if mark["mark"] == "window-start":
            window.start()
            spy_process = spawn(
                [
                    spy,
                    "record",
                    "--pid",
                    str(server.pid),
                    "--duration",
                    str(int(settings.duration_s)),
                    "--rate",
                    str(settings.sample_rate),
                    "--format",
                    "raw",
                    "--threads",
                    "--nonblocking",
                    "--output",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(workdir / "py-spy.log", "wb"),  # noqa: SIM115
            )
        elif mark["mark"] == "window-end":
            window.finish()

    fanout = FanoutSettings(duration_s=settings.duration_s + 1, warmup_s=2.0)
    rooms = min(settings.rooms, len(consults))
    steps = [{"rate": rooms * 2, "duration_s": fanout.duration_s, "warmup_s": fanout.warmup_s}]
    try:
        config = _driver_config(
            "ours", server, consults, rooms, steps, fanout, stop_p99_ms=None, label="profile"
        )
        result = await run_driver(workdir, cores, config, on_mark, name="profile")
        if spy_process is not None:
            await asyncio.to_thread(spy_process.wait, 60)
    finally:
        stop(spy_process)
        server.stop()
    if not out.exists():
        log_text = (workdir / "py-spy.log").read_text(errors="replace")[-500:]
        problems.append(f"py-spy wrote no profile: {log_text}")
        return {"skipped": "py-spy failed"}
    step = result["steps"][0]
    return {
        "rooms": rooms,
        "rate": rooms * 2,
        "arrival_ms": step["arrival_ms"],
        "delivered_rate": step["delivered_rate"],
        "server_cpu_pct": window.percent,
        **analyse(out.read_text(errors="replace"), settings.duration_s * settings.sample_rate),
    }


async def run(
    workdir: Path,
    cores: Cores,
    settings: ProfileSettings,
    db: Database,
    consults: list[ConsultLinks],
) -> dict[str, Any]:
    problems: list[str] = []
    log("profile: counting database round trips per edit")
    trips = await count_round_trips(workdir, db, settings.edits)
    log(f"profile: py-spy on the server at {settings.rooms} rooms x 2 edits/s")
    spied = await spy_under_load(workdir, cores, db, consults, settings, problems)
    return {"settings": asdict(settings), "round_trips": trips, "spy": spied, "problems": problems}
