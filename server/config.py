"""Settings: defaults in code, overridden by a YAML file, overridden by environment variables.

`config.yaml` at the repository root documents every key; its values equal the defaults here
(a test keeps the two in step).
"""

from __future__ import annotations

import os
import re
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from documents.text import LANGUAGES, Language
from models import embed

ENV_PREFIX = "MTM_"


class ConfigError(Exception):
    """A setting is missing, unknown or has a value that is not allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = None
    max_body_bytes: int = Field(65536, ge=1024)
    uvloop: bool = True
    trust_forwarded: bool = False

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value


class PathSettings(_Section):
    var_dir: Path = Path("var")


class DatabaseSettings(_Section):
    url: str = "sqlite+aiosqlite:///var/mtm.sqlite3"
    auto_migrate: bool = True

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// (an async driver)"
            )
        return value


class RedisSettings(_Section):
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class AuthSettings(_Section):
    token_secret: str | None = Field(None, min_length=32)
    link_ttl_hours: float = Field(24, gt=0, le=24 * 365)


API_KEY_HASH_PATTERN = r"^sha256:[0-9a-f]{64}$"
CLINIC_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
API_KEY_COMMAND = "mtm-consult api-key create --name <clinic>"


class ApiKeyEntry(_Section):
    """One clinic API key as configured: its hash, never the key itself (server/api_keys.py)."""

    clinic: str = Field(pattern=CLINIC_NAME_PATTERN)
    display_name: str = Field(min_length=1, max_length=200)
    hash: str

    @field_validator("hash")
    @classmethod
    def _is_a_hash(cls, value: str) -> str:
        value = value.lower()
        if not re.fullmatch(API_KEY_HASH_PATTERN, value):
            raise ValueError(
                "must be sha256:<64 hex digits>, the hash `" + API_KEY_COMMAND + "` prints "
                "(never the key itself)"
            )
        return value


class ApiSettings(_Section):
    keys: list[ApiKeyEntry] = Field(default_factory=list)
    rate_limit_per_minute: int = Field(600, ge=1, le=1_000_000, strict=True)
    rate_limit_burst: int = Field(60, ge=1, le=1_000_000, strict=True)

    @field_validator("keys", mode="before")
    @classmethod
    def _no_plain_keys(cls, value: Any) -> Any:
        # The former format mapped clinic names to plain-text keys; refuse it without ever
        # echoing a value, and say how to make the hashed entries that replace it.
        if isinstance(value, Mapping):
            raise ValueError(
                "plain-text keys are not accepted; list hashed entries "
                "({clinic, display_name, hash}) made by `" + API_KEY_COMMAND + "`"
            )
        return value

    @field_validator("keys")
    @classmethod
    def _consistent_keys(cls, value: list[ApiKeyEntry]) -> list[ApiKeyEntry]:
        hashes = [entry.hash for entry in value]
        if len(set(hashes)) != len(hashes):
            raise ValueError("the same key hash is listed twice")
        display_names: dict[str, str] = {}
        for entry in value:
            if display_names.setdefault(entry.clinic, entry.display_name) != entry.display_name:
                raise ValueError(
                    f"the keys of clinic {entry.clinic!r} give different display names"
                )
        return value


class IceSettings(_Section):
    stun_urls: list[str] = Field(default_factory=list)
    turn_urls: list[str] = Field(default_factory=list)
    turn_secret: str | None = None
    turn_ttl_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600)
    transport_policy: Literal["all", "relay"] = "all"

    @field_validator("stun_urls")
    @classmethod
    def _stun_scheme(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("stun:", "stuns:")):
                raise ValueError(f"{url!r} does not start with stun: or stuns:")
        return value

    @field_validator("turn_urls")
    @classmethod
    def _turn_scheme(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("turn:", "turns:")):
                raise ValueError(f"{url!r} does not start with turn: or turns:")
        return value

    @model_validator(mode="after")
    def _turn_is_complete(self) -> IceSettings:
        if self.turn_urls and not self.turn_secret:
            raise ValueError("turn_secret is required when turn_urls is set")
        if self.transport_policy == "relay" and not self.turn_urls:
            raise ValueError("transport_policy 'relay' needs at least one of turn_urls")
        return self


class SignalingSettings(_Section):
    max_message_bytes: int = Field(65536, ge=4096, le=16 * 1024 * 1024)
    ping_interval: float = Field(25, gt=0)
    ping_timeout: float = Field(20, gt=0)
    events_per_second: float = Field(20, gt=0, le=100_000)
    event_burst: int = Field(100, ge=1, le=1_000_000)
    connections_per_token: int = Field(5, ge=1, le=1000)
    participants_per_consult: int = Field(6, ge=2, le=1000)
    panel_sync_max_events: int = Field(500, ge=0, le=100_000)
    presence_ttl_seconds: float = Field(10, ge=0.5, le=300)


AdmitRole = Literal["pharmacist", "clinician"]
DEFAULT_ADMIT_ROLES: tuple[AdmitRole, ...] = ("pharmacist", "clinician")


class ConsultSettings(_Section):
    rejoin_grace_seconds: float = Field(120, ge=0, le=3600)
    # The others see a dropped participant as reconnecting this long, then as having left.
    reconnect_grace_seconds: float = Field(30, ge=0, le=3600)
    patient_may_share_screen: bool = False
    # Who may admit a patient from the waiting room, or deny them (they see the waiting room
    # and hear its chime); removing someone and ending the consult stay the pharmacist's.
    admit_roles: list[AdmitRole] = Field(
        default_factory=lambda: list(DEFAULT_ADMIT_ROLES), min_length=1
    )
    patient_access_days: int = Field(30, ge=0, le=3650)
    max_panel_entries: int = Field(300, ge=10, le=10_000)


DEFAULT_CONSENT_TEXT = (
    "I agree to take part in this medication review by secure video with my pharmacist and "
    "my care team. I understand it is a telehealth visit, that it is not recorded unless I "
    "agree separately, and that I can stop at any time."
)


DEFAULT_CONSENT_TRANSLATIONS: dict[Language, str] = {
    "es": (
        "Acepto participar en esta revisión de medicamentos por video seguro con mi "
        "farmacéutico y mi equipo de atención. Entiendo que es una visita de telesalud, que "
        "no se graba salvo que yo lo acepte aparte, y que puedo terminarla en cualquier "
        "momento."
    ),
}


class ConsentSettings(_Section):
    required_roles: list[Literal["pharmacist", "clinician", "patient"]] = ["patient"]
    text: str = Field(DEFAULT_CONSENT_TEXT, min_length=1, max_length=5000)
    # The same consent in the pages' other languages; a language without one shows `text`.
    translations: dict[Language, str] = Field(
        default_factory=lambda: dict(DEFAULT_CONSENT_TRANSLATIONS)
    )

    @field_validator("translations")
    @classmethod
    def _translated_texts(cls, value: dict[Language, str]) -> dict[Language, str]:
        for language, text in value.items():
            if not 1 <= len(text) <= 5000:
                raise ValueError(f"{language}: the text must be 1-5000 characters")
        return value

    def text_for(self, language: Language) -> str:
        """The consent a person reads on a page in `language` (and so the one they accept)."""
        return self.translations.get(language, self.text)

    def texts(self) -> dict[Language, str]:
        """The consent in every language the pages are offered in."""
        return {language: self.text_for(language) for language in LANGUAGES}


class WebhookSettings(_Section):
    url: str | None = None
    secret: str | None = Field(None, min_length=16)
    max_attempts: int = Field(12, ge=1, le=30)
    initial_backoff_seconds: float = Field(1.0, gt=0, le=600)
    max_backoff_seconds: float = Field(300, gt=0, le=3600)
    timeout_seconds: float = Field(10, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _secret_with_url(self) -> WebhookSettings:
        if self.url and not self.secret:
            raise ValueError("secret is required when url is set (deliveries are signed)")
        return self


class ProviderSettings(_Section):
    """What the documents say about the MTM provider; null: the next level decides."""

    provider_name: str | None = Field(None, min_length=1, max_length=200)
    provider_contact: str | None = Field(None, min_length=1, max_length=300)
    plan_name: str | None = Field(None, min_length=1, max_length=200)


class DocumentSettings(ProviderSettings):
    # Per clinic (its name in api.keys): overrides of provider_name, provider_contact and
    # plan_name for that clinic's consults.
    clinics: dict[str, ProviderSettings] = Field(default_factory=dict)
    # The time zone dates are written in (the date of service, date prepared).
    time_zone: str = "UTC"
    # How long a prescriber letter's response links work, counted from the consult's
    # scheduled time (or its creation, if later).
    response_link_days: int = Field(60, ge=1, le=3650)
    # Processes that render PDFs (WeasyPrint), so rendering never holds the event loop.
    pdf_workers: int = Field(1, ge=1, le=32)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name, e.g. America/Chicago") from None
        return value

    @field_validator("clinics")
    @classmethod
    def _clinic_names(cls, value: dict[str, ProviderSettings]) -> dict[str, ProviderSettings]:
        for clinic in value:
            if not re.fullmatch(CLINIC_NAME_PATTERN, clinic):
                raise ValueError(f"{clinic!r} is not a clinic name as api.keys spells it")
        return value

    def provider_for(self, clinic: str) -> ProviderSettings:
        """The provider settings of `clinic`'s consults: its own, else the deployment's."""
        own = self.clinics.get(clinic, ProviderSettings())
        return ProviderSettings(
            provider_name=own.provider_name or self.provider_name,
            provider_contact=own.provider_contact or self.provider_contact,
            plan_name=own.plan_name or self.plan_name,
        )


class ProbeSettings(_Section):
    max_rtt_ms: float = Field(300, gt=0)
    max_loss_percent: float = Field(5, ge=0, le=100)
    min_kbps: float = Field(750, gt=0)
    max_concurrent: int = Field(24, ge=0, le=200)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class MetricsSettings(_Section):
    enabled: bool = False
    token: str | None = Field(None, min_length=24)

    @model_validator(mode="after")
    def _token_when_enabled(self) -> MetricsSettings:
        if self.enabled and self.token is None:
            raise ValueError("token is required when enabled is true (24+ characters)")
        return self


class ClinicEmbedConfig(_Section):
    """One clinic's embedding settings (models/embed.py); the REST API can replace them."""

    allowed_origins: list[str] = Field(default_factory=list)
    medication_names_in_events: bool = False

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return embed.allowed_origins(value)


class EmbedSettings(_Section):
    # Per clinic (the `clinic` of its API keys): which origins may embed its consults.
    clinics: dict[str, ClinicEmbedConfig] = Field(default_factory=dict)

    @field_validator("clinics")
    @classmethod
    def _clinic_names(cls, value: dict[str, ClinicEmbedConfig]) -> dict[str, ClinicEmbedConfig]:
        for clinic in value:
            if not re.fullmatch(CLINIC_NAME_PATTERN, clinic):
                raise ValueError(
                    f"{clinic[:40]!r} is not a clinic name (letters, digits, '.', '_', '-')"
                )
        return value


class ForTestingSettings(_Section):
    expose_hooks: bool = False


class Config(_Section):
    server: ServerSettings = Field(default_factory=ServerSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    ice: IceSettings = Field(default_factory=IceSettings)
    signaling: SignalingSettings = Field(default_factory=SignalingSettings)
    consult: ConsultSettings = Field(default_factory=ConsultSettings)
    consent: ConsentSettings = Field(default_factory=ConsentSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    probe: ProbeSettings = Field(default_factory=ProbeSettings)
    documents: DocumentSettings = Field(default_factory=DocumentSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    embed: EmbedSettings = Field(default_factory=EmbedSettings)
    testing: ForTestingSettings = Field(default_factory=ForTestingSettings)

    @model_validator(mode="after")
    def _many_instances_can_work(self) -> Config:
        """`redis.url` means several instances: refuse what only one process can use."""
        if self.redis.url is None:
            return self
        if self.database.url.startswith("sqlite"):
            raise ValueError(
                "database.url: SQLite serves one process only; with redis.url set (several "
                "instances) use a shared postgresql+asyncpg:// database"
            )
        if self.auth.token_secret is None:
            raise ValueError(
                "auth.token_secret: required when redis.url is set; every instance must sign "
                "and check join links with the same secret (32+ characters)"
            )
        return self


def load_config(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Build the settings from `path` (YAML), then `environ` (MTM_* variables), then `overrides`.

    Raises ConfigError naming the key and what is allowed.
    """
    data: dict[str, dict[str, Any]] = {}
    if path is not None:
        _merge(data, _read_yaml(path), source=str(path))
    _merge(data, _from_environ(os.environ if environ is None else environ), source="environment")
    if overrides:
        _merge(data, overrides, source="overrides")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    return loaded


def _from_environ(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section not in Config.model_fields:
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        found.setdefault(section, {})[key] = value
    return found


def _merge(into: dict[str, dict[str, Any]], source_data: Mapping[str, Any], *, source: str) -> None:
    for section, values in source_data.items():
        if not isinstance(values, Mapping):
            raise ConfigError(f"{section}: must be a mapping of keys (in {source})")
        into.setdefault(section, {}).update(values)


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting (see config.yaml for every key)"
        elif error["type"] == "literal_error":
            message = f"not allowed; {message[0].lower()}{message[1:]}"
        # A check across sections names its settings itself.
        lines.append(f"{key}: {message}" if key else message)
    return "invalid configuration: " + "; ".join(lines)
