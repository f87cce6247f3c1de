"""Signed join-link tokens: `<payload>.<signature>`, both base64url, HMAC-SHA256.

The payload names the consult, the participant, the role, an expiry and a unique id; the
server also checks at use time that the consult has not ended and the id is the
participant's current one, so ending a consult revokes its links.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from models.errors import Refused
from models.roles import Role

_VERSION = 1


class TokenError(Refused):
    """The token cannot be used; `code` says why (docs/protocol.md lists the codes)."""


@dataclass(frozen=True)
class LinkClaims:
    consult_id: str
    participant_id: str
    role: Role
    expires_at: int  # unix seconds
    token_id: str


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _SignedTokens:
    """`<payload>.<signature>` with a key derived for one purpose (`domain`), so a token of
    one kind can never pass for another."""

    def __init__(self, secret: str, domain: bytes, max_length: int) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 characters")
        self._key = hashlib.sha256(domain + b"\x00" + secret.encode()).digest()
        self._max_length = max_length

    def _signature(self, payload: str) -> str:
        return _b64encode(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def _seal(self, body: dict[str, object]) -> str:
        payload = _b64encode(json.dumps({"v": _VERSION, **body}, separators=(",", ":")).encode())
        return f"{payload}.{self._signature(payload)}"

    def _open(self, token: str) -> dict[str, Any]:
        """The body of a genuine token of this kind; TokenError("invalid_token") otherwise."""
        if (
            not isinstance(token, str)
            or len(token) > self._max_length
            or not token.isascii()  # a signed token is base64url; other text cannot be one
            or token.count(".") != 1
        ):
            raise TokenError("invalid_token", "This link is not valid.")
        payload, signature = token.split(".")
        if not hmac.compare_digest(self._signature(payload), signature):
            raise TokenError("invalid_token", "This link is not valid.")
        try:
            body = json.loads(_b64decode(payload))
        except (binascii.Error, ValueError):
            raise TokenError("invalid_token", "This link is not valid.") from None
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise TokenError("invalid_token", "This link is not valid.")
        return body


def _unexpired(expires_at: int, now: float) -> None:
    if expires_at <= now:
        raise TokenError("expired_token", "This link has expired.")


class LinkSigner(_SignedTokens):
    def __init__(self, secret: str) -> None:
        super().__init__(secret, b"mtm-consult link token", max_length=2048)

    def sign(self, claims: LinkClaims) -> str:
        return self._seal(
            {
                "c": claims.consult_id,
                "p": claims.participant_id,
                "r": claims.role.value,
                "exp": claims.expires_at,
                "jti": claims.token_id,
            }
        )

    def verify(self, token: str, *, now: float, allow_expired: bool = False) -> LinkClaims:
        """The claims of a genuine, unexpired token; TokenError otherwise.

        `allow_expired` accepts a genuine token past its expiry (the patient's read-only
        record after the consult, whose own window the caller checks).
        """
        body = self._open(token)
        try:
            claims = LinkClaims(
                consult_id=str(body["c"]),
                participant_id=str(body["p"]),
                role=Role(body["r"]),
                expires_at=int(body["exp"]),
                token_id=str(body["jti"]),
            )
        except (ValueError, KeyError, TypeError):
            raise TokenError("invalid_token", "This link is not valid.") from None
        if not allow_expired:
            _unexpired(claims.expires_at, now)
        return claims


@dataclass(frozen=True)
class ResponseClaims:
    """A prescriber letter's link to answer one recommendation."""

    consult_id: str
    recommendation_id: str
    # The version of the recommendation's status the letter showed: the link answers
    # that decision only, once.
    base_version: int
    expires_at: int  # unix seconds


class ResponseSigner(_SignedTokens):
    """Signs the prescriber's response links, with a key of their own (a join token can
    never pass for a response link, nor the reverse). The same claims always give the same
    link, so a letter is the same document each time it is made."""

    def __init__(self, secret: str) -> None:
        super().__init__(secret, b"mtm-consult prescriber response", max_length=1024)

    def sign(self, claims: ResponseClaims) -> str:
        return self._seal(
            {
                "c": claims.consult_id,
                "r": claims.recommendation_id,
                "b": claims.base_version,
                "exp": claims.expires_at,
            }
        )

    def verify(self, token: str, *, now: float) -> ResponseClaims:
        """The claims of a genuine, unexpired link; TokenError otherwise."""
        body = self._open(token)
        try:
            claims = ResponseClaims(
                consult_id=str(body["c"]),
                recommendation_id=str(body["r"]),
                base_version=int(body["b"]),
                expires_at=int(body["exp"]),
            )
        except (ValueError, KeyError, TypeError):
            raise TokenError("invalid_token", "This link is not valid.") from None
        _unexpired(claims.expires_at, now)
        return claims
