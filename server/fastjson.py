"""orjson behind the `json` interface python-socketio calls (`dumps`, `loads`).

Every Socket.IO packet is encoded and decoded on the edit path; orjson is several times
faster than the standard library for these small documents.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any, **_options: Any) -> str:
    """JSON text; the standard library's formatting options are accepted and ignored."""
    return orjson.dumps(value).decode()


def loads(text: str | bytes, **_options: Any) -> Any:
    return orjson.loads(text)
