"""Payload schemas of the client → server events (docs/protocol.md).

Strict: a payload is JSON, so a value has exactly the JSON type its field names, with no
coercion (`true` is not 1, `"1"` is not a number, `1` is not `true`).
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from documents.text import Language
from models.errors import Refused
from models.mutations import MAX_SEQ  # the largest seq the database stores


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class EmptyPayload(_Payload):
    """`admit-all` and `leave`: nothing, or `{}`."""


class Consent(_Payload):
    accepted: bool
    # The language of the consent text the person was shown (and so accepted); the server
    # records that text. Left out: the default text (English).
    language: Language = "en"

    @field_validator("accepted")
    @classmethod
    def _only_true(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError("must be true (leave consent out to not give it)")
        return value


MicrophoneState = Literal["on", "off"]
CameraState = Literal["on", "off", "audio-only"]


class MediaPayload(_Payload):
    """`media`, and `join`'s `media`: what the sender's microphone and camera do now."""

    microphone: MicrophoneState
    camera: CameraState


class JoinPayload(_Payload):
    display_name: str | None = None
    consent: Consent | None = None
    media: MediaPayload | None = None
    # The page's session, the same across its reconnects: the others then keep their media
    # connections to it (docs/protocol.md, "join").
    session: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{8,64}$")

    @field_validator("display_name")
    @classmethod
    def _trimmed_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = " ".join(value.split())
        if not 1 <= len(value) <= 80:
            raise ValueError("must be 1 to 80 characters")
        return value


class SessionDescription(_Payload):
    type: Literal["offer", "answer", "pranswer", "rollback"]
    sdp: str = ""

    @model_validator(mode="after")
    def _sdp_unless_rollback(self) -> SessionDescription:
        if self.type != "rollback" and not self.sdp:
            raise ValueError(f"'sdp' is required for type {self.type!r}")
        return self


class IceCandidate(_Payload):
    candidate: str = Field(max_length=4096)
    sdpMid: str | None = Field(None, max_length=64)  # noqa: N815 - WebRTC's own names
    sdpMLineIndex: int | None = Field(None, ge=0, le=1024)  # noqa: N815
    usernameFragment: str | None = Field(None, max_length=256)  # noqa: N815


class SignalPayload(_Payload):
    to: str = Field(min_length=1, max_length=64)
    description: SessionDescription | None = None
    candidate: IceCandidate | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> SignalPayload:
        kinds = {"description", "candidate"} & self.model_fields_set
        if len(kinds) != 1:
            raise ValueError("give exactly one of 'description' or 'candidate'")
        if "description" in kinds and self.description is None:
            raise ValueError("'description' must be an object")
        return self

    def relayed(self, sender_id: str) -> dict[str, object]:
        if "description" in self.model_fields_set:
            assert self.description is not None
            return {"from": sender_id, "description": self.description.model_dump()}
        candidate = None if self.candidate is None else self.candidate.model_dump()
        return {"from": sender_id, "candidate": candidate}


class ParticipantPayload(_Payload):
    participant_id: str = Field(min_length=1, max_length=64)


class EndPayload(_Payload):
    reason: str = Field("ended by the pharmacist", min_length=1, max_length=500)


class ProbePayload(_Payload):
    description: SessionDescription | None = None

    @field_validator("description")
    @classmethod
    def _an_offer(cls, value: SessionDescription | None) -> SessionDescription | None:
        if value is not None and (value.type != "offer" or not value.sdp):
            raise ValueError("must be an offer with its SDP")
        return value


class ChatPayload(_Payload):
    """`chat`: the domain (models/chat.py) trims it and checks its length and characters;
    this bound only keeps an absurd payload from reaching it."""

    text: str = Field(max_length=10_000)


class PanelSyncPayload(_Payload):
    since: int | None = Field(None, ge=0, le=MAX_SEQ)


class PanelHistoryPayload(_Payload):
    entity_id: str = Field(min_length=1, max_length=64)


def describe_validation_error(exc: ValidationError) -> str:
    """One sentence naming each bad field, without echoing the submitted values."""
    parts = []
    for error in exc.errors():
        # A key the client made up is named back to it, cut short.
        field = ".".join(str(part)[:64] for part in error["loc"]) or "payload"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "is not a known field"
        elif error["type"] == "model_type":
            message = "must be an object"
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


class EventRefused(Refused):
    """An event is refused and nothing changed; `code` is from docs/protocol.md."""


PayloadT = TypeVar("PayloadT", bound=BaseModel)


def parse(model: type[PayloadT], data: Any) -> PayloadT:
    """`data` validated as `model`, or EventRefused naming the bad field."""
    if not isinstance(data, dict):
        raise EventRefused("invalid_payload", "The payload must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise EventRefused("invalid_payload", describe_validation_error(exc)) from None
