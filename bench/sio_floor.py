"""The floor of our own stack for the capacity benchmark: bench/node/sio_server.js's rooms
and join, line for line, on the libraries our server runs on (python-socketio on aiohttp,
with uvloop, our JSON module and our text-only packets), with no database, no validation
and no audit.

    python -m bench.sio_floor --port <port> --ping-interval <seconds>

Ours over this floor is what our join itself costs; this floor over the Node peer is what
the Python Socket.IO stack costs before our code does anything.
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio
import uvloop
from aiohttp import web

from server import fastjson
from signaling.wire import TextPacket


def make_app(ping_interval: float) -> web.Application:
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        transports=["websocket"],
        ping_interval=ping_interval,
        ping_timeout=20,
        max_http_buffer_size=4 * 65536,
        json=fastjson,
        serializer=TextPacket,
    )
    app = web.Application()

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/", ok)
    sio.attach(app)
    members: dict[str, tuple[str, str]] = {}  # sid -> (room, member id)

    @sio.event
    async def connect(sid: str, _environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or ":" not in token:
            raise socketio.exceptions.ConnectionRefusedError(
                "missing_token", {"code": "missing_token", "message": "Connect with auth {token}."}
            )
        room = token.split(":", 1)[0]
        members[sid] = (room, token)

    @sio.event
    async def join(sid: str, _payload: Any = None) -> dict[str, Any]:
        room, member = members[sid]
        await sio.enter_room(sid, room)
        others = [
            members[other][1]
            for other, _ in sio.manager.get_participants("/", room)
            if other != sid and other in members
        ]
        await sio.emit(
            "participant-joined", {"participant": {"id": member}}, room=room, skip_sid=sid
        )
        return {
            "ok": True,
            "self": {"id": member},
            "roster": [{"id": other} for other in others],
            "panel": {"seq": 0, "entities": []},
        }

    @sio.event
    async def disconnect(sid: str, _reason: Any = None) -> None:
        room, member = members.pop(sid, ("", ""))
        if room:
            await sio.emit(
                "participant-left", {"participant_id": member, "reason": "disconnected"}, room=room
            )

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ping-interval", type=float, default=25.0)
    args = parser.parse_args()
    uvloop.install()
    web.run_app(make_app(args.ping_interval), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
