"""Shared machinery: child processes that always die with us, CPU pinning, /proc sampling,
percentiles, the machine's description, and starting the servers under test.

Every child process is started in a session of its own and registered here; `cleanup()`
kills each registered process group (SIGTERM, then SIGKILL). `run.py` calls it on exit,
on Ctrl-C and on SIGTERM. Children also get SIGKILL from the kernel if this process dies
(PR_SET_PDEATHSIG), so a `kill -9` of the orchestrator leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import datetime as dt
import hashlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
NODE_DIR = BENCH / "node"
VENV_BIN = ROOT / ".venv" / "bin"
LOOPBACK = "127.0.0.1"
API_KEY = "bench-key-0123456789abcdefghijkl"
# The server's settings for that key: its hash only (server/api_keys.py), and a rate limit
# no benchmark reaches (they create hundreds of consults at once).
API_SETTINGS: dict[str, Any] = {
    "keys": [
        {
            "clinic": "bench",
            "display_name": "Bench Clinic",
            "hash": "sha256:" + hashlib.sha256(API_KEY.encode()).hexdigest(),
        }
    ],
    "rate_limit_per_minute": 1_000_000,
    "rate_limit_burst": 1_000_000,
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def log(message: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[bench {stamp}] {message}", file=sys.stderr, flush=True)


# -- cores ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cores:
    """Which CPU the server under test and the load driver run on (None: not pinned)."""

    server: int | None
    driver: int | None

    @staticmethod
    def detect() -> Cores:
        available = sorted(os.sched_getaffinity(0))
        if len(available) >= 2:
            return Cores(server=available[0], driver=available[1])
        return Cores(server=None, driver=None)

    def describe(self) -> str:
        if self.server is None:
            return "not pinned (fewer than 2 cores)"
        return f"server on CPU {self.server}, load driver on CPU {self.driver}"


def taskset(core: int | None, command: Sequence[str]) -> list[str]:
    if core is None or shutil.which("taskset") is None:
        return list(command)
    return ["taskset", "-c", str(core), *command]


def pin(pid: int, core: int | None) -> None:
    if core is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {core})


# -- processes ------------------------------------------------------------------------------

_CHILDREN: list[subprocess.Popen[bytes]] = []


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def spawn(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: Any = subprocess.DEVNULL,
    stderr: Any = subprocess.DEVNULL,
    stdin: Any = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group, registered for `cleanup()`."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    process = subprocess.Popen(
        list(command),
        env=full_env,
        cwd=cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    _CHILDREN.append(process)
    return process


def spawn_logged(
    command: Sequence[str], log_path: Path, *, env: Mapping[str, str] | None, cwd: Path
) -> subprocess.Popen[bytes]:
    """`spawn` with stdout and stderr appended to `log_path`."""
    with open(log_path, "ab") as log_file:
        return spawn(command, env=env, cwd=cwd, stdout=log_file, stderr=log_file)


def stop(process: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    """SIGTERM the child's process group, SIGKILL after `grace` seconds."""
    if process is None:
        return
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    else:
        # The leader is gone; make sure nothing it started lingers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ValueError):
        _CHILDREN.remove(process)


def cleanup() -> None:
    for process in list(_CHILDREN):
        stop(process, grace=2.0)


def install_signal_handlers() -> None:
    """Ctrl-C and SIGTERM: kill every child, then exit."""

    def handler(signum: int, _frame: Any) -> None:
        cleanup()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def raise_open_files_limit() -> int:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# -- /proc sampling -------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kb(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) in KiB."""
    rss = peak = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1])
    return rss, peak


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def tree_cpu_seconds(pids: Iterable[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


@dataclass
class CpuWindow:
    """CPU use of some processes over a wall-clock window, as % of one core."""

    pids: list[int]
    started: float = 0.0
    cpu_start: float = 0.0
    percent: float = math.nan
    wall: float = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        self.cpu_start = tree_cpu_seconds(self.pids)

    def finish(self) -> float:
        self.wall = time.monotonic() - self.started
        used = tree_cpu_seconds(self.pids) - self.cpu_start
        self.percent = 100.0 * used / self.wall if self.wall > 0 else math.nan
        return self.percent


# -- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values; inf counts as inf."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def ratio(ours: float, peer: float) -> float:
    if not (math.isfinite(ours) and math.isfinite(peer)) or peer <= 0:
        return math.nan if not math.isinf(ours) else math.inf
    return ours / peer


# -- the machine ----------------------------------------------------------------------------


def _version(command: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(command), capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def _python_packages(names: Sequence[str]) -> dict[str, str]:
    from importlib import metadata

    found = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def _node_packages(names: Sequence[str]) -> dict[str, str]:
    found = {}
    for name in names:
        path = NODE_DIR / "node_modules" / name / "package.json"
        with contextlib.suppress(OSError, ValueError):
            found[name] = str(json.loads(path.read_text())["version"])
    return found


def _code_version() -> str:
    """The commit measured, and how many files outside bench/ and docs/ differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    changed = [
        line
        for line in status.splitlines()
        if not line[3:].startswith(("bench/", "docs/benchmarks.md"))
    ]
    if not changed:
        return f"commit {head}"
    files = "file" if len(changed) == 1 else "files"
    return f"commit {head} with {len(changed)} {files} changed and not yet committed"


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _version(["node", "--version"]),
        "chromium": _version(["/usr/bin/chromium", "--version"]),
        "coturn": _version(["/usr/bin/turnserver", "--version"]),
        "python_packages": _python_packages(
            [
                "python-socketio",
                "python-engineio",
                "aiohttp",
                "sqlalchemy",
                "aiosqlite",
                "asyncpg",
                "aiortc",
                "playwright",
                "uvloop",
            ]
        ),
        "node_packages": _node_packages(
            ["socket.io", "socket.io-client", "y-websocket", "yjs", "y-leveldb", "ws"]
        ),
        "load_average": os.getloadavg(),
        "code": _code_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# -- databases ------------------------------------------------------------------------------


@dataclass
class Database:
    """Where our server keeps its data for one benchmark: a SQLite file or a Postgres DB."""

    kind: str  # "sqlite" or "postgres"
    workdir: Path
    url: str = ""
    _pg_name: str | None = None
    _pg_admin: str = "postgresql://postgres@127.0.0.1:5432/postgres"

    @staticmethod
    async def create(kind: str, workdir: Path) -> Database:
        db = Database(kind=kind, workdir=workdir)
        if kind == "sqlite":
            db.url = f"sqlite+aiosqlite:///{workdir / 'bench.sqlite3'}"
        elif kind == "postgres":
            import asyncpg

            db._pg_name = f"mtm_bench_{secrets.token_hex(4)}"
            conn = await asyncpg.connect(db._pg_admin)
            try:
                await conn.execute(f'CREATE DATABASE "{db._pg_name}"')
            finally:
                await conn.close()
            db.url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db._pg_name}"
        else:
            raise ValueError(f"unknown database kind {kind!r}")
        return db

    async def drop(self) -> None:
        if self._pg_name is None:
            return
        import asyncpg

        conn = await asyncpg.connect(self._pg_admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')
        finally:
            await conn.close()
        self._pg_name = None


# -- servers under test ---------------------------------------------------------------------


@dataclass
class Server:
    """A running server process (ours or a peer) pinned to the server core."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def target_pid(self) -> int:
        """The process doing the work (taskset execs, so it is the same pid)."""
        return self.process.pid

    def log_problems(self, limit: int = 12) -> list[str]:
        """What looked wrong in the server's log: ERROR and WARNING lines and the exceptions
        of tracebacks, each distinct one once with how many times it occurred."""
        seen: collections.Counter[str] = collections.Counter()
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                line = line.strip()
                record = _json_log_record(line)
                if record is not None:  # our server's JSON lines (server/logs.py)
                    if record.get("level") in ("ERROR", "WARNING", "CRITICAL"):
                        exception = record.get("exception") or {}
                        text = f"{record['level']} {record.get('logger')}: {record.get('message')}"
                        if isinstance(exception, dict) and exception.get("type"):
                            text += f" [{exception['type']}]"
                        seen[text[:240]] += 1
                    continue
                level = re.search(r"\b(ERROR|WARNING|CRITICAL)\b (.*)", line)
                if level:
                    seen[f"{level[1]} {level[2]}"[:240]] += 1
                elif re.match(r"^[\w.]+(Error|Exception|Exit)\b.*:", line):
                    seen[line[:240]] += 1
        found = [f"{count}× {text}" if count > 1 else text for text, count in seen.most_common()]
        if len(found) > limit:
            found = found[:limit] + [f"... and {len(found) - limit} more distinct lines"]
        return found

    def pids(self) -> list[int]:
        """Every process whose CPU and memory count as the server's."""
        return [self.process.pid, *self.extra.get("pids", [])]

    def stop(self) -> None:
        for extra_stop in self.extra.get("stops", []):
            extra_stop()
        stop(self.process)


def _json_log_record(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


async def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the server exited with status {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status < 500:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
            await asyncio.sleep(0.1)


async def start_ours(
    workdir: Path,
    db: Database,
    cores: Cores,
    *,
    env: Mapping[str, str] | None = None,
    label: str = "ours",
) -> Server:
    port = free_port()
    log_path = workdir / f"{label}-{port}.log"
    server_env = {
        **{f"MTM_API__{name.upper()}": json.dumps(value) for name, value in API_SETTINGS.items()},
        "MTM_DATABASE__URL": db.url,
        "MTM_PATHS__VAR_DIR": str(workdir / "var"),
        "MTM_AUTH__TOKEN_SECRET": _token_secret(workdir),
        # The join benchmark reads the page's window.mtm.
        "MTM_TESTING__EXPOSE_HOOKS": "true",
        "PYTHONUNBUFFERED": "1",
    }
    if env:
        server_env.update(env)
    command = taskset(cores.server, [str(VENV_BIN / "mtm-consult"), "serve", "--port", str(port)])
    process = spawn_logged(command, log_path, env=server_env, cwd=workdir)
    server = Server(label, process, port, log_path, url=f"http://{LOOPBACK}:{port}")
    await wait_http(f"{server.url}/healthz", process)
    return server


async def start_cluster(
    workdir: Path,
    db: Database,
    cores: Cores,
    *,
    env: Mapping[str, str] | None = None,
    instances: int = 2,
) -> Server:
    """`instances` of ours sharing `db` and a Redis of their own, behind nginx running the
    repository's deploy/nginx.conf (TLS, routing by consult): the deployment of
    docs/deploy.md. All of it is pinned to the server core, so on this machine it measures
    what running several instances costs, not what it gains."""
    from tests.support.nginx import Nginx  # the one renderer of deploy/nginx.conf

    redis_port = free_port()
    redis = spawn_logged(
        taskset(cores.server, ["/usr/bin/redis-server", "--bind", LOOPBACK,
                               "--port", str(redis_port), "--save", "", "--appendonly", "no"]),
        workdir / f"redis-{redis_port}.log",
        env=None,
        cwd=workdir,
    )  # fmt: skip
    await wait_tcp(redis_port, redis)
    cluster_env = {**(env or {}), "MTM_REDIS__URL": f"redis://{LOOPBACK}:{redis_port}/0"}
    servers = []
    for index in range(instances):  # one after the other: the first migrates the database
        servers.append(
            await start_ours(workdir, db, cores, env=cluster_env, label=f"ours-{index + 1}")
        )
    nginx = Nginx([f"{LOOPBACK}:{server.port}" for server in servers])
    nginx.start()
    assert nginx.pid is not None
    pin(nginx.pid, cores.server)
    first, *others = servers
    first.name = f"ours-{instances}x"
    first.url = nginx.url
    first.extra["pids"] = [*(server.process.pid for server in others), nginx.pid, redis.pid]
    first.extra["stops"] = [nginx.close, *(server.stop for server in others),
                            lambda: stop(redis)]  # fmt: skip
    first.extra["logs"] = [server.log_path for server in others]
    return first


async def wait_tcp(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            socket.create_connection((LOOPBACK, port), timeout=0.5).close()
            return
        if process.poll() is not None:
            raise RuntimeError(f"port {port}: the process exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listened on port {port} within {timeout:.0f} s")
        await asyncio.sleep(0.05)


def _token_secret(workdir: Path) -> str:
    path = workdir / "token_secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text()


async def start_node(
    workdir: Path,
    cores: Cores,
    name: str,
    script: Sequence[str],
    env: Mapping[str, str],
    port: int,
) -> Server:
    log_path = workdir / f"{name}-{port}.log"
    command = taskset(cores.server, ["node", *script])
    process = spawn_logged(command, log_path, env=env, cwd=NODE_DIR)
    server = Server(name, process, port, log_path, url=f"http://{LOOPBACK}:{port}")
    await wait_http(server.url, process, timeout=30)
    return server


async def start_yjs(workdir: Path, cores: Cores) -> Server:
    """y-websocket 1.5.4's reference server (bin/server.js) with y-leveldb persistence."""
    port = free_port()
    store = workdir / f"yjs-leveldb-{port}"
    env = {"HOST": LOOPBACK, "PORT": str(port), "YPERSISTENCE": str(store)}
    script = ["node_modules/y-websocket/bin/server.js"]
    server = await start_node(workdir, cores, "yjs", script, env, port)
    server.url = f"ws://{LOOPBACK}:{port}"
    return server


async def start_sio_peer(workdir: Path, cores: Cores, ping_interval: float) -> Server:
    """The minimal Node Socket.IO 4 server in bench/node/sio_server.js."""
    port = free_port()
    env = {"PORT": str(port), "HOST": LOOPBACK, "PING_INTERVAL_MS": str(int(ping_interval * 1000))}
    return await start_node(workdir, cores, "socketio", ["sio_server.js"], env, port)


async def start_sio_floor(workdir: Path, cores: Cores, ping_interval: float) -> Server:
    """bench/sio_floor.py: the Node peer's rooms and join on our own Python stack."""
    port = free_port()
    log_path = workdir / f"sio-floor-{port}.log"
    command = taskset(
        cores.server,
        [
            str(VENV_BIN / "python"),
            "-m",
            "bench.sio_floor",
            "--port",
            str(port),
            "--ping-interval",
            str(ping_interval),
        ],
    )
    process = spawn_logged(command, log_path, env={"PYTHONUNBUFFERED": "1"}, cwd=ROOT)
    server = Server("sio-floor", process, port, log_path, url=f"http://{LOOPBACK}:{port}")
    await wait_http(server.url, process, timeout=30)
    return server


# -- consults -------------------------------------------------------------------------------

MEDICATIONS = [
    {
        "name": "Metformin",
        "strength": "500 mg",
        "form": "tablet",
        "how_taken": "1 tablet twice a day with meals",
        "why": "type 2 diabetes",
    },
    {
        "name": "Lisinopril",
        "strength": "10 mg",
        "form": "tablet",
        "how_taken": "1 tablet every morning",
        "why": "blood pressure",
    },
    {
        "name": "Atorvastatin",
        "strength": "20 mg",
        "form": "tablet",
        "how_taken": "1 tablet at bedtime",
        "why": "cholesterol",
    },
    {
        "name": "Aspirin",
        "strength": "81 mg",
        "form": "tablet",
        "kind": "otc",
        "how_taken": "1 tablet daily",
        "why": "heart protection",
    },
    {
        "name": "Vitamin D3",
        "strength": "1000 IU",
        "form": "capsule",
        "kind": "vitamin",
        "how_taken": "1 capsule daily",
    },
]


@dataclass(frozen=True)
class ConsultLinks:
    consult_id: str
    tokens: dict[str, str]  # role -> join token
    medication_id: str  # the medication the benchmarks edit


async def create_consults(
    base_url: str,
    count: int,
    *,
    concurrency: int = 8,
    timeout: float = 240.0,
    problems: list[str] | None = None,
) -> list[ConsultLinks]:
    """`count` consults through the REST API, `concurrency` requests at a time.

    A 5xx answer is retried (up to 3 attempts) and noted in `problems`: creating consults
    is set-up, not what is measured, but a server that fails it is worth reporting.
    """
    semaphore = asyncio.Semaphore(concurrency)
    scheduled = dt.datetime.now(dt.UTC).isoformat()
    failures: list[str] = []

    async def one(http: aiohttp.ClientSession, index: int) -> ConsultLinks:
        body = {
            "patient_name": f"Bench Patient {index}",
            "scheduled_at": scheduled,
            "medications": MEDICATIONS,
        }
        for attempt in range(3):
            async with semaphore:
                async with http.post(
                    f"{base_url}/api/v1/consults", json=body, headers={"X-API-Key": API_KEY}
                ) as response:
                    data = await response.json()
                    status = response.status
            if status == 201:
                break
            failures.append(f"{status} {data.get('error', {}).get('code')}")
            if status < 500 or attempt == 2:
                raise RuntimeError(f"creating a consult: {status} {data}")
        tokens = {role: link.rsplit("/c/", 1)[1] for role, link in data["links"].items()}
        return ConsultLinks(data["id"], tokens, data["medications"][0]["id"])

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        async with asyncio.timeout(timeout):
            created = list(await asyncio.gather(*(one(http, i) for i in range(count))))
    if failures and problems is not None:
        problems.append(
            f"REST create ({concurrency} concurrent requests): {len(failures)} answers "
            f"were errors and were retried: {sorted(set(failures))}"
        )
    return created


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="mtm-bench-"))
