"""Security headers and an access log that never records join tokens."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Middleware

from server.config import ServerSettings

# Browser features a consult page uses (its own origin only) and those it never needs.
PERMISSIONS_POLICY = ", ".join(
    [
        "camera=(self)",
        "microphone=(self)",
        "display-capture=(self)",
        "geolocation=()",
        "payment=()",
        "usb=()",
        "serial=()",
        "bluetooth=()",
        "midi=()",
        "magnetometer=()",
        "gyroscope=()",
        "accelerometer=()",
    ]
)

# Sent on every response received over TLS: browsers then refuse plain http for a year.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def content_security_policy(public_url: str | None, frame_ancestors: Sequence[str] = ()) -> str:
    """The pages' CSP. Scripts and connections go to this origin only: `'self'` covers the
    page's own ws:/wss: Socket.IO connection, and `public_url`'s WebSocket origin is
    listed too for browsers that read `'self'` as http(s) only. A WebSocket to any other
    host is blocked (the old `ws: wss:` allowed every host).

    No page may be framed (`frame-ancestors 'none'`), except an embed page, which passes
    its clinic's allowed origins as `frame_ancestors` (checked by models/embed.py: exact
    origins, so no value can add a directive)."""
    connect = ["'self'"]
    if public_url is not None:
        origin = urlsplit(public_url)
        scheme = "wss" if origin.scheme == "https" else "ws"
        connect.append(f"{scheme}://{origin.netloc}")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            "connect-src " + " ".join(connect),
            "frame-ancestors " + (" ".join(frame_ancestors) or "'none'"),
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


def served_over_tls(request: web.BaseRequest, *, trust_forwarded: bool) -> bool:
    """Whether the browser reached us over https: directly, or (`trust_forwarded`) through a
    proxy that says so in X-Forwarded-Proto (its first value: the client-facing hop)."""
    if request.secure:
        return True
    if not trust_forwarded:
        return False
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    return forwarded.split(",", 1)[0].strip().lower() == "https"


def security_headers(server: ServerSettings) -> Middleware:
    """A middleware adding the security headers to every response, errors included."""
    headers = {
        "Content-Security-Policy": content_security_policy(server.public_url),
        "X-Content-Type-Options": "nosniff",
        # Join links carry a token in the path; never send it on as a Referer.
        "Referrer-Policy": "no-referrer",
        "Permissions-Policy": PERMISSIONS_POLICY,
        "Cross-Origin-Opener-Policy": "same-origin",
    }

    def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if served_over_tls(request, trust_forwarded=server.trust_forwarded):
            response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            add_headers(request, exc)
            raise
        add_headers(request, response)
        if request.path.startswith(("/c/", "/r/", "/embed/")):
            response.headers["Cache-Control"] = "no-store"
        return response

    return middleware


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


# Join links (/c/, /embed/) and the prescriber's response links (/r/) carry a secret token.
_SECRET_PATH = re.compile(r"^/(c|r|embed)/[^/?#]+")


def redact_path(path: str) -> str:
    """The request path with any join or response token replaced, safe to log."""
    return _SECRET_PATH.sub(r"/\1/<token>", path)


# Longer paths are cut in the log (a client may send a 5,000-character one).
_MAX_LOGGED_PATH = 200


class RedactingAccessLogger(AbstractAccessLogger):
    """`METHOD path status`, with join tokens and query strings removed; bytes and time as
    structured fields (server/logs.py)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = redact_path(request.path)[:_MAX_LOGGED_PATH]
        match_info = request.match_info if isinstance(request, web.Request) else {}
        self.logger.info(
            "%s %s %s",
            request.method,
            path,
            response.status,
            extra={
                "method": request.method,
                "path": path,
                "status": response.status,
                "bytes": response.body_length,
                "duration_ms": round(time * 1000, 2),
                "consult_id": match_info.get("consult_id"),
            },
        )
