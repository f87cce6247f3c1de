"""Clinic API keys: made by the CLI, stored only as hashes, checked in constant time.

A key is `mtm_` and 32 random bytes (256 bits, URL-safe base64). The configuration holds
`sha256:<hex>` of the key, never the key. A plain SHA-256 is enough here, unlike for
passwords: a slow hash (scrypt, bcrypt) protects guessable secrets against offline guessing,
and a 256-bit random key cannot be guessed, however fast each attempt. It also keeps each
request's check to microseconds instead of tens of milliseconds of CPU on the event loop.
Keys from elsewhere must be just as random (24+ characters from a password generator).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from server.config import ApiKeyEntry

KEY_PREFIX = "mtm_"
HASH_PREFIX = "sha256:"


@dataclass(frozen=True)
class ApiClient:
    """Who a REST request comes from: the clinic of the key it carried."""

    clinic: str  # the internal name: owns consults, appears in config and logs
    display_name: str  # what participants see as the clinic's name
    key_id: str  # a short, non-secret fingerprint of the key (rate limits, logs)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return HASH_PREFIX + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def key_entry(clinic: str, display_name: str, key: str) -> ApiKeyEntry:
    return ApiKeyEntry(clinic=clinic, display_name=display_name, hash=hash_key(key))


def config_line(entry: ApiKeyEntry) -> str:
    """The entry as one YAML list item for `api.keys` in config.yaml."""
    mapping = yaml.safe_dump(
        entry.model_dump(), default_flow_style=True, sort_keys=False, width=10_000
    )
    return f"- {mapping.strip()}"


def authenticate(entries: Sequence[ApiKeyEntry], given: str) -> ApiClient | None:
    """The clinic whose configured hash matches `given`, or None.

    Every configured hash is compared, each with `hmac.compare_digest`, so the time taken
    says nothing about which key (or how much of a hash) matched.
    """
    if not given:
        return None
    digest = hash_key(given)
    found: ApiKeyEntry | None = None
    for entry in entries:
        if hmac.compare_digest(digest, entry.hash):
            found = entry
    if found is None:
        return None
    return ApiClient(
        clinic=found.clinic,
        display_name=found.display_name,
        key_id=found.hash.removeprefix(HASH_PREFIX)[:12],
    )


def display_name_of(entries: Sequence[ApiKeyEntry], clinic: str) -> str | None:
    """The display name of `clinic` (as stored on its consults), for where there is no REST
    request to ask (pages, Socket.IO); None if no key of that clinic is configured now."""
    return next((entry.display_name for entry in entries if entry.clinic == clinic), None)
