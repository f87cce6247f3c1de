"""Child processes that report in JSON lines: the Node load driver (bench/node/driver.js)
and the synthetic-participant process (bench/bots.py).

Each prints `{"mark": ...}` lines while it runs (the orchestrator samples the server's CPU
and memory when a measured window starts and ends) and a last `{"result": ...}` line.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import NODE_DIR, ROOT, Cores, log, spawn, stop, taskset

MarkHandler = Callable[[dict[str, Any]], None]


async def run_marked(
    command: Sequence[str], cwd: Path, on_mark: MarkHandler, *, name: str
) -> dict[str, Any]:
    """Run `command`; call `on_mark` for each mark line as it arrives; return the result."""
    process = spawn(command, cwd=cwd, stdout=subprocess.PIPE, stderr=None)
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
                log(f"{name} said: {line.decode(errors='replace').rstrip()}")
                continue
            if "mark" in message:
                on_mark(message)
            elif "result" in message:
                result = message["result"]
        await asyncio.to_thread(process.wait, 30)
    finally:
        stop(process)
    if result is None:
        raise RuntimeError(f"{name} exited ({process.returncode}) without a result")
    if "error" in result:
        raise RuntimeError(f"{name} failed: {result['error']}")
    return result


async def run_driver(
    workdir: Path, cores: Cores, config: dict[str, Any], on_mark: MarkHandler, *, name: str
) -> dict[str, Any]:
    """The Node driver with `config`, pinned to the driver core."""
    config_path = workdir / f"driver-{name}.json"
    config_path.write_text(json.dumps(config))
    command = taskset(
        cores.driver, ["node", "--max-old-space-size=4096", "driver.js", str(config_path)]
    )
    return await run_marked(command, NODE_DIR, on_mark, name=f"driver {name}")


def python_module(module: str, *args: str) -> list[str]:
    return [str(ROOT / ".venv" / "bin" / "python"), "-m", module, *args]
