"""ICE servers handed to each participant, with coturn `use-auth-secret` credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac

from server.config import IceSettings
from signaling.backend import IceConfiguration, IceServer


def turn_credentials(secret: str, name: str, *, now: float, ttl_seconds: int) -> tuple[str, str]:
    """coturn's REST-API scheme: username `<expiry>:<name>`, password b64(HMAC-SHA1)."""
    username = f"{int(now) + ttl_seconds}:{name}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_configuration(
    settings: IceSettings, participant_id: str, *, now: float
) -> IceConfiguration:
    """The servers `participant_id` may use, TURN with credentials of its own."""
    servers: list[IceServer] = []
    if settings.stun_urls:
        servers.append(IceServer(urls=tuple(settings.stun_urls)))
    if settings.turn_urls and settings.turn_secret:
        username, credential = turn_credentials(
            settings.turn_secret, participant_id, now=now, ttl_seconds=settings.turn_ttl_seconds
        )
        servers.append(
            IceServer(urls=tuple(settings.turn_urls), username=username, credential=credential)
        )
    return IceConfiguration(servers=tuple(servers), transport_policy=settings.transport_policy)
