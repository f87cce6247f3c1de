"""Settings of metrics, test hooks and the proxy: safe defaults, and refusals that name the key."""

import pytest

from server.config import ConfigError, load_config


def test_metrics_hooks_and_forwarded_headers_are_off_by_default() -> None:
    config = load_config(None, environ={})
    assert config.metrics.enabled is False and config.metrics.token is None
    assert config.testing.expose_hooks is False
    assert config.server.trust_forwarded is False


def test_metrics_cannot_be_enabled_without_a_token() -> None:
    with pytest.raises(ConfigError, match="metrics: token is required when enabled"):
        load_config(None, environ={"MTM_METRICS__ENABLED": "true"})


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="metrics.token"):
        load_config(None, environ={"MTM_METRICS__ENABLED": "true", "MTM_METRICS__TOKEN": "short"})
