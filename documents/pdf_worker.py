"""A PDF worker process: `python -m documents.pdf_worker`, driven by server/documents.py.

Reads requests from stdin and writes answers to stdout, one at a time, framed as
`<4-byte big-endian length><bytes>`: a request is UTF-8 HTML, an answer is one status byte
(0: a PDF follows, 1: an error's type name follows) and the framed bytes. A separate
program rather than a multiprocessing child: nothing of the server's process (its threads,
its `__main__`) is copied or imported here, only WeasyPrint.
"""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO

from documents.pdf import html_to_pdf

_LENGTH = struct.Struct(">I")


def read_frame(stream: BinaryIO) -> bytes | None:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    body = stream.read(length)
    if len(body) < length:
        return None
    return body


def write_answer(stream: BinaryIO, ok: bool, body: bytes) -> None:
    stream.write(bytes([0 if ok else 1]) + _LENGTH.pack(len(body)) + body)
    stream.flush()


def main() -> None:
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    html_to_pdf("<!doctype html><p>ready</p>")  # load WeasyPrint before the first request
    while (request := read_frame(source)) is not None:
        try:
            pdf = html_to_pdf(request.decode("utf-8"))
        except Exception as exc:  # answered, and the worker serves the next request
            write_answer(sink, False, type(exc).__name__.encode())
            continue
        write_answer(sink, True, pdf)


if __name__ == "__main__":
    main()
