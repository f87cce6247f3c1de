from pathlib import Path

import pytest
import yaml

from server.config import Config, ConfigError, load_config

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"
HASH = "sha256:" + "ab" * 32
OTHER_HASH = "sha256:" + "cd" * 32


def test_defaults_need_nothing_installed() -> None:
    config = load_config(None, environ={})
    assert config.database.url.startswith("sqlite+aiosqlite://")
    assert config.redis.url is None
    assert config.ice.turn_urls == [] and config.ice.stun_urls == []
    assert config.ice.transport_policy == "all"


def test_repository_config_yaml_equals_the_defaults() -> None:
    assert load_config(REPO_CONFIG, environ={}) == Config()
    documented = yaml.safe_load(REPO_CONFIG.read_text())
    assert set(documented) == set(Config.model_fields)
    for section, model in Config.model_fields.items():
        assert model.annotation is not None
        assert set(documented[section]) == set(model.annotation.model_fields), section


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  port: 9000\n")
    config = load_config(
        path,
        environ={
            "MTM_SERVER__PORT": "9100",
            "MTM_ICE__STUN_URLS": '["stun:127.0.0.1:3478"]',
            "MTM_API__KEYS": f'[{{"clinic": "north", "display_name": "North", "hash": "{HASH}"}}]',
            "UNRELATED": "x",
        },
    )
    assert config.server.port == 9100
    assert config.ice.stun_urls == ["stun:127.0.0.1:3478"]
    assert [entry.model_dump() for entry in config.api.keys] == [
        {"clinic": "north", "display_name": "North", "hash": HASH}
    ]


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"MTM_SERVER__PORT": "eighty"}, ["server.port", "integer"]),
        ({"MTM_SERVER__PORT": "70000"}, ["server.port", "65535"]),
        ({"MTM_ICE__TRANSPORT_POLICY": "sometimes"}, ["ice.transport_policy", "'all'", "'relay'"]),
        ({"MTM_ICE__TRANSPORT_POLICY": "relay"}, ["ice", "turn_urls"]),
        ({"MTM_ICE__TURN_URLS": '["turn:127.0.0.1:3478"]'}, ["ice", "turn_secret"]),
        ({"MTM_ICE__STUN_URLS": '["http://x"]'}, ["ice.stun_urls", "stun:"]),
        ({"MTM_DATABASE__URL": "sqlite:///x.db"}, ["database.url", "async driver"]),
        ({"MTM_SERVER__COLOUR": "blue"}, ["server.colour", "unknown setting"]),
        ({"MTM_AUTH__TOKEN_SECRET": "short"}, ["auth.token_secret", "32"]),
        (
            {"MTM_API__KEYS": '{"north": "a-plain-key-0123456789abcdef"}'},
            ["api.keys", "plain-text keys are not accepted", "mtm-consult api-key create"],
        ),
        (
            {"MTM_API__KEYS": '[{"clinic": "north", "display_name": "N", "hash": "plain"}]'},
            ["api.keys.0.hash", "sha256:", "mtm-consult api-key create"],
        ),
        (
            {"MTM_API__KEYS": f'[{{"clinic": "north", "hash": "{HASH}"}}]'},
            ["api.keys.0.display_name", "required"],
        ),
        (
            {
                "MTM_API__KEYS": f'[{{"clinic": "no spaces", "display_name": "N", '
                f'"hash": "{HASH}"}}]'
            },
            ["api.keys.0.clinic"],
        ),
        (
            {
                "MTM_API__KEYS": f'[{{"clinic": "a", "display_name": "A", "hash": "{HASH}"}},'
                f' {{"clinic": "b", "display_name": "B", "hash": "{HASH}"}}]'
            },
            ["api.keys", "listed twice"],
        ),
        (
            {
                "MTM_API__KEYS": f'[{{"clinic": "a", "display_name": "A", "hash": "{HASH}"}},'
                f' {{"clinic": "a", "display_name": "B", "hash": "{OTHER_HASH}"}}]'
            },
            ["api.keys", "'a'", "different display names"],
        ),
        ({"MTM_API__RATE_LIMIT_PER_MINUTE": "0"}, ["api.rate_limit_per_minute", "1"]),
        ({"MTM_API__RATE_LIMIT_BURST": "true"}, ["api.rate_limit_burst", "integer"]),
        ({"MTM_WEBHOOKS__URL": "ftp://clinic.example/hooks"}, ["webhooks.url", "http"]),
        ({"MTM_WEBHOOKS__URL": "https://clinic.example/hooks"}, ["webhooks", "secret"]),
        ({"MTM_CONSENT__REQUIRED_ROLES": "[doctor]"}, ["consent.required_roles", "patient"]),
        ({"MTM_CONSENT__TRANSLATIONS": '{"fr": "J\'accepte."}'}, ["consent.translations", "es"]),
        ({"MTM_CONSENT__TRANSLATIONS": '{"es": ""}'}, ["consent.translations", "es", "1-5000"]),
        # Several instances (redis.url) cannot share a SQLite file or sign links differently.
        (
            {"MTM_REDIS__URL": "redis://127.0.0.1:6379/0", "MTM_AUTH__TOKEN_SECRET": "s" * 32},
            ["database.url", "SQLite", "redis.url", "postgresql+asyncpg://"],
        ),
        (
            {
                "MTM_REDIS__URL": "redis://127.0.0.1:6379/0",
                "MTM_DATABASE__URL": "postgresql+asyncpg://mtm@db:5432/mtm",
            },
            ["auth.token_secret", "redis.url", "same secret"],
        ),
    ],
)
def test_bad_value_names_the_key_and_what_is_allowed(
    environ: dict[str, str], names: list[str]
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, environ=environ)
    for name in names:
        assert name in str(error.value)


def test_several_instances_on_postgres_with_one_secret_are_accepted() -> None:
    config = load_config(
        None,
        environ={
            "MTM_REDIS__URL": "redis://127.0.0.1:6379/0",
            "MTM_DATABASE__URL": "postgresql+asyncpg://mtm@db:5432/mtm",
            "MTM_AUTH__TOKEN_SECRET": "s" * 32,
        },
    )
    assert config.redis.url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    "keys",
    [
        '{"north": "hunter2-secret"}',
        '[{"clinic": "north", "display_name": "North", "hash": "hunter2-secret"}]',
        '["hunter2-secret"]',
    ],
)
def test_secret_values_are_not_echoed(keys: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, environ={"MTM_API__KEYS": keys})
    assert "hunter2" not in str(error.value)


def test_missing_file_and_bad_yaml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, environ={})
    flat = tmp_path / "flat.yaml"
    flat.write_text("server: 3\n")
    with pytest.raises(ConfigError, match="server: must be a mapping"):
        load_config(flat, environ={})


def test_the_consent_is_offered_in_every_language_of_the_pages() -> None:
    consent = load_config(None, environ={}).consent
    assert set(consent.texts()) == {"en", "es"}
    assert consent.text_for("en") == consent.text
    assert "telesalud" in consent.text_for("es")
    own = load_config(
        None,
        environ={"MTM_CONSENT__TEXT": "I agree.", "MTM_CONSENT__TRANSLATIONS": "{}"},
    ).consent
    # A language without its own text shows the one configured.
    assert own.texts() == {"en": "I agree.", "es": "I agree."}
