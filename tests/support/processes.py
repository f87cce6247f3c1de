"""Server instances as real processes (`python -m server.cli serve`), for faults that only a
process can suffer: `kill -9` in the middle of a consult.

Each test gets a throw-away Postgres database (not a schema: a separate process cannot be
told a schema), dropped at the end.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from tests.support.coturn import _die_with_parent
from tests.support.redis_server import free_tcp_port

ROOT = Path(__file__).resolve().parents[2]
_INSTANCE_LINE = re.compile(r"instance (i_[0-9a-f]+) started")


class ProcessError(RuntimeError):
    pass


class ThrowawayDatabase:
    """`CREATE DATABASE` on the test server, `DROP DATABASE ... WITH (FORCE)` after."""

    def __init__(self, server_url: str) -> None:
        self.name = f"mtm_t_{secrets.token_hex(6)}"
        base, _, _ = server_url.rpartition("/")
        self.url = f"{base}/{self.name}"
        self._admin_dsn = server_url.replace("postgresql+asyncpg://", "postgresql://")

    async def create(self) -> None:
        connection = await asyncpg.connect(self._admin_dsn)
        try:
            await connection.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await connection.close()

    async def drop(self) -> None:
        connection = await asyncpg.connect(self._admin_dsn)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await connection.close()

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(
            self.url.replace("postgresql+asyncpg://", "postgresql://")
        )
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()


class ServerProcess:
    """One `serve` process on a free loopback port, configured by a YAML file of its own."""

    def __init__(self, settings: dict[str, dict[str, Any]]) -> None:
        self.port = free_tcp_port()
        self._workdir = Path(tempfile.mkdtemp(prefix="mtm-serve-"))
        settings = {**settings, "paths": {"var_dir": str(self._workdir / "var")}}
        settings["server"] = {**settings.get("server", {}), "uvloop": False}
        self.config_path = self._workdir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(settings))
        self.log_path = self._workdir / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable, "-m", "server.cli", "--config", str(self.config_path),
                    "serve", "--host", "127.0.0.1", "--port", str(self.port),
                ],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return
            if self._process.poll() is not None:
                raise ProcessError(f"serve exited with {self._process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise ProcessError(f"serve did not answer in time:\n{self.log()}")
            time.sleep(0.1)

    def instance(self) -> str:
        """This process's instance id in the cluster (it logs it when it starts)."""
        found = _INSTANCE_LINE.search(self.log())
        if found is None:
            raise ProcessError(f"no instance id in the log:\n{self.log()}")
        return found.group(1)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def kill(self) -> None:
        """`kill -9`: no clean-up, no goodbye to Redis or the clients."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
