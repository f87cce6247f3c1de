"""Benchmark 3: idle connected participants per server process.

Rooms of three participants (pharmacist, clinician, patient: consent accepted, admitted)
are connected in bounded batches by the Node driver until 1,000 and then 3,000
participants are in, then left idle. Per level: the server's RSS growth over its idle
baseline per participant, and its CPU over an idle window in which every connection gets
heartbeats (the Engine.IO ping interval is set to `ping_interval_s` for both servers, so
the window holds several pings per connection).

Peer: bench/node/sio_server.js, a minimal Socket.IO 4 server on Node holding the same
rooms with the same join (no database). Floor: bench/sio_floor.py, the same peer on the
Python libraries our server runs on, so that a ratio against the Node peer can be split
into what the Python stack costs and what our join adds to it.
"""

from __future__ import annotations

import asyncio
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    ConsultLinks,
    Cores,
    CpuWindow,
    Database,
    Server,
    log,
    memory_kb,
    start_ours,
    start_sio_floor,
    start_sio_peer,
)
from bench.driver import run_driver


@dataclass
class CapacitySettings:
    levels: list[int] = field(default_factory=lambda: [1000, 3000])
    ping_interval_s: float = 5.0
    idle_s: float = 20.0
    settle_s: float = 3.0
    batch_rooms: int = 25
    targets: list[str] = field(default_factory=lambda: ["ours", "socketio", "sio-floor"])


def rooms_needed(settings: CapacitySettings) -> int:
    return math.ceil(max(settings.levels) / 3)


async def _measure(
    target: str,
    workdir: Path,
    db: Database | None,
    cores: Cores,
    settings: CapacitySettings,
    consults: list[ConsultLinks],
    problems: list[str],
) -> dict[str, Any]:
    server: Server
    if target == "ours":
        assert db is not None
        server = await start_ours(
            workdir,
            db,
            cores,
            label="ours-capacity",
            env={
                "MTM_SIGNALING__PING_INTERVAL": str(settings.ping_interval_s),
                "MTM_CONSULT__REJOIN_GRACE_SECONDS": "3600",
            },
        )
        rooms = [
            [c.tokens["pharmacist"], c.tokens["clinician"], c.tokens["patient"]]
            for c in consults[: rooms_needed(settings)]
        ]
    else:
        start = start_sio_peer if target == "socketio" else start_sio_floor
        server = await start(workdir, cores, settings.ping_interval_s)
        rooms = [[f"room{i}:{m}" for m in range(3)] for i in range(rooms_needed(settings))]
    levels: dict[int, dict[str, Any]] = {}
    windows: dict[int, CpuWindow] = {}
    try:
        await asyncio.sleep(1.0)
        baseline_kb = memory_kb(server.pid)[0]

        def on_mark(mark: dict[str, Any]) -> None:
            level = mark.get("level")
            if not isinstance(level, int):
                return
            if mark["mark"] == "idle-start":
                windows[level] = CpuWindow([server.pid])
                windows[level].start()
                levels.setdefault(level, {})["rss_start_kb"] = memory_kb(server.pid)[0]
            elif mark["mark"] == "idle-end" and level in windows:
                windows[level].finish()
                rss, peak = memory_kb(server.pid)
                levels[level].update(rss_end_kb=rss, peak_kb=peak, load=os.getloadavg()[0])

        config = {
            "mode": "capacity",
            "target": "ours" if target == "ours" else "sio",
            "url": server.url,
            "rooms": rooms,
            "levels": settings.levels,
            "batch_rooms": settings.batch_rooms,
            "settle_s": settings.settle_s,
            "idle_s": settings.idle_s,
            "connect_timeout_s": 60,
            "max_total_s": 290,
        }
        result = await run_driver(workdir, cores, config, on_mark, name=f"{target}-capacity")
    finally:
        server.stop()
    rows = []
    for entry in result["levels"]:
        level = entry["level"]
        measured = levels.get(level, {})
        connected = entry["connected"]
        window = windows.get(level)
        cpu_pct = window.percent if window is not None else math.nan
        rss_kb = measured.get("rss_end_kb", math.nan)
        pings = connected * settings.idle_s / settings.ping_interval_s
        rows.append(
            {
                "level": level,
                "connected": connected,
                "failed_rooms": entry["failures"],
                "connect_s": entry["connect_s"],
                "connect_driver_cpu_pct": entry["connect_driver_cpu_pct"],
                "idle_driver_cpu_pct": entry["idle_driver_cpu_pct"],
                "rss_mb": rss_kb / 1024,
                "baseline_mb": baseline_kb / 1024,
                "kb_per_participant": (rss_kb - baseline_kb) / connected if connected else math.nan,
                "idle_cpu_pct": cpu_pct,
                "cpu_us_per_ping": (
                    cpu_pct / 100 * settings.idle_s * 1e6 / pings if pings else math.nan
                ),
                "peak_mb": measured.get("peak_kb", math.nan) / 1024,
                "disconnects": entry["disconnects_so_far"],
                "load_average": measured.get("load", math.nan),
            }
        )
    if result.get("failures"):
        problems.append(
            f"{target} (capacity): {result['failures']} rooms failed to join "
            f"(first: {result.get('first_error')})"
        )
    if result.get("disconnects"):
        problems.append(
            f"{target} (capacity): {result['disconnects']} idle participants "
            "were disconnected by the server"
        )
    problems.extend(f"{target} (capacity): {line}" for line in server.log_problems())
    return {"levels": rows}


async def run(
    workdir: Path,
    cores: Cores,
    settings: CapacitySettings,
    db: Database | None,
    consults: list[ConsultLinks],
) -> dict[str, Any]:
    problems: list[str] = []
    results: dict[str, Any] = {"settings": asdict(settings)}
    for target in settings.targets:
        log(f"capacity: {target}, levels {settings.levels}")
        results[target] = await _measure(target, workdir, db, cores, settings, consults, problems)
    results["problems"] = problems
    return results
