"""The rules of embedding, without a server: which origins a clinic may allow (each becomes
part of a CSP header), theme parameters, and the `embed` settings section."""

from __future__ import annotations

import pytest

from models.embed import allowed_origins, embed_origin
from server.config import ConfigError, load_config
from server.embed import ThemeRefused, contrast_with_white, parse_theme


@pytest.mark.parametrize(
    "origin",
    [
        "https://portal.example.org",
        "https://portal.example.org:8443",
        "https://xn--bcher-kva.example",
        "https://10.0.0.5",
        "http://localhost:8081",
        "http://127.0.0.1",
        "http://[::1]:9000",
    ],
)
def test_origins_a_clinic_may_allow(origin: str) -> None:
    assert embed_origin(origin) == origin


@pytest.mark.parametrize(
    ("origin", "words"),
    [
        ("http://portal.example.org", "use https"),
        ("HTTPS://portal.example.org", "lower case"),
        ("https://portal.example.org/", "not an origin"),
        ("https://portal.example.org/app", "not an origin"),
        ("https://portal.example.org?x=1", "not an origin"),
        ("https://user@portal.example.org", "not an origin"),
        ("https://*.example.org", "not an origin"),
        ("*", "not an origin"),
        ("'self'", "not an origin"),
        ("'none'", "not an origin"),
        ("https://a.example https://b.example", "not an origin"),
        ("https://a.example;script-src *", "not an origin"),
        ("https://-bad.example", "not an origin"),
        ("https://portal.example.org:443", "default port"),
        ("http://localhost:80", "default port"),
        ("https://portal.example.org:0", "port must be"),
        ("https://portal.example.org:70000", "port must be"),
        ("data:", "not an origin"),
        ("", "not an origin"),
    ],
)
def test_origins_that_are_refused_say_why(origin: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        embed_origin(origin)


def test_a_list_of_origins_has_no_repeats_and_at_most_twenty() -> None:
    with pytest.raises(ValueError, match="twice"):
        allowed_origins(["https://a.example", "https://a.example"])
    with pytest.raises(ValueError, match="at most 20"):
        allowed_origins([f"https://p{n}.example" for n in range(21)])
    assert allowed_origins([]) == []


def test_contrast_follows_wcag() -> None:
    assert contrast_with_white("#000000") == pytest.approx(21.0)
    assert contrast_with_white("#ffffff") == pytest.approx(1.0)
    assert contrast_with_white("#2563eb") == pytest.approx(5.17, abs=0.01)  # the app's own
    assert contrast_with_white("#767676") == pytest.approx(4.54, abs=0.01)  # the AA edge


def test_theme_defaults_and_values() -> None:
    default = parse_theme([])
    assert (default.accent, default.logo, default.panel, default.language) == (
        None,
        True,
        True,
        "en",
    )
    theme = parse_theme([("accent", "#0B5CAD"), ("logo", "0"), ("panel", "0"), ("lang", "es")])
    assert theme.json() == {"accent": "#0b5cad", "logo": False, "panel": False, "language": "es"}
    assert parse_theme([("accent", "#036")]).accent == "#003366"


@pytest.mark.parametrize(
    ("pairs", "words"),
    [
        ([("accent", "#ffff00")], "too light"),
        ([("accent", "#777777")], "too light"),  # 4.48:1, just under AA
        ([("accent", "blue")], "#rrggbb"),
        ([("accent", "#12345")], "#rrggbb"),
        ([("accent", "#0b5cad;x")], "#rrggbb"),
        ([("logo", "false")], "logo must be 1"),
        ([("lang", "EN")], "lang must be one of"),
        ([("token", "x")], "Unknown embed parameter 'token'"),
        ([("panel", "1"), ("panel", "0")], "given twice"),
    ],
)
def test_bad_theme_parameters(pairs: list[tuple[str, str]], words: str) -> None:
    with pytest.raises(ThemeRefused, match=words) as refused:
        parse_theme(pairs)
    assert refused.value.code == "invalid_theme"


def test_embed_settings_in_config() -> None:
    config = load_config(
        None,
        environ={
            "MTM_EMBED__CLINICS": (
                '{north: {allowed_origins: ["https://portal.north.example"],'
                " medication_names_in_events: true}}"
            )
        },
    )
    north = config.embed.clinics["north"]
    assert north.allowed_origins == ["https://portal.north.example"]
    assert north.medication_names_in_events is True


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ('{north: {allowed_origins: ["http://portal.example"]}}', "use https"),
        ('{north: {allowed_origins: ["https://a.example", "https://a.example"]}}', "twice"),
        ('{"bad name!": {allowed_origins: []}}', "not a clinic name"),
        ("{north: {origins: []}}", "unknown setting"),
    ],
)
def test_bad_embed_settings_stop_start_up(value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as refused:
        load_config(None, environ={"MTM_EMBED__CLINICS": value})
    assert "embed.clinics" in str(refused.value)
