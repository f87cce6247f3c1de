"""ICE servers handed to each participant, with coturn `use-auth-secret` credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from server.config import IceSettings


def turn_credentials(secret: str, name: str, *, now: float, ttl_seconds: int) -> tuple[str, str]:
    """coturn's REST-API scheme: username `<expiry>:<name>`, password b64(HMAC-SHA1)."""
    username = f"{int(now) + ttl_seconds}:{name}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_configuration(settings: IceSettings, participant_id: str, *, now: float) -> dict[str, Any]:
    """An RTCConfiguration-shaped dict: `{iceServers, iceTransportPolicy}`."""
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls and settings.turn_secret:
        username, credential = turn_credentials(
            settings.turn_secret, participant_id, now=now, ttl_seconds=settings.turn_ttl_seconds
        )
        servers.append(
            {"urls": list(settings.turn_urls), "username": username, "credential": credential}
        )
    return {"iceServers": servers, "iceTransportPolicy": settings.transport_policy}
