"""Security headers and an access log that never records join tokens."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self' ws: wss:",
        "frame-ancestors 'self'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
)

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # Join links carry a token in the path; never send it on as a Referer.
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self)",
    "Cross-Origin-Opener-Policy": "same-origin",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        raise
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/c/"):
        response.headers["Cache-Control"] = "no-store"
    return response


@web.middleware
async def plain_websockets(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Socket.IO WebSockets without permessage-deflate.

    Its messages are small (an edit is ~1 KB) and compressing every frame in both
    directions costs more CPU than the bytes it saves on the edit path; engine.io gives no
    option for it, so the offer is removed from the upgrade request.
    """
    if request.path.startswith("/socket.io/") and "Sec-WebSocket-Extensions" in request.headers:
        headers = request.headers.copy()
        del headers["Sec-WebSocket-Extensions"]
        request = request.clone(headers=headers)
    return await handler(request)


_SECRET_PATH = re.compile(r"^/c/[^/?#]+")


def redact_path(path: str) -> str:
    """The request path with any join token replaced, safe to log."""
    return _SECRET_PATH.sub("/c/<token>", path)


class RedactingAccessLogger(AbstractAccessLogger):
    """`METHOD path status bytes time`, with join tokens and query strings removed."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %s %.1fms",
            request.method,
            redact_path(request.path),
            response.status,
            response.body_length,
            time * 1000,
        )
