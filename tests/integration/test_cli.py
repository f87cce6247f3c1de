"""The `mtm-consult` command, run as a user would: a subprocess with its own settings."""

from __future__ import annotations

import asyncio
import os
import re
import signal
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


PORTAL_LINE = re.compile(r"^\s+(http://localhost:(\d+))/#link=(http://\S+/c/\S+)$", re.MULTILINE)


async def test_serve_demo_serves_the_example_portal_allowed_to_embed_the_call(
    tmp_path: Path,
) -> None:
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
            while not PORTAL_LINE.search(printed):
                line = await process.stdout.readline()
                assert line, "the server stopped before printing the portal's address"
                printed += line.decode()
        match = PORTAL_LINE.search(printed)
        assert match is not None
        portal, portal_port, link = match.groups()
        assert int(portal_port) != port
        assert link == dict(LINK.findall(printed))["pharmacist"]
        call_origin = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            # The portal (another origin: localhost, its own port) loads the SDK from the call.
            async with http.get(f"http://127.0.0.1:{portal_port}/") as page:
                assert page.status == 200
                assert '<script type="module" src="host.js"></script>' in await page.text()
                policy = page.headers["Content-Security-Policy"]
                assert f"frame-src {call_origin}" in policy
                assert f"script-src 'self' {call_origin}" in policy
                assert f'camera=(self "{call_origin}")' in page.headers["Permissions-Policy"]
            # The call lets that portal, and only it, frame the demo's embed page.
            async with http.get(link.replace("/c/", "/embed/")) as embed:
                assert embed.status == 200
                assert f"frame-ancestors {portal};" in embed.headers["Content-Security-Policy"]
            async with http.get(link) as page:
                assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


KEY_LINE = re.compile(r"^  (mtm_\S+)$", re.MULTILINE)
ENTRY_LINE = re.compile(r"^  (- \{.*\})$", re.MULTILINE)


async def test_api_key_create_prints_a_key_the_server_then_accepts(tmp_path: Path) -> None:
    code, out, _ = await run(
        tmp_path, "api-key", "create", "--name", "north", "--display-name", "North: 'Main' St"
    )
    assert code == 0, out
    [key] = KEY_LINE.findall(out)
    [entry] = ENTRY_LINE.findall(out)
    assert key not in entry
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"api:\n  keys:\n    {entry}\n")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "--config", str(settings), "serve", "--port", str(port),
        env=environment(tmp_path, port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        async with asyncio.timeout(60):
            while b"listening" not in await process.stdout.readline():
                pass
        url = f"http://127.0.0.1:{port}/api/v1/consults"
        body = {
            "patient_name": "Maria Lopez",
            "scheduled_at": "2026-12-01T09:30:00-05:00",
            "medications": [{"name": "Metformin"}],
        }
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=body, headers={"X-API-Key": key}) as response:
                assert response.status == 201
                consult = await response.json()
            async with http.post(url, json=body, headers={"X-API-Key": key[:-1]}) as response:
                assert response.status == 401
        assert consult["medications"][0]["updated_by"]["name"] == "North: 'Main' St"
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


async def test_api_key_create_makes_a_new_key_each_time(tmp_path: Path) -> None:
    outputs = [await run(tmp_path, "api-key", "create", "--name", "north") for _ in range(2)]
    keys = {KEY_LINE.findall(out)[0] for _, out, _ in outputs}
    assert len(keys) == 2


async def test_plain_text_keys_stop_start_up_naming_the_setting_and_the_command(
    tmp_path: Path,
) -> None:
    plain = "a-plain-text-key-0123456789abcdef"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "serve",
        env={**environment(tmp_path), "MTM_API__KEYS": f'{{"north": "{plain}"}}'},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    message = err.decode()
    assert "api.keys" in message and "mtm-consult api-key create" in message
    assert plain not in message and plain not in out.decode()


async def test_sighup_rotates_api_keys_without_a_restart(tmp_path: Path) -> None:
    """Rotation: add the new key, SIGHUP, move clients, remove the old key, SIGHUP; the
    process never stops, and settings that do not load leave the keys as they were."""
    entries, keys = [], []
    for _ in range(2):
        code, out, _ = await run(tmp_path, "api-key", "create", "--name", "north")
        assert code == 0, out
        keys.append(KEY_LINE.findall(out)[0])
        entries.append(ENTRY_LINE.findall(out)[0])
    settings = tmp_path / "settings.yaml"

    def write_keys(*chosen: str) -> None:
        lines = "".join(f"    {entry}\n" for entry in chosen)
        settings.write_text(f"api:\n  keys:\n{lines}")

    write_keys(entries[0])
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "--config", str(settings), "serve", "--port", str(port),
        env=environment(tmp_path, port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/v1/consults"
    body = {"patient_name": "Maria Lopez", "scheduled_at": "2026-12-01T09:30:00-05:00"}

    async def statuses(http: aiohttp.ClientSession) -> list[int]:
        answers = []
        for key in keys:
            async with http.post(url, json=body, headers={"X-API-Key": key}) as response:
                answers.append(response.status)
        return answers

    async def reload_and_wait(http: aiohttp.ClientSession, expected: list[int]) -> None:
        process.send_signal(signal.SIGHUP)
        async with asyncio.timeout(10):
            while await statuses(http) != expected:
                await asyncio.sleep(0.1)

    try:
        assert process.stdout is not None
        async with asyncio.timeout(60):
            while b"listening" not in await process.stdout.readline():
                pass
        async with aiohttp.ClientSession() as http:
            assert await statuses(http) == [201, 401]
            write_keys(entries[0], entries[1])
            await reload_and_wait(http, [201, 201])  # both valid while clients move
            write_keys(entries[1])
            await reload_and_wait(http, [401, 201])  # the old one retired
            settings.write_text("api:\n  keys: not-a-list\n")
            process.send_signal(signal.SIGHUP)
            await asyncio.sleep(1)
            assert await statuses(http) == [401, 201]
        assert process.returncode is None
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
