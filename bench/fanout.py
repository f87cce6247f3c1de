"""Benchmark 1: medication-edit fan-out.

C consults (rooms), three connected participants each; one participant per room edits at
2 edits/s (phases spread over the period). Measured by the same Node driver against:

- ours: `mutate` `set` of a medication's `why` (a last-writer-wins field every participant
  sees; care-team notes would reach the patient only as a hidden stub) with a value of
  `payload_bytes`; ack = the `mutate` acknowledgement, arrival = `panel-event` at the two
  other participants. Every edit is validated, committed with an audit row, then broadcast.
- yjs: y-websocket 1.5.4's reference server (bin/server.js, y-leveldb persistence); three
  WebsocketProviders per document (`disableBc: true`), each edit a `Y.Map` set of a value
  of the same size; arrival = the other two maps observing it. (No acknowledgement exists
  in that protocol.)
- socketio (optional): a bare Node Socket.IO relay with the same events, nothing stored.

Each (target, C) gets a fresh server process pinned to the server core, so its peak RSS
is that step's. A ramp then raises the total edit rate on the largest C until arrival p99
passes the limit: the last rate under it is the sustained rate.
"""

from __future__ import annotations

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
    start_sio_peer,
    start_yjs,
)
from bench.driver import run_driver


@dataclass
class FanoutSettings:
    sizes: list[int] = field(default_factory=lambda: [100, 500, 1000])
    rate_per_room: float = 2.0
    duration_s: float = 8.0
    warmup_s: float = 2.0
    drain_s: float = 5.0
    payload_bytes: int = 120
    ramp_rates: list[int] = field(
        default_factory=lambda: [50, 100, 200, 400, 600, 800, 1000, 1500, 2000, 3000, 4000]
    )
    ramp_rooms: int = 1000
    ramp_step_s: float = 3.0
    ramp_warmup_s: float = 1.5
    p99_limit_ms: float = 100.0
    targets: list[str] = field(default_factory=lambda: ["ours", "yjs", "socketio"])
    connect_concurrency: int = 32
    server_env: dict[str, str] = field(default_factory=dict)


async def _start(
    target: str, workdir: Path, db: Database | None, cores: Cores, settings: FanoutSettings
) -> Server:
    if target.startswith("ours"):
        assert db is not None
        return await start_ours(workdir, db, cores, env=settings.server_env)
    if target == "yjs":
        return await start_yjs(workdir, cores)
    if target == "socketio":
        return await start_sio_peer(workdir, cores, ping_interval=25)
    raise ValueError(target)


def _driver_config(
    target: str,
    server: Server,
    consults: list[ConsultLinks],
    rooms: int,
    steps: list[dict[str, Any]],
    settings: FanoutSettings,
    *,
    stop_p99_ms: float | None,
    label: str,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "mode": "fanout",
        "target": "ours" if target.startswith("ours") else ("yjs" if target == "yjs" else "sio"),
        "url": server.url,
        "payload_bytes": settings.payload_bytes,
        "connect_concurrency": settings.connect_concurrency,
        "connect_timeout_s": 60,
        "steps": steps,
        "drain_s": settings.drain_s,
        "settle_s": 2.0,
        "stop_p99_ms": stop_p99_ms,
        "max_total_s": 280,
    }
    if target.startswith("ours"):
        config["rooms"] = [
            {
                "tokens": [c.tokens["pharmacist"], c.tokens["clinician"], c.tokens["patient"]],
                "entity_id": c.medication_id,
            }
            for c in consults[:rooms]
        ]
    elif target == "socketio":
        config["rooms"] = [
            {"tokens": [f"room{i}:{m}" for m in range(3)], "entity_id": "m_1"} for i in range(rooms)
        ]
    else:
        config["room_count"] = rooms
        config["room_prefix"] = label
    return config


async def _measure(
    target: str,
    workdir: Path,
    db: Database | None,
    cores: Cores,
    settings: FanoutSettings,
    consults: list[ConsultLinks],
    rooms: int,
    steps: list[dict[str, Any]],
    *,
    stop_p99_ms: float | None,
    label: str,
    problems: list[str],
) -> dict[str, Any]:
    server = await _start(target, workdir, db, cores, settings)
    windows: dict[int, CpuWindow] = {}
    loads: dict[int, float] = {}

    def on_mark(mark: dict[str, Any]) -> None:
        if mark["mark"] == "window-start":
            window = windows[mark["step"]] = CpuWindow([server.pid])
            window.start()
        elif mark["mark"] == "window-end" and mark["step"] in windows:
            windows[mark["step"]].finish()
            loads[mark["step"]] = os.getloadavg()[0]

    try:
        config = _driver_config(
            target,
            server,
            consults,
            rooms,
            steps,
            settings,
            stop_p99_ms=stop_p99_ms,
            label=label,
        )
        result = await run_driver(workdir, cores, config, on_mark, name=label)
        rss_kb, peak_kb = memory_kb(server.pid)
    finally:
        server.stop()
    for index, step in enumerate(result["steps"]):
        window = windows.get(index)
        cpu = window.percent if window is not None else math.nan
        step["server_cpu_pct"] = cpu
        step["load_average"] = loads.get(index, math.nan)
        delivered = step["delivered_rate"]
        step["server_cpu_us_per_edit"] = (
            cpu / 100 * 1e6 / delivered if delivered and math.isfinite(cpu) else math.nan
        )
    result["server_peak_rss_mb"] = peak_kb / 1024
    result["server_rss_mb"] = rss_kb / 1024
    for line in server.log_problems():
        problems.append(f"{target} ({label}): {line}")
    counters = result.get("counters", {})
    for key in (
        "ack_errors",
        "error_events",
        "seq_gaps",
        "seq_duplicates",
        "disconnects",
        "unknown_arrivals",
        "replayed_acks",
    ):
        if counters.get(key):
            problems.append(f"{target} ({label}): driver counted {key} = {counters[key]}")
    if result.get("connect_failures"):
        problems.append(
            f"{target} ({label}): {result['connect_failures']} connections failed "
            f"(first: {result.get('connect_first_error')})"
        )
    if result.get("error_codes"):
        problems.append(f"{target} ({label}): error codes {result['error_codes']}")
    return result


async def run(
    workdir: Path,
    cores: Cores,
    settings: FanoutSettings,
    ours_data: dict[str, tuple[Database, list[ConsultLinks]]],
) -> dict[str, Any]:
    """`ours_data`: per database kind, a database and its consults; "ours" in
    `settings.targets` runs once per kind, as target "ours-<kind>"."""
    problems: list[str] = []
    largest = settings.ramp_rooms
    results: dict[str, Any] = {"settings": asdict(settings), "steps": [], "ramp": {}}
    runs: list[tuple[str, Database | None, list[ConsultLinks]]] = []
    for target in settings.targets:
        if target == "ours":
            runs += [(f"ours-{kind}", db, consults) for kind, (db, consults) in ours_data.items()]
        else:
            runs.append((target, None, []))
    for rooms in settings.sizes:
        rate = rooms * settings.rate_per_room
        for target, db, consults in runs:
            log(f"fan-out: {target}, {rooms} rooms, {rate:.0f} edits/s")
            steps = [
                {"rate": rate, "duration_s": settings.duration_s, "warmup_s": settings.warmup_s}
            ]
            result = await _measure(
                target,
                workdir,
                db,
                cores,
                settings,
                consults,
                rooms,
                steps,
                stop_p99_ms=None,
                label=f"{target}-c{rooms}",
                problems=problems,
            )
            for step in result["steps"]:
                results["steps"].append(
                    {
                        "target": target,
                        "rooms": rooms,
                        "server_peak_rss_mb": result["server_peak_rss_mb"],
                        "connect_s": result["connect_s"],
                        **step,
                    }
                )
    if settings.ramp_rates:
        for target, db, consults in runs:
            log(f"fan-out ramp: {target}, {largest} rooms, rates {settings.ramp_rates}")
            steps = [
                {"rate": r, "duration_s": settings.ramp_step_s, "warmup_s": settings.ramp_warmup_s}
                for r in settings.ramp_rates
            ]
            result = await _measure(
                target,
                workdir,
                db,
                cores,
                settings,
                consults,
                largest,
                steps,
                stop_p99_ms=settings.p99_limit_ms,
                label=f"{target}-ramp",
                problems=problems,
            )
            results["ramp"][target] = {
                "rooms": largest,
                "steps": result["steps"],
                "sustained_edits_per_s": sustained(result["steps"], settings.p99_limit_ms),
            }
    results["problems"] = problems
    return results


def _p99(step: dict[str, Any]) -> float:
    value = step["arrival_ms"]["p99"]
    return math.inf if value in (None, "inf") else float(value)


def sustained(steps: list[dict[str, Any]], limit_ms: float) -> float:
    """The highest delivered edits/s among steps whose arrival p99 stayed under the limit."""
    good = [s["delivered_rate"] for s in steps if _p99(s) <= limit_ms and not s["missing_arrivals"]]
    return max(good) if good else 0.0
