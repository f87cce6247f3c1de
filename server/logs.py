"""The one logging setup of every `mtm-consult` command: JSON lines, safe for health data.

Each record is one JSON object on stderr: `time`, `level`, `logger`, `message`, and the
structured fields an event adds (`consult_id`, `participant_id`, `event`, `outcome`,
`duration_ms`, ...). Operators filter and count them; nothing has to parse prose.

What keeps protected health information and secrets out (docs/security.md):
- The engine is created with `hide_parameters=True` (models/database.py), so a failed
  statement's text never carries its values.
- An exception is logged as its type and where it was raised (file, line, function), never
  its message: a database error's message quotes the row ("Key (id)=(...)"), a validation
  error's quotes the input. The traceback's frames are enough to find the bug.
- Messages of other libraries' loggers (asyncio, aiohttp, engine.io) keep their first line
  only: some append the repr of a task or a packet.
- Our own messages and fields carry ids, codes, counts and durations, never names, notes,
  medications, join tokens or API keys (reviewed; tests/integration/test_log_privacy.py
  runs a whole consult and searches every line).
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import traceback
from types import TracebackType
from typing import IO, Final

import orjson

# The structured fields a record may carry (passed as `extra`); nothing else is written.
FIELDS: Final = (
    "event",
    "outcome",
    "code",
    "consult_id",
    "participant_id",
    "target_id",
    "role",
    "duration_ms",
    "count",
    "method",
    "path",
    "status",
    "bytes",
)

# Loggers of our own packages: their messages are written whole.
OWN_PACKAGES: Final = ("server", "signaling", "models", "media", "bench", "__main__")

_MAX_FOREIGN_MESSAGE = 300
_MAX_FRAMES = 40
_MAX_CHAIN = 5


class JsonFormatter(logging.Formatter):
    """One JSON object per record, without exception messages (see the module doc)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info is not None and record.exc_info[1] is not None:
            entry["exception"] = describe_exception(record.exc_info[1])
        return orjson.dumps(entry, default=str).decode()


def _message(record: logging.LogRecord) -> str:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not lose the record
        message = str(record.msg)
    if record.name.partition(".")[0] in OWN_PACKAGES:
        return message
    return message.split("\n", 1)[0][:_MAX_FOREIGN_MESSAGE]


def describe_exception(exc: BaseException) -> dict[str, object]:
    """`{type, frames, cause?}`: what was raised and where, never what it said."""
    described: dict[str, object] = {}
    current: dict[str, object] = described
    seen: set[int] = set()
    link: BaseException | None = exc
    for _ in range(_MAX_CHAIN):
        if link is None or id(link) in seen:
            break
        seen.add(id(link))
        current["type"] = f"{type(link).__module__}.{type(link).__qualname__}"
        current["frames"] = _frames(link.__traceback__)
        following = link.__cause__ or (None if link.__suppress_context__ else link.__context__)
        if following is None:
            break
        cause: dict[str, object] = {}
        current["cause"] = cause
        current = cause
        link = following
    return described


def _frames(tb: TracebackType | None) -> list[str]:
    frames = traceback.extract_tb(tb)[-_MAX_FRAMES:]
    return [f"{_short_path(frame.filename)}:{frame.lineno} in {frame.name}" for frame in frames]


def _short_path(filename: str) -> str:
    # Site-packages and the checkout's absolute path say nothing an operator needs.
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in filename:
            return filename.rsplit(marker, 1)[1]
    for package in OWN_PACKAGES:
        marker = f"/{package}/"
        if marker in filename:
            return package + "/" + filename.rsplit(marker, 1)[1]
    return filename


def configure(level: str, *, stream: IO[str] | None = None) -> None:
    """Send every record of the process, as JSON lines, to `stream` (default stderr)."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # SQLAlchemy logs every statement at INFO; never, whatever the level asked for.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    # Warnings (deprecations...) go through the same handler instead of raw stderr.
    logging.captureWarnings(True)


def log_event(
    logger: logging.Logger,
    event: str,
    *,
    outcome: str,
    consult_id: str | None = None,
    participant_id: str | None = None,
    target_id: str | None = None,
    role: str | None = None,
    code: str | None = None,
    duration_ms: float | None = None,
    count: int | None = None,
    level: int = logging.INFO,
) -> None:
    """One structured line for something that happened to a consult: ids, codes and times
    only (the parameters are the whole vocabulary, so no caller can add a name or a note)."""
    if not logger.isEnabledFor(level):
        return
    fields = {
        "event": event,
        "outcome": outcome,
        "consult_id": consult_id,
        "participant_id": participant_id,
        "target_id": target_id,
        "role": role,
        "code": code,
        "duration_ms": None if duration_ms is None else round(duration_ms, 2),
        "count": count,
    }
    logger.log(level, "%s %s", event, outcome, extra=fields)
