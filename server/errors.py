"""The one JSON error shape of the REST API (docs/api.md, "Errors")."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from server.api_models import ErrorDetailOut, ErrorOut, FieldErrorOut


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        body = ErrorOut(
            error=ErrorDetailOut(
                status=self.status,
                code=self.code,
                message=self.message,
                fields=None
                if self.fields is None
                else [FieldErrorOut.model_validate(item) for item in self.fields],
            )
        )
        return web.Response(
            text=body.model_dump_json(exclude_none=True),
            status=self.status,
            content_type="application/json",
            headers=self.headers,
        )
