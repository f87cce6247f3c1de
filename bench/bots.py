"""A process holding k synthetic (aiortc) participants, for measuring what one costs.

    python -m bench.bots <base_url> <token> [<token>...] --window 15 --ready-timeout 60

Joins each token as a `SyntheticParticipant` (640x480 at 15 fps, plus a tone), waits until
every bot is decoding frames from its remote and `--warm` more seconds have passed, then
measures this process's CPU time (all threads) and the frames decoded and sent over
`--window` seconds. Prints one JSON line and exits. Everything is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from typing import Any

from media.synthetic import SyntheticParticipant


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _frames(bots: list[SyntheticParticipant]) -> tuple[int, int]:
    received = sum(sum(bot.frames_received.values()) for bot in bots)
    sent = 0
    for bot in bots:
        for peer in bot._peers.values():  # noqa: SLF001 - read-only counters for the report
            sent += sum(
                getattr(track, "frames_sent", 0) for track in peer.tracks if track.kind == "video"
            )
    return received, sent


async def main(args: argparse.Namespace) -> dict[str, Any]:
    bots = [
        SyntheticParticipant(
            args.base_url,
            token,
            display_name=f"Bench bot {i}",
            width=args.width,
            height=args.height,
            fps=args.fps,
        )
        for i, token in enumerate(args.tokens)
    ]
    started = time.monotonic()
    try:
        await asyncio.gather(*(bot.start() for bot in bots))
        print(json.dumps({"mark": "joined"}), flush=True)
        await asyncio.gather(
            *(bot.wait_for_frames(count=5, timeout=args.ready_timeout) for bot in bots)
        )
        ready_s = time.monotonic() - started
        await asyncio.sleep(args.warm)
        print(json.dumps({"mark": "window-start"}), flush=True)
        cpu0, wall0 = _cpu_seconds(), time.monotonic()
        received0, sent0 = _frames(bots)
        await asyncio.sleep(args.window)
        cpu1, wall1 = _cpu_seconds(), time.monotonic()
        received1, sent1 = _frames(bots)
        print(json.dumps({"mark": "window-end"}), flush=True)
    finally:
        await asyncio.gather(*(bot.stop() for bot in bots), return_exceptions=True)
    wall = wall1 - wall0
    return {
        "bots": len(bots),
        "ready_s": ready_s,
        "window_s": wall,
        "cpu_pct": 100 * (cpu1 - cpu0) / wall,
        "received_fps_per_bot": (received1 - received0) / wall / len(bots),
        "sent_fps_per_bot": (sent1 - sent0) / wall / len(bots),
        "errors": [e for bot in bots for e in bot.errors],
    }


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bots")
    parser.add_argument("base_url")
    parser.add_argument("tokens", nargs="+")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--warm", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=15.0)
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    async def bounded() -> dict[str, Any]:
        limit = args.ready_timeout + args.warm + args.window + 30
        async with asyncio.timeout(limit):
            return await main(args)

    try:
        result = asyncio.run(bounded())
    except Exception as exc:  # reported to the orchestrator as data, not a traceback
        print(json.dumps({"result": {"error": f"{type(exc).__name__}: {exc}"}}), flush=True)
        return 1
    print(json.dumps({"result": result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
