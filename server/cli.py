"""`mtm-consult`: serve, migrate the database, create consults, make API keys."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import logging
import re
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from models import consults, panel_store
from models.database import make_engine
from models.migrations import upgrade_to_head
from server import api_keys, links, logs
from server.app import create_app
from server.config import (
    CLINIC_NAME_PATTERN,
    ClinicEmbedConfig,
    Config,
    ConfigError,
    load_config,
)
from server.example_host import example_host_app
from server.security import RedactingAccessLogger
from server.state import STATE
from signaling.cluster import ClusterRefused

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("config.yaml")
# The clinic of consults made on the command line (and of the demo's).
DEMO_CLINIC = "cli"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "api-key":
        # Needs no settings: it is how an operator fixes settings that refuse to load.
        for line in _create_api_key(args.name, args.display_name or args.name):
            print(line)
        return 0
    try:
        config = _load(args)
    except ConfigError as exc:
        print(f"mtm-consult: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.logging.level)
    if args.command == "serve":
        return _serve(config, demo=args.demo, reload=lambda: _load(args))
    if args.command == "db":
        asyncio.run(_upgrade(config))
        print("database is at the latest schema")
        return 0
    if args.command == "consult":
        scheduled = args.scheduled_at or dt.datetime.now(dt.UTC)
        for line in asyncio.run(_create_consult(config, args.patient_name, scheduled, args.notes)):
            print(line)
        return 0
    parser.print_help()
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtm-consult", description=__doc__)
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="YAML settings file (default: ./config.yaml if present)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="listen address (server.host)")
    serve.add_argument("--port", type=int, help="listen port (server.port)")
    serve.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="YAML settings file")
    serve.add_argument("--demo", action="store_true", help="create a consult, print its links")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply all Alembic migrations")

    consult = commands.add_parser("consult", help="consults")
    consult_commands = consult.add_subparsers(dest="consult_command", required=True)
    create = consult_commands.add_parser("create", help="create a consult and print its links")
    create.add_argument("--patient-name", default="Demo Patient")
    create.add_argument(
        "--scheduled-at",
        type=_aware_datetime,
        default=None,
        help="ISO 8601 with offset (default: now)",
    )
    create.add_argument("--notes", default=None)

    api_key = commands.add_parser("api-key", help="clinic API keys for the REST API")
    api_key_commands = api_key.add_subparsers(dest="api_key_command", required=True)
    make_key = api_key_commands.add_parser(
        "create", help="make a new key; print it once, with the api.keys entry holding its hash"
    )
    make_key.add_argument(
        "--name", required=True, type=_clinic_name, help="the clinic (owns its consults)"
    )
    make_key.add_argument(
        "--display-name",
        type=_display_name,
        default=None,
        help="the clinic's name as participants see it (default: --name)",
    )
    return parser


def _clinic_name(text: str) -> str:
    if not re.fullmatch(CLINIC_NAME_PATTERN, text):
        raise argparse.ArgumentTypeError(
            "letters, digits, '.', '_' and '-' (starting with a letter or digit), "
            "at most 100 characters"
        )
    return text


def _display_name(text: str) -> str:
    if not 1 <= len(text.strip()) <= 200:
        raise argparse.ArgumentTypeError("1 to 200 characters")
    return text.strip()


def _create_api_key(clinic: str, display_name: str) -> list[str]:
    key = api_keys.new_key()
    entry = api_keys.key_entry(clinic, display_name, key)
    return [
        f"New API key for clinic {clinic!r}. It is shown only this once: give it to the",
        "clinic now (it sends it in the X-API-Key header).",
        "",
        f"  {key}",
        "",
        "Add this entry to api.keys in config.yaml (it holds the key's hash, not the key):",
        "",
        f"  {api_keys.config_line(entry)}",
        "",
        "Keys take effect when the server starts. To rotate, add the new entry next to the",
        "old one, switch the clinic to the new key, then remove the old entry.",
    ]


def _aware_datetime(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone offset, e.g. 2026-12-01T09:30:00+00:00")
    return value


def _load(args: argparse.Namespace) -> Config:
    path = args.config
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    overrides: dict[str, dict[str, object]] = {}
    if getattr(args, "host", None):
        overrides.setdefault("server", {})["host"] = args.host
    if getattr(args, "port", None) is not None:
        overrides.setdefault("server", {})["port"] = args.port
    return load_config(path, overrides=overrides)


def _reload_api_keys(app: web.Application, reload: Callable[[], Config]) -> None:
    """SIGHUP: take `api.keys` from the settings again, so a key can be added or retired
    without a restart (rotation: add the new key, move clients, remove the old one). Settings
    that do not load leave the keys as they were."""
    state = app[STATE]
    try:
        fresh = reload()
    except ConfigError:
        # Not the message: it may quote a value of the settings.
        log.error(
            "api keys not reloaded: the settings do not load; `mtm-consult db upgrade` "
            "with the same settings prints why"
        )
        return
    state.config = state.config.model_copy(
        update={"api": state.config.api.model_copy(update={"keys": fresh.api.keys})}
    )
    log.info("api keys reloaded: %d entries", len(fresh.api.keys))


def _base_url(config: Config) -> str:
    return config.server.public_url or f"http://{config.server.host}:{config.server.port}"


async def _upgrade(config: Config) -> None:
    engine = make_engine(config.database.url)
    await upgrade_to_head(engine)
    await engine.dispose()


async def _create_consult(
    config: Config, patient_name: str, scheduled_at: dt.datetime, notes: str | None
) -> list[str]:
    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()  # runs startup: secret, migrations
    try:
        return await _print_links(app, config, patient_name, scheduled_at, notes)
    finally:
        await runner.cleanup()


DEMO_MEDICATIONS: list[dict[str, Any]] = [
    {
        "name": "Metformin",
        "strength": "500 mg",
        "form": "tablet",
        "how_taken": "1 tablet twice daily with meals",
        "why": "Type 2 diabetes",
        "prescriber": "Dr. Okafor",
    },
    {
        "name": "Lisinopril",
        "strength": "10 mg",
        "form": "tablet",
        "how_taken": "1 tablet every morning",
        "why": "High blood pressure",
        "prescriber": "Dr. Okafor",
    },
    {
        "name": "Atorvastatin",
        "strength": "20 mg",
        "form": "tablet",
        "how_taken": "1 tablet at bedtime",
        "why": "Cholesterol",
    },
    {
        "name": "Ibuprofen",
        "strength": "200 mg",
        "form": "tablet",
        "how_taken": "1–2 tablets as needed for knee pain",
        "kind": "otc",
    },
]


async def _print_links(
    app: web.Application,
    config: Config,
    patient_name: str,
    scheduled_at: dt.datetime,
    notes: str | None,
    medications: list[dict[str, Any]] | None = None,
) -> list[str]:
    state = app[STATE]
    now = dt.datetime.fromtimestamp(state.clock(), dt.UTC)
    async with state.sessions() as session, session.begin():
        consult = await consults.create_consult(
            session,
            clinic=DEMO_CLINIC,
            patient_name=patient_name,
            scheduled_at=scheduled_at,
            notes=notes,
            now=now,
        )
        await panel_store.add_initial_medications(
            session, consult.id, DEMO_CLINIC, medications or [], now=now
        )
    lines = [f"consult {consult.id} for {patient_name}"]
    for participant in consult.participants:
        token = links.link_token(state.signer(), consult, participant, config.auth.link_ttl_hours)
        lines.append(f"  {participant.role:<11} {links.join_url(_base_url(config), token)}")
    return lines


async def _start_example_portal(
    app: web.Application, runner: web.AppRunner, links_printed: list[str]
) -> web.AppRunner:
    """The example clinic portal (web/examples/) on http://localhost at the next port, allowed
    to embed the demo's consults: the call embedded in another origin, as in a portal."""
    state = app[STATE]
    call_port = runner.addresses[0][1]
    host = state.config.server.host
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"  # listening everywhere: this machine's browser uses loopback
    call_origin = f"http://{f'[{host}]' if ':' in host else host}:{call_port}"
    if state.config.server.public_url is not None:
        public = urlsplit(state.config.server.public_url)
        call_origin = f"{public.scheme}://{public.netloc}"
    portal = web.AppRunner(example_host_app(call_origin), access_log=None)
    await portal.setup()
    wanted = call_port + 1 if 0 < call_port < 65535 else 0
    try:
        await web.TCPSite(portal, "127.0.0.1", wanted).start()
    except OSError:
        await web.TCPSite(portal, "127.0.0.1", 0).start()  # the next port is taken: any
    portal_origin = f"http://localhost:{portal.addresses[0][1]}"
    embed_settings = state.config.embed.clinics.get(DEMO_CLINIC)
    clinics = {
        **state.config.embed.clinics,
        DEMO_CLINIC: ClinicEmbedConfig(
            allowed_origins=[
                *(embed_settings.allowed_origins if embed_settings else []),
                portal_origin,
            ],
            medication_names_in_events=False,
        ),
    }
    state.config = state.config.model_copy(
        update={"embed": state.config.embed.model_copy(update={"clinics": clinics})}
    )
    pharmacist_link = next(
        line.split()[-1] for line in links_printed if line.strip().startswith("pharmacist")
    )
    print(
        "The call embedded in a clinic portal (another origin), with the pharmacist's link:",
        flush=True,
    )
    print(f"  {portal_origin}/#link={pharmacist_link}", flush=True)
    return portal


def _settle_garbage_collector() -> None:
    """Keep full collections rare and short once the server is up.

    Everything allocated at start-up (modules, the app) lives for good: freezing it takes it
    out of every later collection. A larger first-generation threshold means fewer
    collections under a steady stream of small messages. Measured in bench/ ("Where an
    edit's time goes"): full collections of a server holding thousands of sockets stalled
    every consult for 80-500 ms.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)


def _serve(config: Config, *, demo: bool, reload: Callable[[], Config]) -> int:
    async def run() -> None:
        app = create_app(config)
        runner = web.AppRunner(app, access_log_class=RedactingAccessLogger)
        await runner.setup()
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _reload_api_keys, app, reload)
        site = web.TCPSite(runner, config.server.host, config.server.port)
        await site.start()
        _settle_garbage_collector()
        print(f"MTM Consult listening on {_base_url(config)}", flush=True)
        example: web.AppRunner | None = None
        if demo:
            lines = await _print_links(
                app,
                config,
                "Demo Patient",
                dt.datetime.now(dt.UTC),
                "Demo consult",
                DEMO_MEDICATIONS,
            )
            print("Open each link in its own browser tab:", flush=True)
            for line in lines:
                print(line, flush=True)
            example = await _start_example_portal(app, runner, lines)
        try:
            await asyncio.Event().wait()
        finally:
            if example is not None:
                await example.cleanup()
            await runner.cleanup()

    try:
        if config.server.uvloop:
            try:
                import uvloop
            except ImportError:
                print(
                    "mtm-consult: server.uvloop is on but uvloop is not installed; "
                    "`pip install uvloop`, or set MTM_SERVER__UVLOOP=false",
                    file=sys.stderr,
                )
                return 2
            uvloop.run(run())
        else:
            asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except ClusterRefused as exc:
        print(f"mtm-consult: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
