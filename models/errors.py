"""The one shape of a refusal: a machine-readable `code` and a message a person can act on."""

from __future__ import annotations


class Refused(Exception):
    """Something was refused and nothing changed.

    `code` is one of the documented codes (docs/api.md, docs/protocol.md); `message` never
    contains secrets or health information.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def result(self) -> dict[str, object]:
        """The `{ok: false, error}` form acknowledgements use."""
        return {"ok": False, "error": {"code": self.code, "message": self.message}}
