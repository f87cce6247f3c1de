"""HTML to PDF with WeasyPrint: deterministic, and unable to fetch anything.

Runs in a worker process (documents/pdf_worker.py): laying out a document is pure Python work
that would otherwise hold the event loop's interpreter. The documents need nothing from
outside (their stylesheet is inline), so every URL WeasyPrint would fetch (an image, a
stylesheet, `file:`) is refused: markup that slipped into a document could not read a file
or reach the network.
"""

from __future__ import annotations

from functools import cache
from typing import Any


class FetchRefused(Exception):
    """A document asked WeasyPrint to fetch a URL."""


@cache
def _refusing_fetcher() -> Any:
    from weasyprint.urls import URLFetcher  # loads Pango: only where PDFs are made

    class RefusingFetcher(URLFetcher):  # type: ignore[misc]
        """Fetches nothing: every URL fails (WeasyPrint leaves the resource out)."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            raise FetchRefused("documents fetch nothing")

    return RefusingFetcher()


def html_to_pdf(html: str) -> bytes:
    """The PDF of `html`; the same HTML always gives the same bytes."""
    import weasyprint  # imported in the worker process only: it loads Pango

    document = weasyprint.HTML(string=html, url_fetcher=_refusing_fetcher(), base_url=None)
    pdf = document.write_pdf()
    assert isinstance(pdf, bytes)
    return pdf
