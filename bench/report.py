"""Tables for the terminal and docs/benchmarks.md, from the results of one run."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from bench.common import ratio

DRIVER_SATURATED_PCT = 85.0


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        widths = [len(h) for h in self.headers]
        for row in self.rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
        line = "  ".join("-" * w for w in widths)
        out = [self.title, line]
        out.append("  ".join(h.ljust(w) for h, w in zip(self.headers, widths, strict=True)))
        out.append(line)
        out += [
            "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in self.rows
        ]
        out += [f"  {note}" for note in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        out = [f"**{self.title}**", ""]
        out.append("| " + " | ".join(self.headers) + " |")
        out.append("|" + "|".join("---" for _ in self.headers) + "|")
        out += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {note}" for note in self.notes]
        return "\n".join(out)


def num(value: Any, digits: int | None = None) -> str:
    if value is None or value == "inf":
        return "∞" if value == "inf" else "—"
    value = float(value)
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞"
    if digits is None:
        digits = 1 if abs(value) < 10 else 0
    return f"{value:,.{digits}f}"


def times(value: float) -> str:
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞ (ours: over 1% late)"
    return f"{value:.2f}×" if value < 10 else f"{value:.0f}×"


def _ms(summary: dict[str, Any] | None, key: str) -> float:
    if not summary:
        return math.nan
    value = summary.get(key)
    if value in (None,):
        return math.nan
    return math.inf if value == "inf" else float(value)


def _driver(step: dict[str, Any]) -> str:
    pct = step.get("driver_cpu_pct", math.nan)
    flag = " (saturated)" if pct >= DRIVER_SATURATED_PCT else ""
    return f"{num(pct, 0)}{flag}"


# -- 1. fan-out ---------------------------------------------------------------------------

NAMES = {
    "ours": "ours",
    "ours-sqlite": "ours (SQLite)",
    "ours-postgres": "ours (Postgres)",
    "ours-2x-postgres": "ours, 2 instances + nginx + Redis (Postgres)",
    "yjs": "y-websocket",
    "socketio": "socket.io relay",
    "sio-floor": "python-socketio relay",
}


def name(target: str) -> str:
    return NAMES.get(target, target)


def _targets(steps: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(ours variants, peers) in the order they were run."""
    seen = list(dict.fromkeys(s["target"] for s in steps))
    return [t for t in seen if t.startswith("ours")], [t for t in seen if not t.startswith("ours")]


def fanout_tables(results: dict[str, Any]) -> list[Table]:
    steps = results.get("steps", [])
    settings = results["settings"]
    main = Table(
        "Edit fan-out: 3 participants per consult, 1 editor per consult at 2 edits/s "
        f"({settings['duration_s']:.0f} s window after {settings['warmup_s']:.0f} s warm-up)",
        [
            "server",
            "consults",
            "edits/s sent",
            "delivered/s",
            "ack p50 ms",
            "ack p99 ms",
            "arrival p50 ms",
            "arrival p99 ms",
            "late",
            "refused",
            "server CPU %",
            "CPU µs/edit",
            "peak RSS MB",
            "driver CPU %",
            "load avg",
        ],
    )
    for step in steps:
        main.rows.append(
            [
                name(step["target"]),
                str(step["rooms"]),
                num(step["offered_rate"], 0),
                num(step["delivered_rate"], 0),
                num(_ms(step["ack_ms"], "p50")),
                num(_ms(step["ack_ms"], "p99")),
                num(_ms(step["arrival_ms"], "p50")),
                num(_ms(step["arrival_ms"], "p99")),
                str(step["missing_arrivals"]),
                str(step.get("refused", 0)),
                num(step["server_cpu_pct"], 0),
                num(step["server_cpu_us_per_edit"], 0),
                num(step["server_peak_rss_mb"], 0),
                _driver(step),
                num(step.get("load_average")),
            ]
        )
    main.notes += [
        f"late = arrivals (2 per edit) not seen within {settings['drain_s']:.0f} s after the "
        "window (still queued in a saturated server, or lost); they count as infinite "
        "latency in the percentiles (∞ = more than 1% were late). refused = edits answered "
        "with an error (nothing is broadcast for them, so their arrivals are late too).",
        "CPU µs/edit = server CPU over the window / edits delivered in it (so a saturated "
        "server's figure includes work on edits still queued). load avg = the machine's "
        "1-minute load average at the end of the window: the machine is shared, and a figure "
        "well above 2 means other work competed for the cores.",
        "y-websocket has no acknowledgement: its ack columns are empty.",
    ]
    tables = [main]
    by_key = {(s["target"], s["rooms"]): s for s in steps}
    ours_targets, peers = _targets(steps)
    if ours_targets and peers:
        ratios = Table(
            "Fan-out ratios, ours / peer (same run; below 1 is better for ours)",
            ["ours", "peer", "consults", "arrival p50", "arrival p99", "CPU per edit", "peak RSS"],
        )
        for rooms in settings["sizes"]:
            for ours_name in ours_targets:
                ours = by_key.get((ours_name, rooms))
                for peer_name in peers:
                    peer = by_key.get((peer_name, rooms))
                    if ours is None or peer is None:
                        continue
                    ratios.rows.append(
                        [
                            name(ours_name),
                            name(peer_name),
                            str(rooms),
                            times(
                                ratio(
                                    _ms(ours["arrival_ms"], "p50"), _ms(peer["arrival_ms"], "p50")
                                )
                            ),
                            times(
                                ratio(
                                    _ms(ours["arrival_ms"], "p99"), _ms(peer["arrival_ms"], "p99")
                                )
                            ),
                            times(
                                ratio(
                                    ours["server_cpu_us_per_edit"], peer["server_cpu_us_per_edit"]
                                )
                            ),
                            times(ratio(ours["server_peak_rss_mb"], peer["server_peak_rss_mb"])),
                        ]
                    )
        tables.append(ratios)
    return tables


def ramp_tables(results: dict[str, Any]) -> list[Table]:
    ramp = results.get("ramp", {})
    if not ramp:
        return []
    settings = results["settings"]
    limit = settings["p99_limit_ms"]
    table = Table(
        f"Sustained edits/s before arrival p99 passes {limit:.0f} ms "
        f"({next(iter(ramp.values()))['rooms']} consults connected, rate raised step by step, "
        f"{settings['ramp_step_s']:.0f} s a step; a failed step is repeated once unless it "
        "had late messages)",
        [
            "server",
            "sustained edits/s",
            "steps: offered edits/s → arrival p99 ms (server CPU %, driver CPU %)",
        ],
    )
    for target, entry in ramp.items():
        trail = ", ".join(
            f"{s['rate']}→{num(_ms(s['arrival_ms'], 'p99'))}"
            + (f" [{s['missing_arrivals']} late]" if s["missing_arrivals"] else "")
            + f" ({num(s['server_cpu_pct'], 0)}%, {num(s['driver_cpu_pct'], 0)}%)"
            for s in entry["steps"]
        )
        last = entry["steps"][-1] if entry["steps"] else {}
        bound = ""
        if last and _ms(last["arrival_ms"], "p99") <= limit and not last["missing_arrivals"]:
            bound = " (≥: never passed the limit)"
        if any(s.get("driver_cpu_pct", 0) >= DRIVER_SATURATED_PCT for s in entry["steps"]):
            bound += " (driver saturated at some step)"
        sustained = num(entry["sustained_edits_per_s"], 0)
        if not entry["sustained_edits_per_s"] and entry["steps"]:
            sustained = f"< {entry['steps'][0]['rate']} (failed the first step)"
        table.rows.append([name(target), sustained + bound, trail])
    for ours_name, ours in ramp.items():
        if not ours_name.startswith("ours"):
            continue
        for peer_name, entry in ramp.items():
            if peer_name.startswith("ours"):
                continue
            table.notes.append(
                f"{name(ours_name)} / {name(peer_name)}, sustained edits/s: "
                f"{times(ratio(ours['sustained_edits_per_s'], entry['sustained_edits_per_s']))}"
                " (above 1 is better for ours here)"
            )
    return [table]


# -- 2. join ------------------------------------------------------------------------------


def join_tables(results: dict[str, Any]) -> list[Table]:
    table = Table(
        "Join time, navigation → first decoded remote video frame "
        f"({results['settings']['runs']} runs; coturn relay on loopback)",
        ["what", "pages", "p50 ms", "p95 ms", "max ms", "failed", "one-sided"],
    )
    ours = results["ours"]
    # A page is one-sided when it decoded video from only one of its two remotes in time.
    one_sided = str(results.get("one_sided", "–"))
    rows = [
        ("ours: first remote frame", ours["first"], "–"),
        ("ours: frames from both remotes", ours["all"], one_sided),
        ("ours: page load event", ours["load"], "–"),
        *(
            [
                ("ours: socket connected", ours["socket"], "–"),
                ("ours: camera and microphone ready", ours["media"], "–"),
                ("ours: Join clicked", ours["click"], "–"),
                ("ours: join answered by the server", ours["answered"], "–"),
                ("ours: first offer or answer received", ours["description"], "–"),
            ]
            if "answered" in ours
            else []
        ),
        ("ours: window.mtm.state = in-call", ours["in_call"], "–"),
        ("ours: both peer connections 'connected'", ours["connected"], "–"),
        *(
            [("ours: video packets from both remotes", ours["packets"], "–")]
            if "packets" in ours
            else []
        ),
        ("limit: first remote frame (bare RTCPeerConnection)", results["limit"]["first"], "–"),
        ("limit: page load event (blank page)", results["limit"]["load"], "–"),
        *(
            [
                ("mesh limit (3 pages): first remote frame", results["mesh_limit"]["first"], "–"),
                ("mesh limit (3 pages): frames from both", results["mesh_limit"]["all"], "–"),
            ]
            if "mesh_limit" in results
            else []
        ),
        *(
            [
                (
                    "mesh limit, video shown: first remote frame",
                    results["mesh_shown"]["first"],
                    "–",
                ),
                ("mesh limit, video shown: frames from both", results["mesh_shown"]["all"], "–"),
            ]
            if "mesh_shown" in results
            else []
        ),
    ]
    for label, summary, sided in rows:
        table.rows.append(
            [
                label,
                str(summary["n"]),
                num(summary["p50"], 0),
                num(summary["p95"], 0),
                num(summary["max"], 0),
                str(summary["failed"]),
                sided,
            ]
        )
    first, limit = ours["first"], results["limit"]["first"]
    both = ours["all"]
    table.notes.append(
        f"ours / limit, first remote frame: p50 {times(ratio(first['p50'], limit['p50']))}, "
        f"p95 {times(ratio(first['p95'], limit['p95']))}; frames from both remotes: "
        f"p50 {times(ratio(both['p50'], limit['p50']))}, "
        f"p95 {times(ratio(both['p95'], limit['p95']))}"
    )
    if "mesh_limit" in results:
        mesh_first, mesh_all = results["mesh_limit"]["first"], results["mesh_limit"]["all"]
        table.notes.append(
            "ours / mesh limit (the same three-page call without a server, so the same "
            f"encoders and decoders on the browser's core): first remote frame p50 "
            f"{times(ratio(first['p50'], mesh_first['p50']))}; frames from both remotes p50 "
            f"{times(ratio(both['p50'], mesh_all['p50']))}, "
            f"p95 {times(ratio(both['p95'], mesh_all['p95']))}"
        )
    if "mesh_shown" in results:
        shown_first, shown_all = results["mesh_shown"]["first"], results["mesh_shown"]["all"]
        table.notes.append(
            "ours / mesh limit with video shown (the same, each blank page also drawing its "
            "camera and both remotes in <video> elements and playing their sound, as any call "
            f"page must): first remote frame p50 {times(ratio(first['p50'], shown_first['p50']))}; "
            f"frames from both remotes p50 {times(ratio(both['p50'], shown_all['p50']))}, "
            f"p95 {times(ratio(both['p95'], shown_all['p95']))}"
        )
    table.notes.append("Join is clicked by the driver as soon as the page's load event fired.")
    return [table]


# -- 3. capacity --------------------------------------------------------------------------


def capacity_tables(results: dict[str, Any]) -> list[Table]:
    settings = results["settings"]
    table = Table(
        "Idle connected participants per server process (rooms of 3; Engine.IO ping every "
        f"{settings['ping_interval_s']:.0f} s; CPU over {settings['idle_s']:.0f} s idle)",
        [
            "server",
            "participants",
            "RSS MB",
            "KB / participant",
            "idle CPU %",
            "CPU µs / ping",
            "connect s",
            "driver CPU % (connect)",
            "dropped",
            "load avg",
        ],
    )
    targets = [t for t in settings["targets"] if t in results]
    for target in targets:
        for row in results[target]["levels"]:
            table.rows.append(
                [
                    name(target),
                    str(row["connected"]),
                    num(row["rss_mb"], 0),
                    num(row["kb_per_participant"], 0),
                    num(row["idle_cpu_pct"]),
                    num(row["cpu_us_per_ping"]),
                    num(row["connect_s"]),
                    num(row["connect_driver_cpu_pct"], 0),
                    str(row["disconnects"]),
                    num(row.get("load_average")),
                ]
            )
    table.notes.append(
        "KB / participant = (RSS now − RSS of the idle server before any "
        "connection) / participants connected. CPU µs / ping = idle CPU "
        "time / (participants × pings each in the window)."
    )
    if "ours" in results and "socketio" in results:
        for ours, peer in zip(
            results["ours"]["levels"], results["socketio"]["levels"], strict=False
        ):
            table.notes.append(
                f"ours / socket.io at {ours['level']}: memory per participant "
                f"{times(ratio(ours['kb_per_participant'], peer['kb_per_participant']))}, "
                f"idle CPU {times(ratio(ours['idle_cpu_pct'], peer['idle_cpu_pct']))}, "
                f"time to connect {times(ratio(ours['connect_s'], peer['connect_s']))}"
            )
    if "sio-floor" in results and "socketio" in results:
        ours_at = {row["level"]: row for row in results.get("ours", {}).get("levels", [])}
        for floor, peer in zip(
            results["sio-floor"]["levels"], results["socketio"]["levels"], strict=False
        ):
            mine = ours_at.get(floor["level"])
            ours_note = (
                f"; ours / python-socketio {times(ratio(mine['connect_s'], floor['connect_s']))}"
                if mine
                else ""
            )
            table.notes.append(
                f"time to connect at {floor['level']}: python-socketio / socket.io "
                f"{times(ratio(floor['connect_s'], peer['connect_s']))} (the Python stack "
                f"with no database){ours_note}"
            )
    return [table]


# -- 4. synthetic participants ------------------------------------------------------------


def synthetic_tables(results: dict[str, Any]) -> list[Table]:
    table = Table(
        "Synthetic participant (aiortc) cost: each bot sends 640x480 at 15 fps + audio and "
        "decodes a Chromium page's 640x360 camera",
        [
            "bots",
            "bots' process CPU %",
            "CPU % per bot",
            "decoded fps per bot",
            "sent fps per bot",
            "Chromium CPU %",
            "coturn CPU %",
        ],
    )
    for row in results["rows"]:
        table.rows.append(
            [
                str(row["bots"]),
                num(row["cpu_pct"], 0),
                num(row["cpu_pct_per_bot"]),
                num(row["received_fps_per_bot"]),
                num(row["sent_fps_per_bot"]),
                num(row["chromium_cpu_pct"], 0),
                num(row["coturn_cpu_pct"]),
            ]
        )
    table.notes.append("CPU % is of one core; the bots' process had a core to itself.")
    return [table]


# -- profile ------------------------------------------------------------------------------


def profile_tables(results: dict[str, Any]) -> list[Table]:
    tables = []
    for kind, entry in results.get("by_db", {}).items():
        tables += _profile_tables(kind, entry)
    return tables


def _profile_tables(kind: str, results: dict[str, Any]) -> list[Table]:
    tables = []
    trips = results["round_trips"]
    per_edit = trips["per_edit"]
    table = Table(
        f"{kind}: database work per `mutate` ({trips['edits']} sequential edits, in-process)",
        ["SQL statements", "transactions (BEGIN/COMMIT)", "pool checkouts (+1 pre-ping each)"],
        [
            [
                num(per_edit.get("statements", 0)),
                num(per_edit.get("commit", 0)),
                num(per_edit.get("pool_checkouts", 0)),
            ]
        ],
    )
    table.notes += [f"{i + 1}. `{sql}`" for i, sql in enumerate(trips["one_edit"])]
    tables.append(table)
    spy = results["spy"]
    if "skipped" in spy:
        tables.append(Table(f"{kind}: py-spy skipped ({spy['skipped']})", ["-"]))
        return tables
    header = (
        f"{kind}: py-spy, server offered {spy['rate']} edits/s ({spy['rooms']} consults): "
        f"delivered {num(spy['delivered_rate'], 0)}/s, arrival p50 "
        f"{num(_ms(spy['arrival_ms'], 'p50'))} ms, p99 {num(_ms(spy['arrival_ms'], 'p99'))} ms; "
        f"server CPU {num(spy['server_cpu_pct'], 0)}%; event-loop thread in Python code in "
        f"{num(spy['main_busy_pct'], 0)}% of sample ticks, in the loop itself (epoll wait, or "
        f"uvloop's C code) in {num(spy.get('main_epoll_pct'), 0)}%; on average "
        f"{num(spy['worker_threads_busy'])} other threads (aiosqlite's) busy or blocked "
        "inside a call — event-loop self time by library"
    )
    tables.append(
        Table(
            header,
            ["where", "% of event-loop samples"],
            [[label, num(share)] for label, share in spy["buckets"]],
        )
    )
    tables.append(
        Table(
            f"{kind}: event-loop thread, inclusive (functions on the stack)",
            ["function", "%"],
            [[f"`{fn}`", num(share)] for fn, share in spy["inclusive"] if not _boring(fn)][:20],
        )
    )
    tables.append(
        Table(
            f"{kind}: event-loop thread, self (the leaf frame)",
            ["function", "%"],
            [[f"`{fn}`", num(share)] for fn, share in spy["self"][:20]],
        )
    )
    return tables


# -- flood ------------------------------------------------------------------------------

FLOOD_SCENARIOS = {
    "none": "no flood",
    "limited": "flood, default limits",
    "unlimited": "flood, limits lifted",
}


def flood_tables(results: dict[str, Any]) -> list[Table]:
    settings = results["settings"]
    table = Table(
        f"One abusive client flooding `{settings['event']}` while {settings['rooms']} consults "
        f"edit at 2 edits/s ({settings['duration_s']:.0f} s window)",
        [
            "flood",
            "edits delivered/s",
            "ack p50 ms",
            "ack p99 ms",
            "arrival p50 ms",
            "arrival p99 ms",
            "late",
            "flood events/s",
            "flood answered/s (ok / rate_limited)",
            "server CPU %",
            "driver CPU %",
            "load avg",
        ],
    )
    for row in results.get("rows", []):
        flood = row.get("flood") or {}
        answered = flood.get("answered_per_s") or {}
        table.rows.append(
            [
                FLOOD_SCENARIOS.get(row["scenario"], row["scenario"]),
                num(row["delivered_rate"], 0),
                num(_ms(row["ack_ms"], "p50")),
                num(_ms(row["ack_ms"], "p99")),
                num(_ms(row["arrival_ms"], "p50")),
                num(_ms(row["arrival_ms"], "p99")),
                str(row["missing_arrivals"]),
                num(flood.get("sent_per_s"), 0) if flood else "—",
                (
                    f"{num(answered.get('ok', 0), 0)} / {num(answered.get('rate_limited', 0), 0)}"
                    if flood
                    else "—"
                ),
                num(row["server_cpu_pct"], 0),
                _driver(row),
                num(row.get("load_average")),
            ]
        )
    table.notes += [
        "The flooder is one raw Socket.IO client on the driver's core (niced), 64 "
        "acknowledgements in flight; each `panel-sync` it gets through reads the whole panel. "
        "Rates are over the consults' measured window.",
        "Limits lifted: signaling.events_per_second 100,000 and event_burst 1,000,000.",
    ]
    return [table]


BORING = re.compile(r"\((asyncio/(runners|base_events)|uvloop/|server/cli|mtm-consult)")


def _boring(name: str) -> bool:
    return bool(BORING.search(name))


def documents_tables(results: dict[str, Any]) -> list[Table]:
    rows = results["rows"]
    settings = results["settings"]
    floor = rows["blank"]["p50_ms"]
    names = [
        ("rest", f"ours: GET summary.pdf, {settings['medications']} medications (REST, SQLite)"),
        ("worker", "ours: the same PDF from its HTML (worker process)"),
        ("in_process", "ours: the same PDF from its HTML (in process)"),
        ("html", "peer: the HTML alone (content and template)"),
        ("blank", "peer: WeasyPrint, a blank page (worker process)"),
    ]
    main = Table(
        f"PDF of the patient's summary: {settings['medications']} medications, "
        f"{results['pages']} pages, {results['bytes'] / 1024:.0f} KiB ({settings['runs']} runs "
        "each after a warm-up)",
        ["what", "p50 ms", "p95 ms", "min ms", "× blank page"],
    )
    for key, label in names:
        row = rows[key]
        main.rows.append(
            [
                label,
                num(row["p50_ms"], 0),
                num(row["p95_ms"], 0),
                num(row["min_ms"], 0),
                times(ratio(row["p50_ms"], floor)),
            ]
        )
    loop = results["loop"]
    pauses = Table(
        "The event loop while one PDF renders (longest gap of a 2 ms ticker)",
        ["where the PDF renders", "render ms", "longest pause ms"],
    )
    for key, label in [("worker", "worker process (ours)"), ("on_loop", "on the event loop")]:
        pauses.rows.append(
            [label, num(loop[key]["render_ms"], 0), num(loop[key]["longest_pause_ms"], 0)]
        )
    return [main, pauses]


RENDERERS = {
    "fanout": fanout_tables,
    "ramp": ramp_tables,
    "join": join_tables,
    "capacity": capacity_tables,
    "synthetic": synthetic_tables,
    "profile": profile_tables,
    "flood": flood_tables,
    "documents": documents_tables,
}
