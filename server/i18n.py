"""The languages pages are offered in, and which one a request gets.

One message catalogue per language (web/static/messages/<lang>.json) serves the templates
(`t(key)`) and the browser client (web/static/i18n.js bundles the same files). A request
gets the language it asks for in `?lang=`, else the one its page switch remembered (the
`mtm_lang` cookie), else the first offered one in its browser's Accept-Language, else
English. A language that is not offered is never an error: it is passed over."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

# The documents' languages are the pages' languages.
from documents.text import LANGUAGES, Language

DEFAULT: Language = "en"
# As each language names itself, for the page's switch.
NAMES: tuple[tuple[Language, str], ...] = (("en", "English"), ("es", "Español"))
COOKIE = "mtm_lang"


@dataclass(frozen=True)
class Catalogue:
    messages: Mapping[Language, Mapping[str, str]]

    @classmethod
    def load(cls, directory: Path) -> Catalogue:
        """Read at start-up, before the server takes requests."""
        return cls(
            {lang: json.loads((directory / f"{lang}.json").read_text()) for lang in LANGUAGES}
        )

    def translator(self, language: Language) -> Callable[..., str]:
        """`t(key, **values)`: the message in `language` (English if it has none yet), with
        `{name}` placeholders filled in. An unknown key is a bug: it raises."""
        own = self.messages[language]
        fallback = self.messages[DEFAULT]

        def t(key: str, **values: object) -> str:
            text = own.get(key) or fallback[key]
            return text.format(**values) if values else text

        return t


def offered(value: str | None) -> Language | None:
    """`value` if it names an offered language ("es", "es-MX", "ES"), else None."""
    if not value:
        return None
    primary = value.strip().split("-")[0].split("_")[0].lower()
    return primary if primary in LANGUAGES else None


def from_accept_language(header: str) -> Language | None:
    """The offered language the browser prefers most (q-values honoured)."""
    ranked: list[tuple[float, int, Language]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        language = offered(tag)
        if language is not None and quality > 0:
            ranked.append((-quality, index, language))
    return min(ranked)[2] if ranked else None


def negotiate(request: web.Request) -> Language:
    return (
        offered(request.query.get("lang"))
        or offered(request.cookies.get(COOKIE))
        or from_accept_language(request.headers.get("Accept-Language", ""))
        or DEFAULT
    )
