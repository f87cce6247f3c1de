"""Run the MTM Consult benchmarks, print the tables, write docs/benchmarks.md.

    .venv/bin/python -m bench.run [--quick] [--db sqlite|postgres|both] [--docs | --no-docs]
                                  [BENCHMARK ...]
    .venv/bin/python -m bench.run --render bench/results/latest.json

BENCHMARK: fanout, ramp, join, capacity, synthetic, profile, flood, documents (default: all
of them).
`./run.sh bench ...` runs this after scripts/setup.sh. See bench/README.md.

--db both (the default) measures our server on SQLite and on a throw-away Postgres
database (127.0.0.1:5432) in fanout, ramp and profile; without Postgres it falls back to
SQLite. The orchestrator pins itself (and so Chromium and the helpers it starts) to the load
driver's core; every server under test is started with `taskset` on the other core.
docs/benchmarks.md is written after a full run (all benchmarks, not --quick) or with
--docs; the raw figures go to bench/results/latest.json either way, and --render rewrites
the Markdown from such a file (hand-written notes in it are kept).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import capacity, documents, fanout, flood, join, profile, synthetic_cost
from bench.common import (
    BENCH,
    NODE_DIR,
    ROOT,
    VENV_BIN,
    ConsultLinks,
    Cores,
    Database,
    cleanup,
    create_consults,
    install_signal_handlers,
    log,
    machine,
    make_workdir,
    pin,
    raise_open_files_limit,
    start_ours,
)
from bench.report import RENDERERS, Table

ALL = ["fanout", "ramp", "join", "capacity", "synthetic", "profile", "flood", "documents"]
DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = BENCH / "results" / "latest.json"
NOTES_START = "<!-- notes: kept when this file is regenerated -->"
NOTES_END = "<!-- /notes -->"


# -- dependencies -------------------------------------------------------------------------


def _stamped(stamp: Path, source: Path, action: Callable[[], None]) -> None:
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == digest:
        return
    action()
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest + "\n")


def ensure_dependencies() -> None:
    """`npm ci` in bench/node and `pip install -r bench/requirements.txt`, when changed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("bench: node and npm are needed (Debian: apt-get install nodejs npm)")

    def npm_ci() -> None:
        log("installing bench/node dependencies (npm ci)")
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR, check=True
        )

    def pip_install() -> None:
        log("installing bench/requirements.txt into .venv")
        subprocess.run(
            [
                str(VENV_BIN / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
                str(BENCH / "requirements.txt"),
            ],
            check=True,
        )

    _stamped(
        NODE_DIR / "node_modules" / ".bench-lock.sha256", NODE_DIR / "package-lock.json", npm_ci
    )
    _stamped(ROOT / ".venv" / ".bench-requirements.sha256", BENCH / "requirements.txt", pip_install)


# -- settings -----------------------------------------------------------------------------


def settings_for(quick: bool, db: str) -> dict[str, Any]:
    """`db`: the database of the benchmarks that use one only (join, synthetic)."""
    if quick:
        return {
            "fanout": fanout.FanoutSettings(
                sizes=[50, 200], duration_s=4, warmup_s=1, drain_s=3, ramp_rates=[]
            ),
            "ramp": fanout.FanoutSettings(
                sizes=[],
                ramp_rooms=200,
                ramp_rates=[50, 100, 200, 400, 800],
                ramp_step_s=3,
                drain_s=3,
            ),
            "join": join.JoinSettings(runs=3, db=db),
            "capacity": capacity.CapacitySettings(levels=[300, 900], idle_s=6, settle_s=2),
            "synthetic": synthetic_cost.SyntheticSettings(bot_counts=[1, 2], window_s=6, db=db),
            "profile": profile.ProfileSettings(edits=20, rooms=100, duration_s=5),
            "flood": flood.FloodSettings(rooms=50, duration_s=3, warmup_s=1),
            "documents": documents.DocumentBenchSettings(runs=5),
        }
    return {
        "fanout": fanout.FanoutSettings(ramp_rates=[]),
        "ramp": fanout.FanoutSettings(sizes=[]),
        "join": join.JoinSettings(db=db),
        "capacity": capacity.CapacitySettings(),
        "synthetic": synthetic_cost.SyntheticSettings(db=db),
        "profile": profile.ProfileSettings(rooms=150),
        "flood": flood.FloodSettings(),
        "documents": documents.DocumentBenchSettings(),
    }


# -- our server's data, shared by fanout, ramp, capacity and profile --------------------


class OurData:
    """One database with enough consults for every benchmark that needs them, made once."""

    def __init__(self, workdir: Path, cores: Cores, kind: str) -> None:
        self.workdir = workdir
        self.cores = cores
        self.kind = kind
        self.db: Database | None = None
        self.consults: list[ConsultLinks] = []
        self.problems: list[str] = []

    async def ensure(self, count: int) -> tuple[Database, list[ConsultLinks]]:
        if self.db is None:
            self.db = await Database.create(self.kind, self.workdir)
        if len(self.consults) < count:
            server = await start_ours(self.workdir, self.db, self.cores, label="ours-setup")
            try:
                missing = count - len(self.consults)
                log(f"creating {missing} consults through the REST API")
                started = time.monotonic()
                self.consults += await create_consults(server.url, missing, problems=self.problems)
                log(f"created in {time.monotonic() - started:.1f} s")
            finally:
                server.stop()
                self.problems.extend(
                    f"ours (REST set-up): {line}" for line in server.log_problems()
                )
        return self.db, self.consults

    async def close(self) -> None:
        if self.db is not None:
            await self.db.drop()


# -- running ------------------------------------------------------------------------------


async def run_all(
    names: list[str], quick: bool, kinds: list[str], workdir: Path, cores: Cores
) -> dict[str, Any]:
    """`kinds`: our server's databases; fanout, ramp and profile run ours on each, the
    others on the first."""
    settings = settings_for(quick, kinds[0])
    data = {kind: OurData(workdir, cores, kind) for kind in kinds}
    results: dict[str, Any] = {}

    def needed(name: str) -> int:
        if name == "fanout":
            return max(settings["fanout"].sizes or [0])
        if name == "ramp":
            return int(settings["ramp"].ramp_rooms)
        if name == "capacity":
            return capacity.rooms_needed(settings["capacity"])
        if name == "profile":
            return int(settings["profile"].rooms)
        if name == "flood":
            return flood.rooms_needed(settings["flood"])
        return 0

    largest = max((needed(n) for n in names), default=0)

    async def everywhere() -> dict[str, tuple[Database, list[ConsultLinks]]]:
        return {kind: await data[kind].ensure(largest) for kind in kinds}

    async def fanout_run() -> dict[str, Any]:
        return await fanout.run(workdir, cores, settings["fanout"], await everywhere())

    async def ramp_run() -> dict[str, Any]:
        return await fanout.run(workdir, cores, settings["ramp"], await everywhere())

    async def capacity_run() -> dict[str, Any]:
        db, consults = await data[kinds[0]].ensure(largest)
        return await capacity.run(workdir, cores, settings["capacity"], db, consults)

    async def profile_run() -> dict[str, Any]:
        by_db = {}
        problems: list[str] = []
        for kind, (db, consults) in (await everywhere()).items():
            by_db[kind] = await profile.run(workdir, cores, settings["profile"], db, consults)
            problems += by_db[kind]["problems"]
        return {"by_db": by_db, "problems": problems}

    async def flood_run() -> dict[str, Any]:
        db, consults = await data[kinds[0]].ensure(largest)
        return await flood.run(workdir, cores, settings["flood"], db, consults)

    runners: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "fanout": fanout_run,
        "ramp": ramp_run,
        "join": lambda: join.run(workdir, cores, settings["join"]),
        "capacity": capacity_run,
        "synthetic": lambda: synthetic_cost.run(workdir, cores, settings["synthetic"]),
        "profile": profile_run,
        "flood": flood_run,
        "documents": lambda: documents.run(workdir, cores, settings["documents"]),
    }
    try:
        for name in names:
            log(f"=== {name} ===")
            started = time.monotonic()
            try:
                results[name] = await runners[name]()
            except Exception as exc:  # one broken benchmark must not hide the others
                log(f"{name} failed: {type(exc).__name__}: {exc}")
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            results[name]["elapsed_s"] = time.monotonic() - started
            log(f"{name} took {results[name]['elapsed_s']:.0f} s")
            for table in _tables(name, results[name]):
                print("\n" + table.text() + "\n", flush=True)
    finally:
        for entry in data.values():
            await entry.close()
    setup = [p for entry in data.values() for p in entry.problems]
    if setup:
        results["setup_problems"] = setup
    return results


async def postgres_available() -> bool:
    try:
        import asyncpg

        conn = await asyncio.wait_for(
            asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres"), 5
        )
        await conn.close()
        return True
    except Exception:  # any failure (refused, timed out, no such role): no Postgres
        return False


def _tables(name: str, result: dict[str, Any]) -> list[Table]:
    if "error" in result:
        return [Table(f"{name}: FAILED — {result['error']}", ["-"])]
    return RENDERERS[name](result)


# -- docs/benchmarks.md -------------------------------------------------------------------

METHOD = {
    "fanout": (
        "## 1. Edit fan-out\n\n"
        "C consults, three connected participants each; one participant per consult edits "
        "at 2 edits/s, the consults' phases spread evenly over the half-second period. One "
        "Node driver (bench/node/driver.js) drives every server with the same logic. Ours: a "
        "`mutate` `set` of a medication's `patient_note` (last writer wins, seen by all three) "
        "with a 120-byte value; "
        "ack = the `mutate` acknowledgement; arrival = `panel-event` at each of the two other "
        "participants. Every edit is validated, committed with its audit row, then "
        "broadcast. y-websocket: the Yjs reference server (y-websocket 1.5.4 `bin/server.js`, "
        "`YPERSISTENCE` with y-leveldb 0.1), three `WebsocketProvider`s per document with "
        "`disableBc: true`, each edit a `Y.Map` set of a 120-byte value; arrival = the other "
        "two maps observing it. It persists asynchronously and validates nothing. socket.io "
        "relay: bench/node/sio_server.js, the same events relayed by a bare Socket.IO 4 "
        "server with nothing stored: a floor. Each (server, C) gets a fresh server process; "
        "server CPU is measured over the window; peak RSS is the process's VmHWM. "
        "Ours, 2 instances: two of our processes sharing one Postgres database and a Redis, "
        "behind nginx running deploy/nginx.conf (TLS, routing by consult id), all pinned to "
        "the server core, so on this machine the row measures what the deployment of "
        "docs/deploy.md costs, not what it gains; its CPU and memory are those of the two "
        "instances, nginx and Redis together."
    ),
    "ramp": (
        "## 1b. Sustained edit rate\n\n"
        "The same driver and servers, with the largest C connected, the total edit rate "
        "raised step by step (2 edits/s per editing consult up to C consults, then faster "
        "per consult) until arrival p99 passes the limit or a message is late. Sustained = "
        "the highest delivered rate of a step that stayed under it."
    ),
    "join": (
        "## 2. Join time\n\n"
        "Three headless Chromium pages (Debian chromium through Playwright, one browser, a "
        "context each, fake camera and microphone) open the pharmacist's, clinician's and "
        "patient's links of a fresh consult at the same moment; Join is clicked as soon as "
        "each page's load event has fired (the click is part of the time; no typing). Time = "
        "from the page's navigation start (`performance.timeOrigin`) to the first "
        "`window.mtm.stats()` entry with `framesDecoded > 0`, polled in the page every 10 ms. "
        "Relay only, through coturn on 127.0.0.1. The patient was admitted once beforehand "
        "(consent, admission by the pharmacist) and rejoins within the grace period, so all "
        "three go straight into the call. The limit, measured in the same run and browser: "
        "two pages of a blank local page with the same camera constraints, one bare "
        "`RTCPeerConnection` between them through the same coturn (relay only), offer and "
        "answer with all candidates carried between the pages by the driver; no server. The "
        "mesh limit, in the same run: three such pages, each with one bare connection to "
        "each of the two others, all connected at once: the call's six encoders and decoders "
        "on the same browser core, without a server."
    ),
    "capacity": (
        "## 3. Capacity: idle participants\n\n"
        "Rooms of three (the patient consents and is admitted, as in a real consult) are "
        "connected in batches of 25 rooms until 1,000 and then 3,000 participants are in, "
        "then left idle. Every server pings every connection every 5 s (Engine.IO heartbeat; "
        "`MTM_SIGNALING__PING_INTERVAL=5` for ours) so the idle window holds several pings "
        "each. Peer: bench/node/sio_server.js, a minimal Node Socket.IO 4 server holding the "
        "same rooms with the same `join` (no database). Floor: bench/sio_floor.py, the same "
        "peer on the Python libraries ours runs on (python-socketio on aiohttp, uvloop, the "
        "same JSON module), so that ours against the Node peer splits into what the Python "
        "stack costs before our code runs and what our join adds (its patient waits and is "
        "admitted; the peers' patients join straight in)."
    ),
    "synthetic": (
        "## 4. Synthetic participant cost\n\n"
        "k consults, each with one Chromium page (pharmacist, fake camera at 640x360) and "
        "one `SyntheticParticipant` from media/synthetic.py (clinician; it joins first "
        "and answers its page's offer). All k bots run in one Python process "
        "with a core to itself; the server, coturn and Chromium share the other core. CPU "
        "of the bots' process (all threads) over the window once every bot decodes frames."
    ),
    "profile": (
        "## 5. Where an edit's time goes\n\n"
        "Statements per edit are counted with SQLAlchemy event listeners on the real app "
        "run in-process (two participants joined over Socket.IO, sequential `mutate`s). The "
        "profile is `py-spy record --threads --nonblocking` of the server process (on its "
        "own core) while the fan-out driver offers the rate shown. With SQLAlchemy's "
        "asyncio layer, statements run in greenlets whose stacks py-spy shows apart from "
        "the event loop's, so inclusive shares of the loop's own frames understate the ORM; "
        "the self-time split by library is the robust figure. Shares are of the samples in "
        "which the event-loop thread ran Python code: samples inside the loop itself (the "
        "`epoll` wait, or uvloop's C run loop, which py-spy cannot see into) are left out "
        "and given separately."
    ),
    "flood": (
        "## 6. One abusive client\n\n"
        "C consults edit as in the fan-out benchmark (Node driver, one editor per consult "
        "at 2 edits/s) while one more consult's pharmacist, a raw Socket.IO client "
        "(bench/flooder.py, niced on the driver's core), sends `panel-sync` as fast as the "
        "server answers, 64 acknowledgements in flight. Three fresh servers: no flood; the "
        "flood with the default limits (`signaling.events_per_second` 20, `event_burst` "
        "100: beyond them an event is answered `rate_limited` without being handled); the "
        "flood with the limits lifted. Ours on the first database of the run."
    ),
    "documents": (
        "## 7. Documents: the PDF of a 20-medication consult\n\n"
        "The patient's summary (CMS Standardized Format: cover letter, Medication Action "
        "Plan, Personal Medication List) of a consult with 20 medications (4 stopped), 3 "
        "problems, 3 recommendations and 3 plan items. Ours through the REST API: `GET "
        "…/documents/summary.pdf` on our app in the orchestrator's process (SQLite): the "
        "change log replayed to the end's seq, the HTML made, the PDF rendered by the app's "
        "WeasyPrint worker process on the server's core, its PDF cache cleared before each "
        "request. Also the same HTML to PDF through the worker and in process. Peers in the "
        "same run: the HTML alone, and WeasyPrint on a blank page through the same worker "
        "(what any PDF costs here). Then the event loop's longest pause (a 2 ms ticker) "
        "while one PDF renders in the worker, against rendering it on the loop."
    ),
}


def _kept_notes() -> str:
    if not DOCS.exists():
        return ""
    text = DOCS.read_text()
    if NOTES_START in text and NOTES_END in text:
        return text.split(NOTES_START, 1)[1].split(NOTES_END, 1)[0].strip("\n")
    return ""


def _problems(results: dict[str, Any]) -> list[str]:
    found = list(results.get("setup_problems", []))
    for name in ALL:
        found += results.get(name, {}).get("problems", [])
    return found


def write_docs(
    results: dict[str, Any], info: dict[str, Any], command: str, cores: Cores, elapsed: float
) -> None:
    packages = ", ".join(f"{k} {v}" for k, v in info["python_packages"].items())
    node_packages = ", ".join(f"{k} {v}" for k, v in info["node_packages"].items())
    lines = [
        "# Benchmarks",
        "",
        "Generated by `bench/run.py` from one run; every ratio compares figures measured "
        "in that same run, on the same machine, with the same driver. Figures are printed "
        "by the benchmark, never asserted by a test.",
        "",
        "```sh",
        command,
        "```",
        "",
        f"- Run: {info['date']}, {elapsed / 60:.1f} min in all.",
        f"- Machine: {info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB, "
        f"Linux {info['kernel']}; load average at start "
        f"{', '.join(f'{x:.2f}' for x in info['load_average'])}.",
        f"- Pinning: {cores.describe()} (taskset); the driver reports its own CPU, and a "
        "step where it passed 85% is marked saturated.",
        f"- Python {info['python']} ({packages}).",
        f"- Node {info['node']} ({node_packages}).",
        f"- {info['chromium']}; {info['coturn']}.",
        f"- Code measured: {info['code']}. Our server's database: {results.get('db')} "
        "(fan-out, ramp and profile measure ours on each; the others use SQLite, the "
        "default).",
        "",
        "Run `./run.sh bench --quick` for a smoke run (smaller C, shorter windows), or name "
        "benchmarks to run only those, e.g. `./run.sh bench fanout join`.",
        "",
        NOTES_START,
        _kept_notes(),
        NOTES_END,
        "",
    ]
    for name in ALL:
        if name not in results:
            continue
        lines += [METHOD[name], ""]
        run = results[name].get("run")
        if run:
            said = [f"`{run['command']}`", run["date"]]
            if run.get("code"):
                said.append(f"code {run['code']}")
            if run.get("load_average"):
                said.append(
                    "load average at start " + ", ".join(f"{x:.2f}" for x in run["load_average"])
                )
            lines += [f"_Measured in a separate run: {', '.join(said)}._", ""]
        if "elapsed_s" in results[name]:
            lines += [f"_Took {results[name]['elapsed_s']:.0f} s._", ""]
        for table in _tables(name, results[name]):
            lines += [table.markdown(), ""]
    problems = _problems(results)
    lines += ["## What looked wrong in this run", ""]
    lines += (
        [f"- {p}" for p in problems]
        if problems
        else ["- Nothing: no errors, drops or missing events were recorded."]
    )
    lines.append("")
    DOCS.write_text("\n".join(lines))
    log(f"wrote {DOCS.relative_to(ROOT)}")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    """Undo `_json_safe`: "inf", "-inf" and "nan" strings back to floats."""
    if value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


# -- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run.sh bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "benchmarks",
        nargs="*",
        metavar="BENCHMARK",
        help=f"any of: {', '.join(ALL)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="small and short: a smoke run")
    parser.add_argument(
        "--db",
        choices=["sqlite", "postgres", "both"],
        default="both",
        help="our server's database (postgres: a throw-away database on 127.0.0.1:5432)",
    )
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument("--docs", action="store_true", help="write docs/benchmarks.md anyway")
    docs.add_argument("--no-docs", action="store_true", help="never write docs/benchmarks.md")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="measure nothing: write docs/benchmarks.md from a saved results file",
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        saved = _from_json(json.loads(args.render.read_text()))
        write_docs(
            saved,
            saved["machine"],
            saved["command"],
            Cores.detect(),
            float(saved.get("elapsed_s", 0.0)),
        )
        return 0
    unknown = sorted(set(args.benchmarks) - set(ALL))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(ALL)}")
    names = [n for n in ALL if n in (args.benchmarks or ALL)]
    ensure_dependencies()

    install_signal_handlers()
    limit = raise_open_files_limit()
    if limit < 10_000:
        log(f"warning: only {limit} open files allowed; capacity needs ~7,000")
    cores = Cores.detect()
    pin(0, cores.driver)  # this process, and Chromium and helpers it starts
    info = machine()
    command = "./run.sh bench" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    log(f"{info['cores']} cores, {cores.describe()}; running {', '.join(names)}")
    workdir = make_workdir()
    started = time.monotonic()
    try:
        kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
        if "postgres" in kinds and not asyncio.run(postgres_available()):
            if args.db == "postgres":
                raise SystemExit("bench: no Postgres at 127.0.0.1:5432 (user postgres)")
            log("no Postgres at 127.0.0.1:5432: measuring ours on SQLite only")
            kinds = ["sqlite"]
        results = asyncio.run(run_all(names, args.quick, kinds, workdir, cores))
    finally:
        cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    results["db"] = "SQLite and Postgres" if args.db == "both" else args.db
    results["machine"] = info
    results["command"] = command
    results["quick"] = args.quick
    results["elapsed_s"] = elapsed
    full = set(names) == set(ALL) and not args.quick
    if not full and not args.quick and RESULTS.exists():
        # A run of some benchmarks updates theirs in the saved results and keeps the rest
        # (each section says which run measured it).
        for name in names:
            results[name]["run"] = {
                "date": info["date"],
                "code": info["code"],
                "command": command,
                "load_average": info["load_average"],
            }
        saved = _from_json(json.loads(RESULTS.read_text()))
        results = {**saved, **{name: results[name] for name in names}}
        info, command = results["machine"], results["command"]
        elapsed = float(results.get("elapsed_s", elapsed))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(_json_safe(results), indent=1) + "\n")
    log(f"raw figures in {RESULTS.relative_to(ROOT)}")
    problems = _problems(results)
    if problems:
        print("\nWhat looked wrong:", *(f"  - {p}" for p in problems), sep="\n")
    if not args.no_docs and (full or args.docs):
        write_docs(results, info, command, cores, elapsed)
    failed = [n for n in names if "error" in results.get(n, {})]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
