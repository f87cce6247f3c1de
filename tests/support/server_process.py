"""`mtm-consult serve` as a separate process, as an operator runs it: for tests that kill it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServerProcess:
    base_url: str
    process: asyncio.subprocess.Process
    output: Path

    def lines(self) -> list[str]:
        return self.output.read_text(encoding="utf-8", errors="replace").splitlines()

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an out-of-memory kill."""
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()


@asynccontextmanager
async def serving(settings: dict[str, str], output: Path) -> AsyncIterator[ServerProcess]:
    """Run the server with `settings` (MTM_* environment variables) until it answers
    `/healthz`; stop it afterwards (SIGINT, a clean stop) unless the test killed it."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("MTM_")}
    env.update(settings, MTM_SERVER__PORT=str(port), PYTHONUNBUFFERED="1")
    with output.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.cli", "serve",
            env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    served = ServerProcess(f"http://127.0.0.1:{port}", process, output)
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            while True:
                assert process.returncode is None, "\n".join(served.lines()[-30:])
                try:
                    async with http.get(f"{served.base_url}/healthz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
