"""The browser's own panel store (web/static/panel-store.js) as a participant in Python
tests: a Node process (web/test/support/panel-driver.js) imports the store unchanged,
connects to the server with socket.io-client for Node, and takes commands as JSON lines.
Every sync rule a test sees (seq order, gap resync, reconnect snapshot, the offline queue,
"not saved yet" retries) is the browser's code, not a re-implementation."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

WEB = Path(__file__).resolve().parents[2] / "web"
DRIVER = WEB / "test" / "support" / "panel-driver.js"


class JsPanelClient:
    """One participant whose panel is the browser store. After each command, `entities`,
    `seq`, `queue`, `sent`, `results` and `not_saved` hold the store's state as it then is."""

    def __init__(self, base_url: str, token: str, *, retry_seconds: float = 0.5) -> None:
        self.base_url = base_url
        self.token = token
        self.retry_seconds = retry_seconds
        self._process: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self.seq = 0
        self.entities: dict[str, dict[str, Any]] = {}
        self.queue: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.not_saved: list[tuple[str, str]] = []
        self.connected = False
        self.self_id = ""

    async def _start(self) -> asyncio.subprocess.Process:
        if self._process is None:
            node = shutil.which("node")
            assert node, "Node is needed to run the browser's panel store"
            self._process = await asyncio.create_subprocess_exec(
                node,
                str(DRIVER),
                cwd=WEB,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=16 * 1024 * 1024,
            )
        return self._process

    async def _call(self, cmd: str, **args: Any) -> dict[str, Any]:
        async with self._lock:
            process = await self._start()
            assert process.stdin is not None and process.stdout is not None
            request_id = next(self._ids)
            line = json.dumps({"id": request_id, "cmd": cmd, **args}) + "\n"
            process.stdin.write(line.encode())
            await process.stdin.drain()
            raw = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            if not raw:
                raise RuntimeError(f"the panel driver exited (code {await process.wait()})")
            reply = json.loads(raw)
            assert reply["id"] == request_id, reply
            self._take(reply["state"])
            if not reply["ok"]:
                raise RuntimeError(f"panel driver, {cmd}: {reply['error']}")
            result: dict[str, Any] = reply["result"]
            return result

    def _take(self, state: dict[str, Any]) -> None:
        self.seq = state["seq"]
        self.entities = state["entities"]
        self.queue = state["queue"]
        self.sent = state["sent"]
        self.results = state["results"]
        self.not_saved = [(mutation_id, code) for mutation_id, code in state["not_saved"]]
        self.connected = state["connected"]
        self.self_id = state["self_id"]

    async def connect(self) -> None:
        """Join (the first time), or reconnect and join again; then the queue is sent."""
        await self._call(
            "connect",
            url=self.base_url,
            token=self.token,
            retry_ms=int(self.retry_seconds * 1000),
        )

    async def disconnect(self) -> None:
        if self._process is not None and self._process.returncode is None:
            await self._call("disconnect")

    async def close(self) -> None:
        """Disconnect and end the Node process."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), timeout=5)
            except TimeoutError:
                process.kill()
                await process.wait()
        self.connected = False

    async def set_field(self, entity_type: str, entity_id: str, field: str, value: Any) -> str:
        """store.setField: compare-and-set fields carry the version this store shows."""
        result = await self._call(
            "set", type=entity_type, entity_id=entity_id, field=field, value=value
        )
        return str(result["mutation_id"])

    async def add(self, entity_type: str, value: dict[str, Any]) -> str:
        result = await self._call("add", type=entity_type, value=value)
        return str(result["entity_id"])

    async def resend(self, mutation: dict[str, Any]) -> None:
        """Queue an already-sent mutation again (its acknowledgement was "lost")."""
        await self._call("resend", mutation=mutation)

    async def wait_for_seq(self, seq: int, timeout: float = 10.0) -> None:
        await self._call("wait_for_seq", seq=seq, timeout_ms=int(timeout * 1000))

    async def wait_until_sent(self, timeout: float = 30.0) -> None:
        await self._call("wait_until_sent", timeout_ms=int(timeout * 1000))

    async def refresh(self) -> None:
        """Read the store's state now (events arrive between commands)."""
        await self._call("state")

    def view(self) -> dict[str, Any]:
        return {"seq": self.seq, "entities": dict(sorted(self.entities.items()))}
