"""Installs are reproducible and proportionate: locks with hashes that match pyproject.toml,
and `scripts/setup.sh demo` (what `./run.sh demo` runs) installs the server only."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
import tomllib
from pathlib import Path

import aiohttp
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {
    "runtime": ROOT / "requirements" / "runtime.txt",
    "test": ROOT / "requirements" / "test.txt",
    "lint": ROOT / "requirements" / "lint.txt",
}
TOOLS = {"pytest", "pytest-asyncio", "playwright", "hypothesis", "ruff", "mypy", "types-pyyaml"}
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pins(lock: Path) -> dict[str, list[Version]]:
    """{package: [pinned versions]} (a universal lock may pin two, under markers)."""
    found: dict[str, list[Version]] = {}
    for line in lock.read_text().splitlines():
        match = PIN.match(line)
        if match:
            found.setdefault(canonicalize_name(match[1]), []).append(Version(match[2]))
    return found


def test_every_locked_package_has_hashes() -> None:
    for lock in [*LOCKS.values(), ROOT / "requirements" / "pip.txt"]:
        blocks = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text())
        for block in blocks:
            if PIN.match(block.splitlines()[0]):
                assert "--hash=sha256:" in block, (lock.name, block.splitlines()[0])


def test_locks_satisfy_pyproject_and_agree_with_each_other() -> None:
    """Fails when pyproject.toml changed without `./run.sh lock`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        "runtime": project["dependencies"],
        "test": project["dependencies"] + project["optional-dependencies"]["test"],
        "lint": project["dependencies"] + project["optional-dependencies"]["lint"],
    }
    locked = {name: pins(lock) for name, lock in LOCKS.items()}
    for name, requirements in wanted.items():
        for text in requirements:
            requirement = Requirement(text)
            versions = locked[name].get(canonicalize_name(requirement.name))
            assert versions, f"{requirement.name} is not in {LOCKS[name].name}: ./run.sh lock"
            for version in versions:
                assert requirement.specifier.contains(version, prereleases=True), (name, text)
    # One version of a package across locks: installing profiles one after another into one
    # .venv never moves a package back and forth.
    for package, versions in locked["runtime"].items():
        for other in ("test", "lint"):
            assert locked[other].get(package, versions) == versions, (package, other)
    assert not TOOLS & set(locked["runtime"]), TOOLS & set(locked["runtime"])


async def test_demo_profile_installs_the_server_and_no_test_or_lint_tool(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    env = {**os.environ, "MTM_VENV": str(venv)}

    async def setup() -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(ROOT / "scripts" / "setup.sh"),
            "demo",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 540)
        assert process.returncode is not None
        return process.returncode, output.decode(errors="replace")

    code, output = await setup()
    assert code == 0, output
    assert "--require-hashes" in output
    listed = await asyncio.create_subprocess_exec(
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "list",
        "--format=freeze",
        stdout=asyncio.subprocess.PIPE,
    )
    freeze, _ = await listed.communicate()
    installed = {
        canonicalize_name(line.split("==")[0]) for line in freeze.decode().splitlines() if line
    }
    assert {"aiohttp", "python-socketio", "prometheus-client", "mtm-consult"} <= installed
    # The installer is the pinned one (Python's bundled pip breaks on a dependency's extras).
    (pip_pin,) = pins(ROOT / "requirements" / "pip.txt")["pip"]
    assert f"pip=={pip_pin}" in freeze.decode().splitlines()
    assert not TOOLS & installed, TOOLS & installed
    runtime = set(pins(LOCKS["runtime"])) | {"mtm-consult", "pip"}
    assert installed <= runtime, installed - runtime
    help_run = await asyncio.create_subprocess_exec(
        str(venv / "bin" / "mtm-consult"), "--help", stdout=asyncio.subprocess.PIPE
    )
    usage, _ = await help_run.communicate()
    assert help_run.returncode == 0 and b"serve" in usage

    # And the server runs from it: it serves a page.
    port = free_port()
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("MTM_")}
    server_env.update(
        MTM_DATABASE__URL=f"sqlite+aiosqlite:///{tmp_path / 'demo.sqlite3'}",
        MTM_PATHS__VAR_DIR=str(tmp_path / "var"),
        MTM_SERVER__PORT=str(port),
    )
    serving = await asyncio.create_subprocess_exec(
        str(venv / "bin" / "mtm-consult"),
        "serve",
        env=server_env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            while True:
                assert serving.returncode is None, "the server stopped"
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
    finally:
        serving.terminate()
        await serving.wait()

    # Nothing changed: the second run is skipped by its stamp.
    started = time.monotonic()
    code, output = await setup()
    assert code == 0 and "installing" not in output, output
    assert time.monotonic() - started < 10


# WeasyPrint's system libraries and a font: the server renders PDF documents.
TEST_TOOLS = "chromium coturn nginx redis-server"
PDF_LIBRARIES = "libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core"


@pytest.mark.parametrize(
    ("profile", "lock", "debian"),
    [
        ("demo", "requirements/runtime.txt", PDF_LIBRARIES),
        ("lint", "requirements/lint.txt", ""),
        ("test", "requirements/test.txt", f"{TEST_TOOLS} {PDF_LIBRARIES} poppler-utils"),
        ("bench", "requirements/test.txt", f"{TEST_TOOLS} {PDF_LIBRARIES} poppler-utils"),
    ],
)
async def test_each_profile_plans_its_own_lock_and_debian_packages(
    profile: str, lock: str, debian: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        "bash",
        str(ROOT / "scripts" / "setup.sh"),
        "--plan",
        profile,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0
    plan = dict(line.split(": ", 1) for line in output.decode().splitlines())
    assert plan["lock"] == lock and plan["debian"] == debian, plan
