"""Running the Node load driver (bench/node/driver.js) and reacting to its window marks."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import NODE_DIR, Cores, log, spawn, stop, taskset

MarkHandler = Callable[[dict[str, Any]], None]


async def run_driver(
    workdir: Path,
    cores: Cores,
    config: dict[str, Any],
    on_mark: MarkHandler,
    *,
    name: str,
) -> dict[str, Any]:
    """Run the driver pinned to the driver core; returns its result.

    `on_mark` is called (in this thread) for every `{"mark": ...}` line as it arrives.
    """
    config_path = workdir / f"driver-{name}.json"
    config_path.write_text(json.dumps(config))
    command = taskset(
        cores.driver, ["node", "--max-old-space-size=4096", "driver.js", str(config_path)]
    )
    process = spawn(command, cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=None)
    assert process.stdout is not None
    result: dict[str, Any] | None = None
    try:
        while True:
            line = await asyncio.to_thread(process.stdout.readline)
            if not line:
                break
            try:
                message = json.loads(line)
            except ValueError:
                log(f"driver said: {line.decode(errors='replace').rstrip()}")
                continue
            if "mark" in message:
                on_mark(message)
            elif "result" in message:
                result = message["result"]
        await asyncio.to_thread(process.wait, 30)
    finally:
        stop(process)
    if result is None:
        raise RuntimeError(f"the {name} driver exited ({process.returncode}) without a result")
    if "error" in result:
        raise RuntimeError(f"the {name} driver failed: {result['error']}")
    return result
