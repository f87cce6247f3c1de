"""The wait between webhook attempts: doubling, capped, with jitter (docs/api.md)."""

from __future__ import annotations

from models.database import make_engine, make_sessionmaker
from server.config import WebhookSettings
from server.webhooks import WebhookSender


def sender(**settings: float) -> WebhookSender:
    config = WebhookSettings(url="http://127.0.0.1:9/hooks", secret="s" * 16, **settings)
    return WebhookSender(config, make_sessionmaker(make_engine("sqlite+aiosqlite://")))


def test_waits_double_up_to_the_cap_with_half_of_each_random() -> None:
    webhooks = sender(initial_backoff_seconds=1, max_backoff_seconds=300)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (11, 300)]:
        waits = [webhooks.backoff(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits), attempt
        assert max(waits) - min(waits) > ceiling / 4  # jittered, not fixed


def test_the_default_schedule_spans_9_to_19_minutes() -> None:
    webhooks = sender()
    settings = webhooks.settings
    ceilings = [
        min(settings.max_backoff_seconds, settings.initial_backoff_seconds * 2 ** (n - 1))
        for n in range(1, settings.max_attempts)
    ]
    assert 9 * 60 <= sum(ceilings) / 2 and sum(ceilings) <= 19 * 60
