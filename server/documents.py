"""The consult's documents as the server serves them: loaded at a seq, rendered, signed.

`documents/` decides what each document says; this module reads the consult and its change
log, fills in what the deployment configures (the MTM provider, its contact, the plan),
signs the prescriber letter's response links, and renders PDFs in worker processes
(WeasyPrint's layout is CPU-bound Python: on the event loop's thread it would stall every
call of the process while a document renders).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import struct
import sys
import zoneinfo
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from documents import content, fhir, render
from documents.text import Language
from models import panel_store, replay
from models.errors import Refused
from models.roles import Role
from models.tables import Consult, ConsultStatus, Participant
from server.api_keys import display_name_of
from server.config import Config, DocumentSettings
from server.tokens import ResponseClaims, ResponseSigner

log = logging.getLogger(__name__)

Kind = Literal["summary", "prescriber-letter", "fhir-bundle"]
Format = Literal["html", "pdf", "json"]

# Documents are standalone pages: their only style is inline, they run no script and
# fetch nothing.
DOCUMENT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)
MEDIA_TYPES = {
    "html": "text/html",
    "pdf": "application/pdf",
    "json": "application/fhir+json",
}
_LENGTH = struct.Struct(">I")  # documents/pdf_worker.py's framing
# Rendered PDFs kept by the hash of their HTML (the same HTML always gives the same PDF).
_PDF_CACHE_SIZE = 32


class DocumentRefused(Refused):
    """A document cannot be made as asked; `status` is the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code, message)
        self.status = status


@dataclass(frozen=True)
class DocumentInputs:
    facts: content.ConsultFacts
    snapshot: dict[str, Any]  # the panel at facts.seq
    events: list[dict[str, Any]]  # the change log up to facts.seq


def default_seq(consult: Consult) -> int:
    """The end of the consult when it has ended, else its latest change."""
    if consult.status == ConsultStatus.ENDED.value and consult.ended_seq is not None:
        return consult.ended_seq
    return consult.last_seq


async def load_inputs(
    session: AsyncSession, config: Config, consult: Consult, seq: int | None
) -> DocumentInputs:
    """The panel and log of `consult` at `seq` (default: `default_seq`)."""
    if seq is None:
        seq = default_seq(consult)
    if seq > consult.last_seq:
        raise DocumentRefused(
            400, "invalid_query", f"seq must be at most {consult.last_seq}, the consult's latest."
        )
    events = await panel_store.events_since(session, consult.id, 0, limit=seq) if seq else []
    pharmacist = await session.scalar(
        select(Participant.display_name).where(
            Participant.consult_id == consult.id, Participant.role == Role.PHARMACIST.value
        )
    )
    try:
        state = replay.state_at(consult.id, consult.status, events, seq)
    except replay.ReplayError:
        log.error("the change log of a consult cannot be replayed to a seq it reported")
        raise
    return DocumentInputs(
        facts=consult_facts(config, consult, seq, events, pharmacist or Role.PHARMACIST.label),
        snapshot=state.snapshot(),
        events=events,
    )


def consult_facts(
    config: Config,
    consult: Consult,
    seq: int,
    events: list[dict[str, Any]],
    pharmacist: str = Role.PHARMACIST.label,
) -> content.ConsultFacts:
    settings = config.documents
    zone = zoneinfo.ZoneInfo(settings.time_zone)
    provider = settings.provider_for(consult.clinic)
    clinic_name = display_name_of(config.api.keys, consult.clinic) or consult.clinic
    prepared = dt.datetime.fromisoformat(events[-1]["at"]) if events else consult.created_at
    service = consult.live_at or consult.scheduled_at
    return content.ConsultFacts(
        consult_id=consult.id,
        patient_name=consult.patient_name,
        service_date=service.astimezone(zone).date(),
        status=consult.status,
        seq=seq,
        prepared_at=prepared.astimezone(zone),
        provider_name=provider.provider_name or clinic_name,
        provider_contact=provider.provider_contact,
        plan_name=provider.plan_name,
        pharmacist_name=pharmacist,
    )


def response_link_maker(
    signer: ResponseSigner, settings: DocumentSettings, consult: Consult, base_url: str
) -> content.ResponseLink:
    """Signed links for the letter's response blocks; the same inputs give the same link."""
    start = max(consult.scheduled_at, consult.created_at)
    expires = int((start + dt.timedelta(days=settings.response_link_days)).timestamp())

    def link(recommendation_id: str, base_version: int) -> str:
        token = signer.sign(
            ResponseClaims(
                consult_id=consult.id,
                recommendation_id=recommendation_id,
                base_version=base_version,
                expires_at=expires,
            )
        )
        return f"{base_url.rstrip('/')}/r/{token}"

    return link


def html_of(
    kind: Kind, inputs: DocumentInputs, lang: Language, response_link: content.ResponseLink
) -> str:
    if kind == "summary":
        return render.summary_html(content.patient_summary(inputs.facts, inputs.snapshot, lang))
    if kind == "prescriber-letter":
        return render.letter_html(
            content.prescriber_letter(inputs.facts, inputs.snapshot, response_link)
        )
    raise ValueError(f"{kind} has no HTML form")


def fhir_json(inputs: DocumentInputs) -> bytes:
    bundle = fhir.export_bundle(inputs.facts, inputs.snapshot, inputs.events)
    return orjson.dumps(bundle, option=orjson.OPT_INDENT_2)


def file_name(kind: Kind, facts: content.ConsultFacts, fmt: Format, lang: Language) -> str:
    suffix = "" if lang == "en" or kind != "summary" else f"-{lang}"
    return f"{kind}-{facts.service_date.isoformat()}-seq{facts.seq}{suffix}.{fmt}"


class PdfFailed(Exception):
    """A PDF could not be made (the worker failed or timed out)."""


class _Worker:
    """One `python -m documents.pdf_worker` process: a request at a time over its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "documents.pdf_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # WeasyPrint's warnings name CSS and URLs, never a value; the server's log
            # stays JSON lines of its own.
            stderr=asyncio.subprocess.DEVNULL,
        )
        return cls(process)

    async def render(self, html: str) -> bytes:
        assert self.process.stdin is not None and self.process.stdout is not None
        body = html.encode()
        self.process.stdin.write(_LENGTH.pack(len(body)) + body)
        await self.process.stdin.drain()
        status = await self.process.stdout.readexactly(1)
        (length,) = _LENGTH.unpack(await self.process.stdout.readexactly(_LENGTH.size))
        answer = await self.process.stdout.readexactly(length)
        if status != b"\x00":
            raise PdfFailed(f"the PDF worker failed: {answer.decode(errors='replace')}")
        return answer

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()

    async def stop(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.kill()
                await self.process.wait()


class PdfRenderer:
    """Renders HTML to PDF in worker processes, a few recent results cached.

    WeasyPrint's layout is CPU-bound Python: in the server's process it would hold the
    event loop (a thread would still contend for its interpreter lock), so each PDF is
    made by one of `workers` separate processes, started with the first PDF (a server
    that never renders one never starts them). A worker that dies, fails to answer in
    `timeout` seconds or is abandoned mid-answer is killed and replaced.
    """

    def __init__(self, workers: int, *, timeout: float = 60.0) -> None:
        self._timeout = timeout
        self._slots = asyncio.Semaphore(workers)  # one render per worker at a time
        self._workers = workers
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._cache: OrderedDict[str, bytes] = OrderedDict()

    def clear_cache(self) -> None:
        self._cache.clear()

    def worker_pids(self) -> list[int]:
        """The running workers' process ids (the benchmark pins them to a core)."""
        return [worker.process.pid for worker in [*self._idle, *self._busy]]

    async def start(self) -> None:
        """Start every worker now (WeasyPrint loads in each) rather than on first use."""
        while len(self._idle) + len(self._busy) < self._workers:
            self._idle.append(await _Worker.start())

    async def stop(self) -> None:
        workers = [*self._idle, *self._busy]
        self._idle, self._busy = [], set()
        await asyncio.gather(*(worker.stop() for worker in workers))

    async def _take(self) -> _Worker:
        """A worker of one's own; the caller holds a slot."""
        worker = self._idle.pop() if self._idle else await _Worker.start()
        self._busy.add(worker)
        return worker

    def _release(self, worker: _Worker) -> None:
        self._busy.discard(worker)
        self._idle.append(worker)

    def _discard(self, worker: _Worker) -> None:
        self._busy.discard(worker)
        worker.kill()

    async def _render(self, html: str) -> bytes:
        async with self._slots:
            for attempt in range(2):
                worker = await self._take()
                try:
                    pdf = await asyncio.wait_for(worker.render(html), self._timeout)
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    # The worker died (killed, out of memory): a new one tries once more.
                    self._discard(worker)
                    log.error("a PDF worker process died (%s)", type(exc).__name__)
                    if attempt == 1:
                        raise PdfFailed("the PDF worker died") from None
                    continue
                except PdfFailed:
                    self._release(worker)
                    raise
                except BaseException:
                    # Timed out or cancelled mid-answer: its pipe is no longer in step.
                    self._discard(worker)
                    raise
                self._release(worker)
                return pdf
        raise AssertionError("unreachable")

    async def pdf(self, html: str) -> bytes:
        key = hashlib.sha256(html.encode()).hexdigest()
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        pdf = await self._render(html)
        self._cache[key] = pdf
        while len(self._cache) > _PDF_CACHE_SIZE:
            self._cache.popitem(last=False)
        return pdf


@dataclass(frozen=True)
class Rendered:
    body: bytes
    media_type: str
    file_name: str


async def render_document(
    renderer: PdfRenderer,
    kind: Kind,
    fmt: Format,
    inputs: DocumentInputs,
    lang: Language,
    response_link: content.ResponseLink,
) -> Rendered:
    name = file_name(kind, inputs.facts, fmt, lang)
    if kind == "fhir-bundle":
        return Rendered(fhir_json(inputs), MEDIA_TYPES["json"], name)
    html = html_of(kind, inputs, lang, response_link)
    if fmt == "html":
        return Rendered(html.encode(), MEDIA_TYPES["html"], name)
    return Rendered(await renderer.pdf(html), MEDIA_TYPES["pdf"], name)


def headers_for(rendered: Rendered, *, download: bool = False) -> dict[str, str]:
    disposition = "attachment" if download else "inline"
    headers = {
        "Content-Disposition": f'{disposition}; filename="{rendered.file_name}"',
        # Health information: never kept by a shared cache or the browser's disk cache.
        "Cache-Control": "no-store",
    }
    if rendered.media_type == MEDIA_TYPES["html"]:
        headers["Content-Security-Policy"] = DOCUMENT_CSP
    return headers


def documents_ready_data(
    consult: Consult, prefix: str, *, seq: int | None = None
) -> dict[str, Any]:
    """The `consult.documents_ready` webhook's data: the seq (default: the end) and where
    to fetch each document at it."""
    seq = default_seq(consult) if seq is None else seq
    base = f"{prefix}/consults/{consult.id}/documents"
    return {
        "seq": seq,
        "documents": {
            "summary_html": f"{base}/summary.html?seq={seq}",
            "summary_pdf": f"{base}/summary.pdf?seq={seq}",
            "prescriber_letter_html": f"{base}/prescriber-letter.html?seq={seq}",
            "prescriber_letter_pdf": f"{base}/prescriber-letter.pdf?seq={seq}",
            "fhir_bundle": f"{base}/fhir-bundle.json?seq={seq}",
        },
    }
