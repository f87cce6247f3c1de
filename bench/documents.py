"""Benchmark 7: how long the PDF of a 20-medication consult takes, and what it costs the
event loop while it renders.

The consult: 20 medications (some stopped, with why), problems, recommendations decided and
not, plan items: the patient's summary in the CMS Standardized Format (cover letter, action
plan, medication list). Measured in this process, `runs` times each, after one warm-up:

- ours, through the REST API: `GET /api/v1/consults/{id}/documents/summary.pdf` on our app
  (SQLite, in this process): the change log replayed to the end's seq, the HTML made, the
  PDF rendered by the app's worker process (its cache cleared before each request);
- ours, the PDF alone: the same HTML through the worker (`PdfRenderer`), and through
  WeasyPrint in this process;
- peers in the same run: the HTML alone (content and template, no PDF), and WeasyPrint on
  a blank page through the same worker (the floor any PDF pays here).

The worker process runs on the server's core, this process on the driver's. Then the
event loop's longest pause (a 2 ms ticker) while the worker renders, against rendering
the same PDF on the loop itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import Cores, log, percentile, pin
from documents import content, render
from documents.pdf import html_to_pdf
from models.mutations import Actor, PanelState, apply
from server.api_keys import hash_key
from server.app import create_app
from server.config import load_config
from server.documents import PdfRenderer
from server.state import STATE
from tests.support import loop_pause

API_KEY = "bench-documents-key-0123456789abcdef"


@dataclass
class DocumentBenchSettings:
    medications: int = 20
    runs: int = 15


def medications(count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"Medication {index + 1}",
            "strength": f"{(index + 1) * 5} mg",
            "form": "tablet",
            "how_taken": "1 tablet every morning with a full glass of water",
            "why": "High blood pressure" if index % 2 else "Type 2 diabetes",
            "prescriber": "Dr. Rivera",
            "start_date": "2024-01-05",
            "source": ("patient", "fill-history", "chart")[index % 3],
            **(
                {"status": "stopped", "stop_date": "2026-11-20", "why_stopped": "Dizziness"}
                if index % 5 == 4
                else {}
            ),
        }
        for index in range(count)
    ]


def review_html(count: int) -> str:
    """The patient's summary of a consult with `count` medications (the panel rules apply)."""
    now = dt.datetime(2026, 11, 27, 15, tzinfo=dt.UTC)
    state = PanelState("c_bench", "ended", 0)
    actor = Actor("p1", "Ana", "pharmacist")

    def do(**mutation: Any) -> dict[str, Any]:
        mutation.setdefault("mutation_id", f"m{state.last_seq + 1}")
        result, _ = apply(state, actor, mutation, now=now)
        assert result["ok"], result
        return result

    state.status = "live"
    ids = [do(op="add", entity="medication", value=m)["entity"]["id"] for m in medications(count)]
    for index in range(3):
        problem = do(
            op="add",
            entity="problem",
            value={
                "category": "adverse-drug-reaction",
                "description": "Dizziness when standing up",
                "medication_ids": [ids[index * 5 + 4]],
                "audience": "patient",
            },
        )["entity"]["id"]
        do(
            op="add",
            entity="recommendation",
            value={"text": "Lower the dose", "problem_id": problem, "audience": "patient"},
        )
        do(
            op="add",
            entity="plan_item",
            value={"talked_about": f"Topic {index + 1}", "to_do": "Take it with breakfast"},
        )
    state.status = "ended"
    facts = content.ConsultFacts(
        consult_id="c_bench",
        patient_name="Maria Lopez",
        service_date=now.date(),
        status="ended",
        seq=state.last_seq,
        prepared_at=now,
        provider_name="North Clinic Pharmacy",
        provider_contact="555-0100",
        plan_name="Acme Part D",
        pharmacist_name="Ana",
    )
    return render.summary_html(content.patient_summary(facts, state.snapshot(), "en"))


async def timed(runs: int, work: Callable[[], Awaitable[Any]]) -> list[float]:
    await work()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times: list[float]) -> dict[str, float]:
    return {
        "p50_ms": statistics.median(times),
        "p95_ms": percentile(times, 95),
        "min_ms": min(times),
        "runs": len(times),
    }


async def longest_pause(work: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    pause, elapsed = await loop_pause.longest_pause(work)
    return {"longest_pause_ms": pause * 1000, "render_ms": elapsed * 1000}


async def through_rest(
    workdir: Path, settings: DocumentBenchSettings, cores: Cores
) -> tuple[list[float], int, int]:
    """(times of GET summary.pdf in ms, pages, bytes) on our app, in this process."""
    config = load_config(
        None,
        environ={},
        overrides={
            "database": {"url": f"sqlite+aiosqlite:///{workdir / 'documents.sqlite3'}"},
            "paths": {"var_dir": str(workdir / "var-documents")},
            "auth": {"token_secret": "bench-documents-secret-" + "x" * 32},
            "api": {
                "keys": [{"clinic": "north", "display_name": "North", "hash": hash_key(API_KEY)}],
                "rate_limit_burst": 100_000,
            },
        },
    )
    app = create_app(config)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1"
    headers = {"X-API-Key": API_KEY}
    state = app[STATE]
    try:
        await state.pdf.start()
        for pid in state.pdf.worker_pids():
            pin(pid, cores.server)
        async with aiohttp.ClientSession() as http:
            body = {
                "patient_name": "Maria Lopez",
                "scheduled_at": "2026-11-27T15:00:00+00:00",
                "medications": medications(settings.medications),
            }
            async with http.post(f"{base}/consults", json=body, headers=headers) as response:
                assert response.status == 201, await response.text()
                consult_id = (await response.json())["id"]
            async with http.post(f"{base}/consults/{consult_id}/end", headers=headers) as response:
                assert response.status == 200
            url = f"{base}/consults/{consult_id}/documents/summary.pdf"
            pdf = b""

            async def fetch() -> None:
                nonlocal pdf
                state.pdf.clear_cache()
                async with http.get(url, headers=headers) as response:
                    assert response.status == 200
                    pdf = await response.read()

            times = await timed(settings.runs, fetch)
    finally:
        await runner.cleanup()
    return times, await page_count(pdf), len(pdf)


async def page_count(pdf: bytes) -> int:
    """Pages of `pdf`, as poppler's `pdfinfo` reads them (-1 without poppler-utils)."""
    try:
        process = await asyncio.create_subprocess_exec(
            "pdfinfo", "-", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
    except FileNotFoundError:
        return -1
    out, _ = await process.communicate(pdf)
    found = re.search(rb"^Pages:\s+(\d+)", out, re.MULTILINE)
    return int(found.group(1)) if found else -1


async def run(workdir: Path, cores: Cores, settings: DocumentBenchSettings) -> dict[str, Any]:
    html = review_html(settings.medications)
    blank = "<!doctype html><p></p>"
    renderer = PdfRenderer(1)
    await renderer.start()
    for pid in renderer.worker_pids():
        pin(pid, cores.server)
    rows: dict[str, dict[str, float]] = {}
    try:
        log("documents: the HTML alone")

        async def html_only() -> None:
            review_html(settings.medications)

        rows["html"] = summary(await timed(settings.runs, html_only))

        async def worker(page: str) -> None:
            renderer.clear_cache()
            await renderer.pdf(page)

        log("documents: WeasyPrint on a blank page (worker)")
        rows["blank"] = summary(await timed(settings.runs, lambda: worker(blank)))
        log(f"documents: the {settings.medications}-medication summary (worker)")
        rows["worker"] = summary(await timed(settings.runs, lambda: worker(html)))

        async def in_process() -> None:
            await asyncio.to_thread(html_to_pdf, html)

        log("documents: the same in this process")
        rows["in_process"] = summary(await timed(settings.runs, in_process))
        log("documents: the event loop while a PDF renders")
        renderer.clear_cache()
        off_loop = await longest_pause(lambda: worker(html))

        async def on_loop() -> None:
            html_to_pdf(html)

        blocking = await longest_pause(on_loop)
    finally:
        await renderer.stop()
    log("documents: GET summary.pdf through the REST API")
    rest_times, pages, size = await through_rest(workdir, settings, cores)
    rows["rest"] = summary(rest_times)
    return {
        "settings": asdict(settings),
        "rows": rows,
        "pages": pages,
        "bytes": size,
        "loop": {"worker": off_loop, "on_loop": blocking},
        "problems": [],
    }
