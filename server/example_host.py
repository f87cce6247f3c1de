"""The example clinic portal (web/examples/), served at a second origin by `serve --demo` so
the demo shows the call embedded in another site, as a clinic's portal would embed it.

Its headers are those a portal needs to embed the call: the call's origin in `frame-src`
and `script-src` (the SDK is loaded from there), and camera, microphone, screen sharing,
autoplay and fullscreen delegated to that origin in `Permissions-Policy` (a portal whose
policy names only `self` keeps them from the frame, whatever its `allow` attribute says).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from server.security import Handler

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "web" / "examples"
_FILES = {
    "/": ("host.html", "text/html"),
    "/host.js": ("host.js", "text/javascript"),
    "/host.css": ("host.css", "text/css"),
}
DELEGATED_FEATURES = ("camera", "microphone", "display-capture", "autoplay", "fullscreen")


def host_headers(call_origin: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": "; ".join(
            [
                "default-src 'self'",
                f"script-src 'self' {call_origin}",
                f"frame-src {call_origin}",
                "style-src 'self'",
                "img-src 'self' data:",
                "connect-src 'self'",
                "base-uri 'none'",
                "form-action 'self'",
                "frame-ancestors 'none'",
            ]
        ),
        "Permissions-Policy": ", ".join(
            f'{feature}=(self "{call_origin}")' for feature in DELEGATED_FEATURES
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def example_host_app(call_origin: str) -> web.Application:
    """The example portal, embedding calls served at `call_origin` (scheme://host:port)."""
    headers = host_headers(call_origin)

    def serve(name: str, content_type: str) -> Handler:
        path = EXAMPLES_DIR / name

        async def handler(request: web.Request) -> web.StreamResponse:
            return web.FileResponse(
                path, headers={**headers, "Content-Type": f"{content_type}; charset=utf-8"}
            )

        return handler

    app = web.Application()
    for route, (name, content_type) in _FILES.items():
        app.router.add_get(route, serve(name, content_type))
    return app
