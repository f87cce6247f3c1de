"""HTML to PDF with WeasyPrint: deterministic, and unable to fetch anything.

Runs in a worker process (server/documents.py): laying out a document is pure Python work
that would otherwise hold the event loop's interpreter. The documents need nothing from
outside (their stylesheet is inline), so every URL WeasyPrint would fetch (an image, a
stylesheet, `file:`) is refused: markup that slipped into a document could not read a file
or reach the network.
"""

from __future__ import annotations

from typing import Any, NoReturn


class FetchRefused(Exception):
    """A document asked WeasyPrint to fetch a URL."""


def refuse_fetch(url: str, *args: Any, **kwargs: Any) -> NoReturn:
    raise FetchRefused("documents fetch nothing")


def html_to_pdf(html: str) -> bytes:
    """The PDF of `html`; the same HTML always gives the same bytes."""
    import weasyprint  # imported in the worker process only: it loads Pango

    document = weasyprint.HTML(string=html, url_fetcher=refuse_fetch, base_url=None)
    pdf = document.write_pdf()
    assert isinstance(pdf, bytes)
    return pdf


def warm_up() -> None:
    """Load WeasyPrint (and lay out a page) once in a new worker process."""
    html_to_pdf("<!doctype html><p>ready</p>")
