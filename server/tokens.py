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


class LinkSigner:
    def __init__(self, secret: str) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 characters")
        self._key = hashlib.sha256(b"mtm-consult link token\x00" + secret.encode()).digest()

    def _signature(self, payload: str) -> str:
        return _b64encode(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def sign(self, claims: LinkClaims) -> str:
        body = {
            "v": _VERSION,
            "c": claims.consult_id,
            "p": claims.participant_id,
            "r": claims.role.value,
            "exp": claims.expires_at,
            "jti": claims.token_id,
        }
        payload = _b64encode(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._signature(payload)}"

    def verify(self, token: str, *, now: float, allow_expired: bool = False) -> LinkClaims:
        """The claims of a genuine, unexpired token; TokenError otherwise.

        `allow_expired` accepts a genuine token past its expiry (the patient's read-only
        record after the consult, whose own window the caller checks).
        """
        if (
            not isinstance(token, str)
            or len(token) > 2048
            or not token.isascii()  # a signed token is base64url; other text cannot be one
            or token.count(".") != 1
        ):
            raise TokenError("invalid_token", "This link is not valid.")
        payload, signature = token.split(".")
        if not hmac.compare_digest(self._signature(payload), signature):
            raise TokenError("invalid_token", "This link is not valid.")
        try:
            body = json.loads(_b64decode(payload))
            claims = LinkClaims(
                consult_id=str(body["c"]),
                participant_id=str(body["p"]),
                role=Role(body["r"]),
                expires_at=int(body["exp"]),
                token_id=str(body["jti"]),
            )
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise TokenError("invalid_token", "This link is not valid.") from None
        if body.get("v") != _VERSION:
            raise TokenError("invalid_token", "This link is not valid.")
        if claims.expires_at <= now and not allow_expired:
            raise TokenError("expired_token", "This link has expired.")
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


class ResponseSigner:
    """Signs the prescriber's response links, with a key of their own (a join token can
    never pass for a response link, nor the reverse). The same claims always give the same
    link, so a letter is the same document each time it is made."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 characters")
        self._key = hashlib.sha256(
            b"mtm-consult prescriber response\x00" + secret.encode()
        ).digest()

    def _signature(self, payload: str) -> str:
        return _b64encode(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def sign(self, claims: ResponseClaims) -> str:
        body = {
            "v": _VERSION,
            "c": claims.consult_id,
            "r": claims.recommendation_id,
            "b": claims.base_version,
            "exp": claims.expires_at,
        }
        payload = _b64encode(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._signature(payload)}"

    def verify(self, token: str, *, now: float) -> ResponseClaims:
        """The claims of a genuine, unexpired link; TokenError otherwise."""
        if (
            not isinstance(token, str)
            or len(token) > 1024
            or not token.isascii()
            or token.count(".") != 1
        ):
            raise TokenError("invalid_token", "This link is not valid.")
        payload, signature = token.split(".")
        if not hmac.compare_digest(self._signature(payload), signature):
            raise TokenError("invalid_token", "This link is not valid.")
        try:
            body = json.loads(_b64decode(payload))
            claims = ResponseClaims(
                consult_id=str(body["c"]),
                recommendation_id=str(body["r"]),
                base_version=int(body["b"]),
                expires_at=int(body["exp"]),
            )
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise TokenError("invalid_token", "This link is not valid.") from None
        if body.get("v") != _VERSION:
            raise TokenError("invalid_token", "This link is not valid.")
        if claims.expires_at <= now:
            raise TokenError("expired_token", "This link has expired.")
        return claims
