"""The one JSON error shape of the REST API (docs/api.md, "Errors")."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def response(self) -> web.Response:
        body: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.fields is not None:
            body["fields"] = self.fields
        return web.json_response({"error": body}, status=self.status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
