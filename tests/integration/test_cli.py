"""The `mtm-consult` command, run as a user would: a subprocess with its own settings."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from pathlib import Path

import aiohttp

LINK = re.compile(r"^\s+(pharmacist|clinician|patient)\s+(http://\S+/c/\S+)$", re.MULTILINE)


def environment(tmp_path: Path, port: int = 0) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTM_")}
    env.update(
        MTM_DATABASE__URL=f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}",
        MTM_PATHS__VAR_DIR=str(tmp_path / "var"),
        MTM_SERVER__PORT=str(port),
    )
    return env


async def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        *args,
        env=environment(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_db_upgrade_then_consult_create_prints_three_links(tmp_path: Path) -> None:
    code, out, _ = await run(tmp_path, "db", "upgrade")
    assert code == 0 and "latest schema" in out
    code, out, _ = await run(
        tmp_path, "consult", "create", "--patient-name", "Maria Lopez",
        "--scheduled-at", "2026-12-01T09:30:00-05:00",
    )  # fmt: skip
    assert code == 0, out
    assert {role for role, _ in LINK.findall(out)} == {"pharmacist", "clinician", "patient"}
    assert (tmp_path / "var" / "token_secret").stat().st_mode & 0o077 == 0


async def test_bad_setting_stops_start_up_with_the_key_named(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "serve",
        env={**environment(tmp_path), "MTM_ICE__TRANSPORT_POLICY": "sometimes"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "ice.transport_policy" in err.decode() and "'relay'" in err.decode()
    code, _, err_text = await run(tmp_path, "consult", "create", "--scheduled-at", "tomorrow")
    assert code == 2 and "--scheduled-at" in err_text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_serve_demo_prints_links_that_open_the_call(tmp_path: Path) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "serve", "--demo", "--port", str(port),
        env=environment(tmp_path, port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        printed = ""
        async with asyncio.timeout(60):
            while len(LINK.findall(printed)) < 3:
                line = await process.stdout.readline()
                assert line, "the server stopped before printing the links"
                printed += line.decode()
        links = dict(LINK.findall(printed))
        async with aiohttp.ClientSession() as http:
            for link in links.values():
                async with http.get(link) as page:
                    assert page.status == 200
                    assert "Join" in await page.text()
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
