"""Embedding the call in a clinic's portal: who may frame it, and what its events may say.

A clinic lists the origins (scheme, host and port of its portal) allowed to embed its
consults; the server sends them as the embed page's `Content-Security-Policy:
frame-ancestors`, so each must be an exact browser origin (a value that is not would either
never match or, with spaces or `;`, change the policy). `medication_names_in_events` lets the
embed's events to the host page name the medication that changed (off: ids only).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import ClinicEmbed

MAX_ALLOWED_ORIGINS = 20

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*"
_PORT = r"(?::[0-9]{1,5})?"
# Browsers treat these as secure contexts over plain http (camera and microphone work).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_LOOPBACK = "|".join(re.escape(host) for host in LOOPBACK_HOSTS)
# What an origin may look like (also the OpenAPI schema's pattern); `embed_origin` decides.
ORIGIN_PATTERN = rf"^(?:https://{_HOST}|http://(?:{_LOOPBACK})){_PORT}$"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def embed_origin(text: str) -> str:
    """`text` if it is an origin a clinic may allow; ValueError saying what is wrong if not.

    An origin is written as a browser sends it: lower case, no path, no default port.
    https only, except for the loopback hosts browsers trust over http (local testing)."""
    if not isinstance(text, str):
        raise ValueError("must be a text origin such as https://portal.example.org")
    shown = text[:80]
    if text != text.lower():
        raise ValueError(f"{shown!r}: write the origin in lower case, as browsers send it")
    if text.startswith("http://") and not re.fullmatch(rf"http://(?:{_LOOPBACK}){_PORT}", text):
        raise ValueError(
            f"{shown!r}: use https (plain http is only allowed for localhost, 127.0.0.1 "
            "and [::1], where browsers allow the camera)"
        )
    if not re.fullmatch(ORIGIN_PATTERN, text):
        raise ValueError(
            f"{shown!r} is not an origin: scheme, host and optional port only, "
            "such as https://portal.example.org or https://portal.example.org:8443"
        )
    scheme, _, rest = text.partition("://")
    host_port = rest.rsplit(":", 1) if not rest.endswith("]") else [rest]
    if len(host_port) == 2:
        port = int(host_port[1])
        if not 1 <= port <= 65535:
            raise ValueError(f"{shown!r}: the port must be from 1 to 65535")
        if port == _DEFAULT_PORTS[scheme]:
            raise ValueError(f"{shown!r}: leave out the default port {port}, as browsers do")
    return text


def allowed_origins(values: list[str]) -> list[str]:
    """A clinic's list of origins, each checked; ValueError for a bad one or a repeat."""
    if len(values) > MAX_ALLOWED_ORIGINS:
        raise ValueError(f"at most {MAX_ALLOWED_ORIGINS} origins")
    checked = [embed_origin(value) for value in values]
    if len(set(checked)) != len(checked):
        raise ValueError("an origin is listed twice")
    return checked


@dataclass(frozen=True)
class ClinicEmbedSettings:
    """What a clinic's embeds may do, and where the setting comes from."""

    allowed_origins: list[str] = field(default_factory=list)
    medication_names_in_events: bool = False
    # "api": set through the REST API (stored); "config": from embed.clinics; "default":
    # neither, so no origin may embed the clinic's consults.
    source: Literal["api", "config", "default"] = "default"
    updated_at: dt.datetime | None = None


async def stored_settings(session: AsyncSession, clinic: str) -> ClinicEmbedSettings | None:
    """The settings a clinic stored through the REST API, or None if it never did."""
    row = (
        await session.execute(select(ClinicEmbed).where(ClinicEmbed.clinic == clinic))
    ).scalar_one_or_none()
    if row is None:
        return None
    return ClinicEmbedSettings(
        allowed_origins=list(row.allowed_origins),
        medication_names_in_events=row.medication_names_in_events,
        source="api",
        updated_at=row.updated_at,
    )


async def store_settings(
    session: AsyncSession,
    clinic: str,
    origins: list[str],
    *,
    medication_names_in_events: bool,
    now: dt.datetime,
) -> ClinicEmbedSettings:
    """Replace the clinic's stored settings (committed). Two first writes at once: the
    loser of the insert updates the winner's row, so the later call's values stay."""
    checked = allowed_origins(origins)
    for attempt in (1, 2):
        try:
            async with session.begin():
                row = (
                    await session.execute(select(ClinicEmbed).where(ClinicEmbed.clinic == clinic))
                ).scalar_one_or_none()
                if row is None:
                    row = ClinicEmbed(clinic=clinic)
                    session.add(row)
                row.allowed_origins = checked
                row.medication_names_in_events = medication_names_in_events
                row.updated_at = now
            break
        except IntegrityError:
            if attempt == 2:
                raise
    return ClinicEmbedSettings(
        allowed_origins=checked,
        medication_names_in_events=medication_names_in_events,
        source="api",
        updated_at=now,
    )
