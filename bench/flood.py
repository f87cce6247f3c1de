"""Benchmark: one abusive client flooding events while normal consults edit.

C consults edit as in the fan-out benchmark (three participants, one editor at 2 edits/s,
the Node driver). Meanwhile one more consult's pharmacist (bench/flooder.py, a raw
Socket.IO client, `nice`d on the driver's core so the driver keeps its CPU) sends
`panel-sync` as fast as the server answers, with 64 acknowledgements in flight: a read of
the whole panel per event, the most a client can make the server do per event without
writing. Three runs, each with a fresh server:

- no flood (the consults' normal latency),
- the flood, with the default limits (signaling.events_per_second 20, event_burst 100),
- the flood with the limits lifted (100,000 events a second, a burst of a million), to
  show what they buy.

Reported (never asserted): the consults' ack and arrival p50/p99, the flood's events per
second and how they were answered, the server's CPU.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    ConsultLinks,
    Cores,
    CpuWindow,
    Database,
    log,
    spawn,
    start_ours,
    stop,
    taskset,
)
from bench.driver import python_module, run_driver
from bench.fanout import FanoutSettings, _driver_config

# The largest values the settings allow.
LIFTED = {"MTM_SIGNALING__EVENTS_PER_SECOND": "100000", "MTM_SIGNALING__EVENT_BURST": "1000000"}


@dataclass
class FloodSettings:
    rooms: int = 100
    rate_per_room: float = 2.0
    duration_s: float = 5.0
    warmup_s: float = 1.5
    drain_s: float = 2.0
    event: str = "panel-sync"
    in_flight: int = 64
    scenarios: list[str] = field(default_factory=lambda: ["none", "limited", "unlimited"])


def rooms_needed(settings: FloodSettings) -> int:
    return settings.rooms + 1  # the last one is the abuser's


@dataclass
class _Flooder:
    process: subprocess.Popen[bytes]
    progress: dict[str, Any] = field(default_factory=dict)
    at_window: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    reader: Awaitable[None] | None = None


def _start_flooder(
    workdir: Path, cores: Cores, url: str, token: str, settings: FloodSettings
) -> _Flooder:
    config = {
        "url": url,
        "token": token,
        "event": settings.event,
        "payload": {"since": 0},
        "seconds": settings.warmup_s + settings.duration_s + settings.drain_s + 1,
        "in_flight": settings.in_flight,
    }
    path = workdir / "flooder.json"
    path.write_text(json.dumps(config))
    flooder_command = python_module("bench.flooder", str(path))
    command = taskset(cores.driver, ["nice", "-n", "10", *flooder_command])
    flooder = _Flooder(spawn(command, stdout=subprocess.PIPE, stderr=None))

    async def read() -> None:
        assert flooder.process.stdout is not None
        while line := await asyncio.to_thread(flooder.process.stdout.readline):
            message = json.loads(line)
            if "mark" in message:
                flooder.progress = message
            elif "result" in message:
                flooder.result = message["result"]

    flooder.reader = asyncio.get_running_loop().create_task(read())
    return flooder


def _window_rates(flooder: _Flooder) -> dict[str, Any]:
    """Events sent and answered per second, by answer, over the driver's window."""
    if len(flooder.at_window) != 2 or not flooder.at_window[0]:
        return {}
    start, end = flooder.at_window
    seconds = end["t"] - start["t"]
    if seconds <= 0:
        return {}
    answered = {
        code: (count - start["answered"].get(code, 0)) / seconds
        for code, count in end["answered"].items()
    }
    return {"sent_per_s": (end["sent"] - start["sent"]) / seconds, "answered_per_s": answered}


async def _scenario(
    name: str,
    workdir: Path,
    db: Database,
    cores: Cores,
    settings: FloodSettings,
    consults: list[ConsultLinks],
    problems: list[str],
) -> dict[str, Any]:
    server = await start_ours(
        workdir, db, cores, env=LIFTED if name == "unlimited" else None, label=f"flood-{name}"
    )
    abuser = consults[settings.rooms].tokens["pharmacist"]
    flooder: _Flooder | None = None
    window: CpuWindow | None = None

    def on_mark(mark: dict[str, Any]) -> None:
        nonlocal flooder, window
        if mark["mark"] == "connected" and name != "none":
            flooder = _start_flooder(workdir, cores, server.url, abuser, settings)
        elif mark["mark"] == "window-start":
            window = CpuWindow([server.pid])
            window.start()
            if flooder is not None:
                flooder.at_window.append(dict(flooder.progress))
        elif mark["mark"] == "window-end":
            if window is not None:
                window.finish()
            if flooder is not None:
                flooder.at_window.append(dict(flooder.progress))

    fanout = FanoutSettings(
        rate_per_room=settings.rate_per_room,
        duration_s=settings.duration_s,
        warmup_s=settings.warmup_s,
        drain_s=settings.drain_s,
    )
    steps = [
        {
            "rate": settings.rooms * settings.rate_per_room,
            "duration_s": settings.duration_s,
            "warmup_s": settings.warmup_s,
        }
    ]
    config = _driver_config(
        "ours", server, consults, settings.rooms, steps, fanout, stop_p99_ms=None, label=name
    )
    try:
        result = await run_driver(workdir, cores, config, on_mark, name=f"flood-{name}")
    finally:
        if flooder is not None:
            await asyncio.to_thread(flooder.process.wait, 30)
            stop(flooder.process)
            if flooder.reader is not None:
                await flooder.reader
        server.stop()
    step = result["steps"][0]
    row: dict[str, Any] = {
        "scenario": name,
        "rooms": settings.rooms,
        "delivered_rate": step["delivered_rate"],
        "ack_ms": step["ack_ms"],
        "arrival_ms": step["arrival_ms"],
        "missing_arrivals": step.get("missing_arrivals", 0),
        "driver_cpu_pct": step.get("driver_cpu_pct", math.nan),
        "server_cpu_pct": window.percent if window is not None else math.nan,
        "load_average": os.getloadavg()[0],
    }
    if flooder is not None:
        row["flood"] = {**_window_rates(flooder), "total": flooder.result}
        if flooder.result is None or "error" in flooder.result:
            problems.append(f"flood ({name}): the flooder failed: {flooder.result}")
    for line in server.log_problems():
        problems.append(f"flood ({name}): {line}")
    return row


async def run(
    workdir: Path,
    cores: Cores,
    settings: FloodSettings,
    db: Database,
    consults: list[ConsultLinks],
) -> dict[str, Any]:
    problems: list[str] = []
    rows = []
    for name in settings.scenarios:
        log(f"flood: {settings.rooms} consults editing, flood {name}")
        rows.append(await _scenario(name, workdir, db, cores, settings, consults, problems))
    return {"settings": asdict(settings), "rows": rows, "problems": problems}
