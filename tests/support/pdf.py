"""A PDF's text, as Debian's `pdftotext` (poppler-utils, installed by setup) reads it."""

from __future__ import annotations

import asyncio


def squash(text: str) -> str:
    """Whitespace collapsed to single spaces."""
    return " ".join(text.split())


async def pdf_text(pdf: bytes) -> str:
    """The PDF's text, whitespace collapsed."""
    assert pdf.startswith(b"%PDF-")
    process = await asyncio.create_subprocess_exec(
        "pdftotext", "-enc", "UTF-8", "-", "-", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate(pdf)
    assert process.returncode == 0
    return squash(out.decode())
