"""aiortc configuration from the server's ICE settings, and trickled candidates from browsers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiortc import RTCConfiguration, RTCIceCandidate, RTCIceServer, RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp


def rtc_configuration(ice: Mapping[str, Any], *, force_relay: bool = False) -> RTCConfiguration:
    """Build aiortc's ``RTCConfiguration`` from the ``ice`` object of a ``join`` ack.

    ``iceServers`` is always passed as a list, even an empty one: aiortc treats
    ``iceServers=None`` (its default) as "use ``stun:stun.l.google.com:19302``", a public
    server that must never be contacted here. With ``[]`` aiortc/aioice gather host
    candidates only (policy ``all``) or nothing (policy ``relay``).

    Under policy ``all``, aioice's host candidates are this machine's *non-loopback*
    addresses (it skips 127.0.0.1) and it resolves remote mDNS (``.local``) candidates by
    multicast; under ``relay`` it gathers only TURN allocations and ignores mDNS candidates.
    Tests therefore run with ``relay`` and a loopback TURN server (or ``force_relay``).

    aiortc uses at most one STUN and one TURN URL (the first of each it can use).
    ``force_relay`` overrides the server's policy with ``relay``.
    """
    servers: list[RTCIceServer] = []
    for server in ice.get("iceServers") or []:
        urls = server.get("urls")
        if isinstance(urls, str):
            urls = [urls]
        if not urls:
            continue
        servers.append(
            RTCIceServer(
                urls=[str(url) for url in urls],
                username=server.get("username"),
                credential=server.get("credential"),
            )
        )
    policy_name = "relay" if force_relay else str(ice.get("iceTransportPolicy") or "all")
    policy = RTCIceTransportPolicy.RELAY if policy_name == "relay" else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


def parse_candidate(init: Mapping[str, Any]) -> RTCIceCandidate | None:
    """An ``RTCIceCandidateInit`` dict as aiortc's ``RTCIceCandidate``.

    Returns ``None`` for an end-of-candidates marker (an empty ``candidate`` string).
    """
    text = str(init.get("candidate") or "").strip()
    if text.startswith("a="):
        text = text[2:]
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    if not text:
        return None
    candidate = candidate_from_sdp(text)
    candidate.sdpMid = init.get("sdpMid")
    line_index = init.get("sdpMLineIndex")
    candidate.sdpMLineIndex = int(line_index) if line_index is not None else None
    return candidate
