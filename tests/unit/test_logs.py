"""The JSON log format: structured fields, and what it never writes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from server import logs


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    logs.configure("DEBUG", stream=stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    logging.captureWarnings(False)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_event_is_one_json_line_with_its_fields(captured: io.StringIO) -> None:
    logs.log_event(
        logging.getLogger("server.events"),
        "mutate",
        outcome="refused",
        code="forbidden",
        consult_id="c_1",
        participant_id="p_1",
        role="patient",
        duration_ms=1.23456,
    )
    [record] = records(captured)
    assert record["level"] == "INFO" and record["logger"] == "server.events"
    assert record["message"] == "mutate refused"
    assert {k: record[k] for k in ("event", "outcome", "code", "consult_id", "participant_id")} == {
        "event": "mutate",
        "outcome": "refused",
        "code": "forbidden",
        "consult_id": "c_1",
        "participant_id": "p_1",
    }
    assert record["duration_ms"] == 1.23


def test_an_exception_is_logged_by_type_and_frames_never_by_its_message(
    captured: io.StringIO,
) -> None:
    def store(name: str) -> None:
        try:
            raise KeyError(name)
        except KeyError as exc:
            raise ValueError(f"cannot store patient {name}") from exc

    try:
        store("Maria Lopez")
    except ValueError:
        logging.getLogger("server.api").exception("unhandled error in POST create_consult")
    line = captured.getvalue()
    assert "Maria" not in line
    [record] = records(captured)
    exception = record["exception"]
    assert isinstance(exception, dict)
    assert exception["type"] == "builtins.ValueError"
    assert any("in store" in frame for frame in exception["frames"])
    assert exception["cause"]["type"] == "builtins.KeyError"


def test_other_libraries_messages_keep_their_first_line(captured: io.StringIO) -> None:
    logging.getLogger("asyncio").error(
        "Task exception was never retrieved\nfuture: <Task exception=ValueError('Maria Lopez')>"
    )
    logging.getLogger("signaling.handlers").info("two\nlines of ours")
    first, ours = records(captured)
    assert first["message"] == "Task exception was never retrieved"
    assert ours["message"] == "two\nlines of ours"


def test_sqlalchemy_never_logs_statements_even_at_debug(captured: io.StringIO) -> None:
    assert not logging.getLogger("sqlalchemy.engine.Engine").isEnabledFor(logging.INFO)
