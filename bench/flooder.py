"""One abusive client for the flood benchmark: joins its own consult, then sends one event
as fast as the server takes it, with up to `in_flight` acknowledgements outstanding.

    .venv/bin/python -m bench.flooder CONFIG_JSON

CONFIG_JSON: {"url", "token", "event", "payload", "seconds", "in_flight"}. Speaks Engine.IO
v4 / Socket.IO v5 over one WebSocket by hand (no client library between it and the
server). Prints `{"mark": "progress", ...}` every 0.25 s with cumulative counts and a last
`{"result": ...}`; stops by itself after `seconds`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import aiohttp


def _say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


async def flood(config: dict[str, Any]) -> dict[str, Any]:
    url = config["url"].replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    event = json.dumps([config["event"], config["payload"]])
    seconds = float(config["seconds"])
    in_flight = int(config["in_flight"])
    answers: Counter[str] = Counter()
    sent = 0
    outstanding = asyncio.Semaphore(in_flight)
    joined = asyncio.Event()
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, max_msg_size=0) as ws,
    ):

        async def read() -> None:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                frame: str = message.data
                if frame == "2":
                    await ws.send_str("3")
                elif frame.startswith("40"):
                    await ws.send_str('420["join",{"consent":{"accepted":true}}]')
                elif frame.startswith("430["):
                    joined.set()
                elif frame.startswith("43"):
                    body = json.loads(frame[frame.index("[") :])[0]
                    if isinstance(body, dict) and body.get("ok"):
                        answers["ok"] += 1
                    else:
                        code = body.get("error", {}).get("code") if isinstance(body, dict) else None
                        answers[str(code)] += 1
                    outstanding.release()

        opening = await ws.receive(timeout=10)
        assert isinstance(opening.data, str) and opening.data.startswith("0"), opening
        reader = asyncio.create_task(read())
        await ws.send_str("40" + json.dumps({"token": config["token"]}))
        await asyncio.wait_for(joined.wait(), 10)
        started = time.monotonic()
        next_mark = started
        ack_id = 1
        while (now := time.monotonic()) - started < seconds:
            if now >= next_mark:
                _say({"mark": "progress", "t": now, "sent": sent, "answered": dict(answers)})
                next_mark = now + 0.25
            try:
                await asyncio.wait_for(outstanding.acquire(), 0.25)
            except TimeoutError:
                continue
            await ws.send_str(f"42{ack_id}{event}")
            ack_id += 1
            sent += 1
        elapsed = time.monotonic() - started
        reader.cancel()
    return {
        "sent": sent,
        "seconds": elapsed,
        "sent_per_s": sent / elapsed,
        "answered": dict(answers),
    }


def main() -> int:
    with open(sys.argv[1]) as config_file:
        config = json.load(config_file)
    try:
        result = asyncio.run(flood(config))
    except Exception as exc:  # reported to the orchestrator, which notes it
        result = {"error": f"{type(exc).__name__}: {exc}"}
    _say({"result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
