"""The REST API's request and answer models (docs/api.md).

The handlers validate with these models and answer through them, and the OpenAPI document
(`/api/v1/openapi.json`) is generated from them: one definition of what the API accepts.
Request bodies are strict: JSON types are never coerced (no `true` or `"1"` for a number, no
date-time for a date), unknown fields are refused.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    field_validator,
)

from models import embed
from models.panel import MEDICATION_FIELDS

# Consult ids are `c_` and URL-safe characters (models/consults.py); anything else in the
# URL cannot name a consult and is answered 404 before the database sees it.
CONSULT_ID_PATTERN = r"^c_[A-Za-z0-9_-]{1,64}$"

# The range a consult may be scheduled in. Outside it, times are mistakes, and the far ends
# overflow date arithmetic (link expiry, time zone conversion).
EARLIEST_SCHEDULE = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST_SCHEDULE = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def refuse_nul(value: Any) -> Any:
    """Text never holds U+0000: Postgres cannot store it, and no name or note needs it."""
    texts = value if isinstance(value, list) else [value]
    if any(isinstance(text, str) and "\x00" in text for text in texts):
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


# JSON dates and times are ISO 8601 text, checked here before pydantic parses them: its
# parser also reads Unix times, even from a string of digits in strict mode. Fields with
# this check parse in lax mode (the check has already refused every non-string).
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date_text(value: Any) -> Any:
    if value is not None and not (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        raise ValueError("must be a date written as YYYY-MM-DD")
    return value


def _iso_datetime_text(value: Any) -> Any:
    if not (isinstance(value, str) and _ISO_DATE.match(value)):
        raise ValueError("must be an ISO 8601 date-time with a UTC offset")
    return value


def _schedulable(value: dt.datetime) -> dt.datetime:
    # Compare years first: converting year 1 or 9999 with an offset to UTC overflows.
    in_range = EARLIEST_SCHEDULE.year - 1 <= value.year <= LATEST_SCHEDULE.year
    if not in_range or not EARLIEST_SCHEDULE <= value.astimezone(dt.UTC) < LATEST_SCHEDULE:
        raise ValueError("must be from 2000-01-01T00:00:00Z up to (not including) 2100-01-01")
    return value


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _medication_model() -> type[BaseModel]:
    """A medication as a clinic may give it at creation: every field of the panel's
    medication (models/panel.py), with the panel's own value types."""
    fields: dict[str, Any] = {}
    for name, spec in MEDICATION_FIELDS.items():
        annotation: Any = Annotated[spec.kind.annotation, AfterValidator(refuse_nul)]
        is_date = spec.kind.name == "date"
        if is_date:
            annotation = Annotated[annotation, BeforeValidator(_iso_date_text)]
        fields[name] = (
            annotation,
            Field(
                ... if spec.required else spec.default,
                title=spec.label,
                strict=False if is_date else None,
            ),
        )
    return create_model(
        "MedicationIn",
        __config__=ConfigDict(extra="forbid", strict=True, frozen=True),
        **fields,
    )


if TYPE_CHECKING:
    MedicationIn = BaseModel
else:
    MedicationIn = _medication_model()


class ConsultCreate(RequestBody):
    patient_name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=200,
            description="Surrounding and repeated spaces are removed.",
        ),
        AfterValidator(refuse_nul),
    ]
    scheduled_at: Annotated[
        AwareDatetime,
        Field(
            description="ISO 8601 with a UTC offset, from 2000-01-01 up to 2100-01-01.",
            strict=False,
            # The range as far as a pattern can say it (the offset may move a time across
            # either end; the validator decides).
            json_schema_extra={"pattern": "^20[0-9]{2}-"},
        ),
        BeforeValidator(_iso_datetime_text),
        AfterValidator(_schedulable),
    ]
    notes: Annotated[str | None, Field(max_length=5000), AfterValidator(refuse_nul)] = None
    medications: list[MedicationIn] = Field(default_factory=list, max_length=100)

    @field_validator("patient_name")
    @classmethod
    def _name_has_text(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("must not be blank")
        return value


class FhirResourceIn(BaseModel):
    """A FHIR R4 Bundle (of MedicationStatements, in the order of its List when it has one)
    or List (of contained MedicationStatements), as JSON (docs/documents.md, "Import")."""

    model_config = ConfigDict(extra="allow", frozen=True)

    resourceType: Literal["Bundle", "List"]  # noqa: N815 (FHIR's spelling)


class ConsultEnd(RequestBody):
    reason: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(refuse_nul)] = (
        "ended by the clinic"
    )


EmbedOrigin = Annotated[
    str,
    Field(
        max_length=300,
        # In the schema for clients; checked by embed_origin, whose messages say what is wrong.
        json_schema_extra={"pattern": embed.ORIGIN_PATTERN},
        description="https://host[:port], lower case, no path or default port; "
        "http only for localhost, 127.0.0.1 and [::1].",
    ),
    AfterValidator(embed.embed_origin),
]


class EmbedSettingsIn(RequestBody):
    """A clinic's embedding settings, replaced as a whole (docs/embed.md)."""

    allowed_origins: list[EmbedOrigin] = Field(
        max_length=embed.MAX_ALLOWED_ORIGINS,
        description="Origins allowed to frame the clinic's embed pages; [] allows none.",
    )
    medication_names_in_events: bool = Field(
        description="Whether the embed's events to the host page may name medications."
    )

    @field_validator("allowed_origins")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        return embed.allowed_origins(value)


# -- answers ------------------------------------------------------------------------------

# Times are sent as Python writes them (`2026-12-01T14:30:00+00:00`), always UTC.
IsoTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
RoleName = Literal["pharmacist", "clinician", "patient"]


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParticipantOut(Answer):
    id: str
    role: RoleName
    display_name: str
    link: str = Field(description="The participant's join link: treat it as a secret.")


class PresentOut(Answer):
    id: str
    role: RoleName
    display_name: str
    state: Literal["in-call", "waiting"]


class LinksOut(Answer):
    pharmacist: str
    clinician: str
    patient: str


class UpdatedByOut(Answer):
    name: str
    role: str


class AuthorOut(Answer):
    id: str | None
    name: str
    role: str


class PanelEntityOut(Answer):
    """A panel entity as docs/protocol.md describes it ("Medication panel")."""

    type: str
    id: str
    position: str
    data: dict[str, Any]
    versions: dict[str, int]
    created_seq: int
    updated_seq: int
    updated_at: IsoTime
    updated_by: UpdatedByOut
    authors: dict[str, AuthorOut] = Field(
        default_factory=dict, description="Per field, who set its current value."
    )


class ConsultOut(Answer):
    id: str
    status: Literal["scheduled", "open", "live", "ended"]
    patient_name: str
    scheduled_at: IsoTime
    notes: str | None
    created_at: IsoTime
    ended_at: IsoTime | None
    end_reason: str | None
    links_expire_at: IsoTime
    participants: list[ParticipantOut]
    links: LinksOut
    present: list[PresentOut]
    opened_at: IsoTime | None
    live_at: IsoTime | None
    visit_started_at: IsoTime | None = Field(
        description="When the patient first entered the call: the visit's time runs from "
        "then (MTM is billed in 15-minute blocks). Null until they do."
    )
    medications: list[PanelEntityOut]


class OpenItemsOut(Answer):
    to_decide: list[str] = Field(description="Recommendations waiting for a decision.")
    to_confirm: list[str] = Field(description="Medications the patient has yet to confirm.")


class PanelOut(Answer):
    seq: int
    medications: list[PanelEntityOut]
    problems: list[PanelEntityOut]
    recommendations: list[PanelEntityOut]
    plan_items: list[PanelEntityOut]
    open: OpenItemsOut


class PanelEventOut(Answer):
    """One change-log event as docs/protocol.md describes it (`panel-event`)."""

    seq: int
    at: IsoTime
    actor: AuthorOut
    op: Literal["add", "set", "move", "derived"]
    entity_type: str
    entity_id: str
    field: str | None
    old: Any
    new: Any
    mutation_id: str | None
    outcome: Literal["applied", "conflict"]
    source: str | None
    detail: dict[str, Any] | None


class EventsOut(Answer):
    seq: int = Field(description="The consult's latest seq.")
    events: list[PanelEventOut]
    next_since: int | None = Field(description="Ask from this seq next; null at the end.")


class ChatAuthorOut(Answer):
    id: str
    role: RoleName
    display_name: str = Field(description="As the author was shown in the call then.")


class ChatMessageOut(Answer):
    id: int = Field(description="Increasing in the order the server accepted the messages.")
    author: ChatAuthorOut
    at: IsoTime
    text: str = Field(description="Plain text as written (1 to 1,000 characters); never markup.")


class ChatOut(Answer):
    messages: list[ChatMessageOut]


class ImportOut(Answer):
    seq: int = Field(description="The consult's latest seq after the import.")
    medications: list[PanelEntityOut] = Field(description="The medications added, in order.")


class EmbedSettingsOut(Answer):
    allowed_origins: list[str]
    medication_names_in_events: bool
    source: Literal["api", "config", "default"] = Field(
        description="api: set through this API; config: embed.clinics; default: neither "
        "(no origin may embed)."
    )
    updated_at: IsoTime | None = Field(description="When the API last set them.")


class FieldErrorOut(Answer):
    field: str
    message: str


class ErrorDetailOut(Answer):
    status: int
    code: str
    message: str
    fields: list[FieldErrorOut] | None = Field(
        None,
        description=(
            "Only for `invalid_body` (each refused field and why) and `invalid_fhir` (each "
            "entry that cannot be read or added, and why)."
        ),
    )


class ErrorOut(Answer):
    error: ErrorDetailOut


class JsonObject(Answer):
    """Any JSON object (the OpenAPI document itself)."""

    model_config = ConfigDict(extra="allow", frozen=True)
