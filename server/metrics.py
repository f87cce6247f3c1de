"""Prometheus metrics: what an operator watches, served at /metrics (off by default).

One `Metrics` per application (its own registry, so two apps in one process, as in tests,
never mix their figures), reachable as `app[METRICS]`. Other parts count through its
methods: `metrics.rate_limit_hit("events_per_connection")`, `metrics.error("...")`.

Labels are codes and kinds from our own vocabulary, never consult or participant ids (no
unbounded series, and nothing that points at a person).
"""

from __future__ import annotations

import hmac
import logging
from typing import Final

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from server.config import MetricsSettings

# Seconds from a mutation reaching the server's backend to its result (committed or refused).
ACK_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500)
COMMIT_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.consults_live = Gauge(
            "mtm_consults_live",
            "Consults with at least one participant in the call on this process.",
            registry=registry,
        )
        self.participants = Gauge(
            "mtm_participants_connected",
            "Participants connected to this process, in the call or in the waiting room.",
            ["state"],
            registry=registry,
        )
        self.edits_applied = Counter(
            "mtm_edits_applied",
            "Panel mutations committed (replays of an earlier mutation id not counted).",
            registry=registry,
        )
        self.ack_latency = Histogram(
            "mtm_mutation_ack_seconds",
            "From a mutation reaching the backend to its result: queued, applied, committed.",
            buckets=ACK_BUCKETS,
            registry=registry,
        )
        self.writer_batch_size = Histogram(
            "mtm_panel_writer_batch_size",
            "Mutations the panel writer applied in one group commit.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.writer_commit_seconds = Histogram(
            "mtm_panel_writer_commit_seconds",
            "Time of one group commit (bulk writes and the commit itself).",
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        self.mutations_refused = Counter(
            "mtm_mutations_refused",
            "Panel mutations refused, by error code (docs/protocol.md).",
            ["code"],
            registry=registry,
        )
        self.reconnects = Counter(
            "mtm_reconnects",
            "Participants who came back after a dropped connection, or from a second window.",
            registry=registry,
        )
        self.rate_limited = Counter(
            "mtm_rate_limited",
            "Requests or events refused by a rate limit or quota, by limit.",
            ["limit"],
            registry=registry,
        )
        self.errors = Counter(
            "mtm_errors",
            "Errors logged by the server, by kind (the exception type, or the logger).",
            ["kind"],
            registry=registry,
        )

    def rate_limit_hit(self, limit: str) -> None:
        """Count one refusal by a rate limit or quota; `limit` names it (a config key)."""
        self.rate_limited.labels(limit=limit).inc()

    def error(self, kind: str) -> None:
        self.errors.labels(kind=kind).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


METRICS = web.AppKey("mtm_metrics", Metrics)


class ErrorCounter(logging.Handler):
    """Counts every ERROR (and worse) record of the process as `mtm_errors{kind}`.

    Counting where errors are logged, rather than at each `except`, covers every place
    (ours and the libraries') without touching them.
    """

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(level=logging.ERROR)
        self._metrics = metrics

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None and record.exc_info[0] is not None:
            kind = record.exc_info[0].__name__
        else:
            kind = record.name
        self._metrics.error(kind)


def add_routes(app: web.Application, settings: MetricsSettings) -> None:
    """GET /metrics when `metrics.enabled`; it then needs `Authorization: Bearer <token>`."""
    if not settings.enabled:
        return
    assert settings.token is not None  # the config refuses enabled without a token
    expected = f"Bearer {settings.token}".encode()

    async def metrics(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {
                    "error": {
                        "code": "unauthorized",
                        "message": "Send the metrics token: Authorization: Bearer <token>.",
                    }
                },
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return web.Response(
            body=request.app[METRICS].render(),
            headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
        )

    app.router.add_get("/metrics", metrics)
