"""Benchmark 2: join time, navigation -> first decoded remote video frame.

Ours: three headless Chromium pages (one browser, a context each) open the pharmacist's,
clinician's and patient's links of a fresh consult at the same moment; on each page's
`load` event the driver clicks Join at once (no typing: the name on the link is used).
The time counted is from the page's navigation start (its `performance.timeOrigin`) to
the moment `window.mtm.stats()` first reports `framesDecoded > 0` for a remote peer,
polled inside the page every 10 ms; "all" is the same for the second remote. So it
includes page load, camera start, the Socket.IO join, ICE through coturn (relay only),
DTLS and the first decode.

The patient of each consult is admitted once beforehand through the protocol (consent
accepted, admitted by the pharmacist) and rejoins within the rejoin grace, so all three
pages go straight into the call: admission is a person's decision, not something to time.

The limit, same run, same browser, same coturn: two pages of a blank local origin, each
with the same camera constraints as our client, connected by a bare RTCPeerConnection
(relay only) whose offer and answer (with all candidates, non-trickle) the driver carries
between them by hand; no server at all. The mesh limit: three such pages, each connected
to each of the two others the same way (a call's topology: every page encodes for two
and decodes two), all at once. The mesh limit with video shown: the same, each page also
showing its camera and both remotes in <video> elements (and playing their sound), as any
call page must: what drawing the video costs the browser's one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import socketio
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from bench.common import (
    ConsultLinks,
    Cores,
    Database,
    create_consults,
    free_port,
    log,
    percentile,
    pin,
    start_ours,
)
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.coturn import Coturn

# The same camera constraints as web/static/local-media.js.
CONSTRAINTS = {
    "audio": True,
    "video": {"width": {"ideal": 640}, "height": {"ideal": 360}, "frameRate": {"ideal": 24}},
}


# The client's join phases (User Timing marks "mtm:<mark>" in web/static/call.js), by the
# name of their figure.
PHASES = {
    "socket": "socket-connected",
    "media": "media-ready",
    "click": "join-clicked",
    "answered": "join-answered",
    "description": "description-received",
}


@dataclass
class JoinSettings:
    runs: int = 12
    timeout_s: float = 30.0
    db: str = "sqlite"


# In-page poller for our client: when each remote first sent video packets and first had
# a decoded frame, when each connection was connected, when the page got into the call, all
# as performance.now() (ms since navigation start).
OUR_POLLER = """() => {
  const bench = (window.__bench = {
    peers: {}, packets: {}, connected: {}, inCall: null, done: false,
  });
  const now = () => performance.now();
  const tick = async () => {
    try {
      if (bench.inCall === null && window.mtm && window.mtm.state === "in-call") {
        bench.inCall = performance.now();
      }
      if (window.mtm) {
        for (const [peer, pc] of window.mtm.peers) {
          const report = await pc.getStats();
          for (const stat of report.values()) {
            if (stat.type !== "inbound-rtp" || stat.kind !== "video") continue;
            if (stat.packetsReceived > 0 && !(peer in bench.packets)) bench.packets[peer] = now();
            if (stat.framesDecoded > 0 && !(peer in bench.peers)) bench.peers[peer] = now();
          }
          if (pc.connectionState === "connected" && !(peer in bench.connected)) {
            bench.connected[peer] = performance.now();
          }
        }
      }
    } catch (error) { bench.error = String(error); }
    if (Object.keys(bench.peers).length >= 2) {
      if (!bench.marks) {
        // The client's join phases (web/static/call.js marks the first of each).
        bench.marks = {};
        for (const mark of performance.getEntriesByType("mark")) {
          if (mark.name.startsWith("mtm:")) bench.marks[mark.name] = mark.startTime;
        }
      }
      bench.framesAt ??= performance.now();
      // Keep watching a little for both connections to report "connected".
      if (Object.keys(bench.connected).length >= 2 || performance.now() - bench.framesAt > 1000) {
        bench.done = true;
        return;
      }
    }
    setTimeout(tick, 10);
  };
  tick();
}"""

# The limit pages: one RTCPeerConnection per other page (`peers`: their names), all
# sending the same camera and microphone stream; when each first had a decoded frame.
LIMIT_SETUP = """async ({ ice, constraints, peers, show }) => {
  const bench = (window.__bench = { peers: {}, done: false });
  const stream = await navigator.mediaDevices.getUserMedia(constraints);
  const video = (source, muted) => {
    const element = Object.assign(document.createElement("video"), {
      autoplay: true, playsInline: true, muted, srcObject: source,
    });
    element.style.width = "320px";
    document.body.append(element);
  };
  if (show) video(stream, true);
  window.__pcs = {};
  for (const peer of peers) {
    const pc = (window.__pcs[peer] = new RTCPeerConnection(ice));
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    if (show) {
      pc.ontrack = ({ track, streams }) => track.kind === "video" && video(streams[0], false);
    }
  }
  const tick = async () => {
    try {
      for (const [peer, pc] of Object.entries(window.__pcs)) {
        if (peer in bench.peers) continue;
        const report = await pc.getStats();
        for (const stat of report.values()) {
          if (stat.type === "inbound-rtp" && stat.kind === "video" && stat.framesDecoded > 0) {
            bench.peers[peer] = performance.now();
          }
        }
      }
    } catch (error) { bench.error = String(error); }
    if (Object.keys(bench.peers).length === peers.length) {
      bench.done = true;
      return;
    }
    setTimeout(tick, 10);
  };
  tick();
}"""

GATHERED = """async (peer) => {
  const pc = window.__pcs[peer];
  if (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => {
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") resolve();
      });
    });
  }
  return { type: pc.localDescription.type, sdp: pc.localDescription.sdp };
}"""

OFFER = """async (peer) => {
  const pc = window.__pcs[peer];
  await pc.setLocalDescription(await pc.createOffer());
}"""

ANSWER = """async ([peer, offer]) => {
  const pc = window.__pcs[peer];
  await pc.setRemoteDescription(offer);
  await pc.setLocalDescription(await pc.createAnswer());
}"""

ACCEPT = """async ([peer, answer]) => { await window.__pcs[peer].setRemoteDescription(answer); }"""

READ = """() => window.__bench"""

NAVIGATION = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  return nav ? nav.loadEventEnd : null;
}"""


async def _admit_patient(base_url: str, consult: ConsultLinks) -> None:
    """Consent and admission once, through the protocol, so a later rejoin skips waiting."""
    host = socketio.AsyncClient(reconnection=False)
    patient = socketio.AsyncClient(reconnection=False)
    admitted: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    patient.on("admitted", lambda data=None: admitted.done() or admitted.set_result(data))
    try:
        await host.connect(
            base_url, auth={"token": consult.tokens["pharmacist"]}, transports=["websocket"]
        )
        ack = await host.call("join", {}, timeout=10)
        if not ack.get("ok"):
            raise RuntimeError(f"pharmacist join refused: {ack}")
        await patient.connect(
            base_url, auth={"token": consult.tokens["patient"]}, transports=["websocket"]
        )
        ack = await patient.call("join", {"consent": {"accepted": True}}, timeout=10)
        if not ack.get("ok"):
            raise RuntimeError(f"patient join refused: {ack}")
        if ack.get("waiting"):
            answer = await host.call("admit", {"participant_id": ack["self"]["id"]}, timeout=10)
            if not answer.get("ok"):
                raise RuntimeError(f"admit refused: {answer}")
            await asyncio.wait_for(admitted, 10)
    finally:
        for client in (patient, host):
            with contextlib.suppress(Exception):
                await client.emit("leave", {})
            await asyncio.sleep(0.05)
            await client.disconnect()


async def click_join(page: Page, problems: list[str]) -> None:
    """Press Join as a person would (ticking the consent box if the page asks for it).

    If something covers the button, the click is dispatched to it directly and the
    overlap is reported: a layout fault should not stop the measurement.
    """
    consent = page.get_by_test_id("consent-checkbox")
    if await consent.count() and await consent.is_visible():
        await consent.check()
    button = page.get_by_test_id("join-button")
    try:
        await button.click(timeout=5_000)
    except PlaywrightTimeoutError as exc:
        reason = next(
            (line.strip() for line in str(exc).splitlines() if "intercepts pointer events" in line),
            str(exc).splitlines()[0],
        )
        note = f"web: the Join button could not be clicked ({reason}); dispatched the click"
        if note not in problems:
            problems.append(note)
        await button.dispatch_event("click")


async def _poll(pages: list[Page], timeout: float) -> list[dict[str, Any] | None]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        states = [await page.evaluate(READ) for page in pages]
        if all(s and s.get("done") for s in states):
            return states
        if asyncio.get_running_loop().time() > deadline:
            return states
        await asyncio.sleep(0.1)


async def _contexts(browser: Browser, count: int) -> list[tuple[BrowserContext, Page]]:
    pairs = []
    for _ in range(count):
        context = await browser.new_context(viewport={"width": 960, "height": 600})
        page = await context.new_page()
        pairs.append((context, page))
    return pairs


async def _our_run(
    browser: Browser, base_url: str, consult: ConsultLinks, timeout: float, problems: list[str]
) -> list[dict[str, Any]]:
    pairs = await _contexts(browser, 3)
    pages = [page for _, page in pairs]
    errors: list[str] = []
    for page in pages:
        page.on("pageerror", lambda error: errors.append(str(error)))
    try:

        async def open_and_join(page: Page, role: str) -> None:
            await page.goto(f"{base_url}/c/{consult.tokens[role]}")
            await page.evaluate(OUR_POLLER)
            await click_join(page, problems)

        await asyncio.gather(
            *(
                open_and_join(page, role)
                for page, role in zip(pages, ("pharmacist", "clinician", "patient"), strict=True)
            )
        )
        states = await _poll(pages, timeout)
        loads = [await page.evaluate(NAVIGATION) for page in pages]
    finally:
        for context, _ in pairs:
            await context.close()
    samples = []
    for state, load in zip(states, loads, strict=True):
        times = sorted((state or {}).get("peers", {}).values())
        connected = sorted((state or {}).get("connected", {}).values())
        packets = sorted((state or {}).get("packets", {}).values())
        samples.append(
            {
                "first_ms": times[0] if times else math.inf,
                "all_ms": times[1] if len(times) >= 2 else math.inf,
                "in_call_ms": (state or {}).get("inCall") or math.nan,
                "connected_ms": connected[1] if len(connected) >= 2 else math.inf,
                "packets_ms": packets[1] if len(packets) >= 2 else math.inf,
                "load_ms": load or math.nan,
                **{
                    f"{phase}_ms": (state or {}).get("marks", {}).get(f"mtm:{mark}", math.nan)
                    for phase, mark in PHASES.items()
                },
                "error": (state or {}).get("error") or (errors[0] if errors else None),
            }
        )
    return samples


async def _limit_run(
    browser: Browser,
    page_url: str,
    turn: Coturn,
    timeout: float,
    *,
    pages: int = 2,
    show: bool = False,
) -> list[dict[str, Any]]:
    """The limit for `pages` pages: each pair connected by a bare RTCPeerConnection, every
    page sending its camera to each other page (2: one pair; 3: the mesh of our call);
    `show`: each page shows its camera and every remote video, and plays their sound."""
    pairs = await _contexts(browser, pages)
    opened = [page for _, page in pairs]
    names = [f"page{i}" for i in range(pages)]
    try:

        async def open_page(index: int) -> None:
            config = {
                "iceServers": [turn.ice_server(f"limit-{index}")],
                "iceTransportPolicy": "relay",
            }
            others = [name for other, name in enumerate(names) if other != index]
            await opened[index].goto(page_url)
            await opened[index].evaluate(
                LIMIT_SETUP,
                {"ice": config, "constraints": CONSTRAINTS, "peers": others, "show": show},
            )

        async def connect(caller: int, callee: int) -> None:
            await opened[caller].evaluate(OFFER, names[callee])
            offer = await opened[caller].evaluate(GATHERED, names[callee])
            await opened[callee].evaluate(ANSWER, [names[caller], offer])
            answer = await opened[callee].evaluate(GATHERED, names[caller])
            await opened[caller].evaluate(ACCEPT, [names[callee], answer])

        await asyncio.gather(*(open_page(index) for index in range(pages)))
        await asyncio.gather(*(connect(a, b) for a in range(pages) for b in range(a + 1, pages)))
        states = await _poll(opened, timeout)
        loads = [await page.evaluate(NAVIGATION) for page in opened]
    finally:
        for context, _ in pairs:
            await context.close()
    samples = []
    for state, load in zip(states, loads, strict=True):
        times = sorted((state or {}).get("peers", {}).values())
        samples.append(
            {
                "first_ms": times[0] if times else math.inf,
                "all_ms": times[-1] if len(times) == pages - 1 else math.inf,
                "load_ms": load or math.nan,
                "error": (state or {}).get("error"),
            }
        )
    return samples


async def _blank_site() -> tuple[web.AppRunner, str]:
    async def blank(_request: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><title>limit</title><p>limit</p>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/", blank)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/"


def summarize(samples: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [s[key] for s in samples]
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": percentile(values, 100),
        "failed": sum(1 for v in values if not math.isfinite(v)),
    }


async def run(workdir: Path, cores: Cores, settings: JoinSettings) -> dict[str, Any]:
    problems: list[str] = []
    turn = Coturn(verbose=False)
    await turn.start()  # from the main thread: coturn dies with the thread that started it
    assert turn.pid is not None
    pin(turn.pid, cores.server)
    db = await Database.create(settings.db, workdir)
    server = None
    runner = None
    ours: list[dict[str, Any]] = []
    limit: list[dict[str, Any]] = []
    mesh: list[dict[str, Any]] = []
    shown: list[dict[str, Any]] = []
    try:
        server = await start_ours(
            workdir,
            db,
            cores,
            label="ours-join",
            env={**turn.server_env(), "MTM_CONSULT__REJOIN_GRACE_SECONDS": "3600"},
        )
        consults = await create_consults(server.url, settings.runs, problems=problems)
        for consult in consults:
            await _admit_patient(server.url, consult)
        runner, page_url = await _blank_site()
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                # One warm-up of each, not counted (first launch of the GPU/media processes).
                await _limit_run(browser, page_url, turn, settings.timeout_s)
                for index, consult in enumerate(consults):
                    log(f"join: run {index + 1}/{len(consults)}")
                    ours.extend(
                        await _our_run(browser, server.url, consult, settings.timeout_s, problems)
                    )
                    limit.extend(await _limit_run(browser, page_url, turn, settings.timeout_s))
                    mesh.extend(
                        await _limit_run(browser, page_url, turn, settings.timeout_s, pages=3)
                    )
                    shown.extend(
                        await _limit_run(
                            browser, page_url, turn, settings.timeout_s, pages=3, show=True
                        )
                    )
            finally:
                await browser.close()
    finally:
        if runner is not None:
            await runner.cleanup()
        if server is not None:
            server.stop()
            problems.extend(f"ours (join): {line}" for line in server.log_problems())
        await turn.stop()
        await db.drop()
    for kind, samples in (
        ("ours", ours),
        ("limit", limit),
        ("mesh limit", mesh),
        ("mesh limit, video shown", shown),
    ):
        failed = [s for s in samples if not math.isfinite(s["first_ms"])]
        if failed:
            problems.append(
                f"join ({kind}): {len(failed)} of {len(samples)} pages saw no remote frame "
                f"within {settings.timeout_s:.0f} s (first error: {failed[0].get('error')})"
            )
    partial = [s for s in ours if math.isfinite(s["first_ms"]) and not math.isfinite(s["all_ms"])]
    if partial:
        problems.append(
            f"join (ours): {len(partial)} of {len(ours)} pages decoded video from only one of "
            f"their two remotes within {settings.timeout_s:.0f} s"
        )
    result = {
        "settings": asdict(settings),
        # Pages that decoded video from only one of their two remotes within the timeout.
        "one_sided": len(partial),
        "ours": {
            "first": summarize(ours, "first_ms"),
            "all": summarize(ours, "all_ms"),
            "in_call": summarize(ours, "in_call_ms"),
            "connected": summarize(ours, "connected_ms"),
            "packets": summarize(ours, "packets_ms"),
            "load": summarize(ours, "load_ms"),
            **{phase: summarize(ours, f"{phase}_ms") for phase in PHASES},
        },
        "limit": {"first": summarize(limit, "first_ms"), "load": summarize(limit, "load_ms")},
        "mesh_limit": {"first": summarize(mesh, "first_ms"), "all": summarize(mesh, "all_ms")},
        "mesh_shown": {"first": summarize(shown, "first_ms"), "all": summarize(shown, "all_ms")},
        "samples": {"ours": ours, "limit": limit, "mesh_limit": mesh, "mesh_shown": shown},
        "problems": problems,
    }
    return result
