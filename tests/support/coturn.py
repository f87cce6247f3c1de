"""A throw-away coturn TURN server bound to loopback, for tests that carry real media.

Every media test here runs with ``iceTransportPolicy: "relay"``: browsers and aiortc peers
only ever talk to this TURN server on 127.0.0.1, and it relays between allocations that are
also on 127.0.0.1. Nothing leaves the machine.

Usage (async)::

    async with Coturn() as turn:
        username, password = turn.credentials("p_alice")
        config = {"iceServers": [turn.ice_server("p_alice")], "iceTransportPolicy": "relay"}
        ...

or synchronously (handy for a session-scoped fixture that must not depend on an event loop)::

    with Coturn() as turn:
        yield turn

The server runs with ``--use-auth-secret``: credentials are coturn's TURN REST API
ephemeral credentials (username ``"<unix expiry>:<name>"``, password
``base64(HMAC-SHA1(secret, username))``), the same scheme the application uses, so a
server under test can be pointed at it with ``MTM_ICE__TURN_URLS`` / ``MTM_ICE__TURN_SECRET``.

Peers are restricted to the loopback range (``--denied-peer-ip`` everything,
``--allowed-peer-ip`` 127.0.0.0/8 and ::1), so even a misbehaving client cannot make this
server send a packet anywhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from server.ice import turn_credentials as server_turn_credentials

TURNSERVER = "/usr/bin/turnserver"
LOOPBACK = "127.0.0.1"


class CoturnError(RuntimeError):
    """coturn is missing, or did not start."""


def turn_credentials(secret: str, name: str, ttl_seconds: int = 3600) -> tuple[str, str]:
    """Return ``(username, password)`` for coturn's ``use-auth-secret`` scheme, valid now."""
    return server_turn_credentials(secret, name, now=time.time(), ttl_seconds=ttl_seconds)


def _udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _tcp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _pick_listening_port() -> int:
    """A port free for both TCP and UDP on loopback (coturn listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if _udp_port_free(port):
            return port
    raise CoturnError("could not find a free loopback port for coturn")


def _pick_relay_range(size: int, avoid: int) -> tuple[int, int]:
    """A block of ``size`` consecutive UDP ports in 40000-60000, all free right now."""
    for _ in range(50):
        low = random.randint(40000, 60000 - size)
        high = low + size - 1
        if low <= avoid <= high:
            continue
        if all(_udp_port_free(port) for port in range(low, high + 1)):
            return low, high
    raise CoturnError(f"could not find {size} free consecutive UDP ports for coturn relays")


class _StunProbe:
    """Non-blocking STUN Binding request (RFC 5389) to coturn's UDP listener."""

    def __init__(self, port: int) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._sock.connect((LOOPBACK, port))
        self._transaction = secrets.token_bytes(12)
        self._request = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + self._transaction

    def answered(self) -> bool:
        """Send (again) and report whether a Binding success response has arrived."""
        with contextlib.suppress(OSError):
            self._sock.send(self._request)
        while True:
            try:
                data = self._sock.recv(2048)
            except OSError:  # nothing yet, or ICMP port unreachable before coturn listens
                return False
            if data[:2] == b"\x01\x01" and data[8:20] == self._transaction:
                return True

    def __enter__(self) -> _StunProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the test process dies (Linux).

    Linux sends it when the *thread* that started the child exits, so start coturn from a
    long-lived thread (the main thread or the event loop's), not from a worker pool.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


class Coturn:
    """A coturn process on 127.0.0.1 with a random secret, realm and ports.

    Attributes available after start: ``port``, ``url`` (``turn:127.0.0.1:<port>?
    transport=udp``), ``tcp_url``, ``secret``, ``realm``, ``min_port``/``max_port`` (the
    relay range) and ``pid``.
    """

    def __init__(
        self,
        *,
        binary: str = TURNSERVER,
        relay_ports: int = 200,
        verbose: bool = True,
        startup_timeout: float = 10.0,
    ) -> None:
        self.binary = binary
        self.relay_ports = relay_ports
        self.verbose = verbose
        self.startup_timeout = startup_timeout
        self.secret = secrets.token_hex(16)
        self.realm = f"mtm-test-{secrets.token_hex(4)}"
        self.port = 0
        self.min_port = 0
        self.max_port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._final_log = ""

    # -- addresses and credentials ------------------------------------------------------

    @property
    def url(self) -> str:
        """The TURN URL over UDP (what the application hands out)."""
        return f"turn:{LOOPBACK}:{self.port}?transport=udp"

    @property
    def tcp_url(self) -> str:
        """The same server over TCP."""
        return f"turn:{LOOPBACK}:{self.port}?transport=tcp"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def credentials(self, name: str, ttl_seconds: int = 3600) -> tuple[str, str]:
        """Ephemeral ``(username, password)`` valid for ``ttl_seconds``."""
        return turn_credentials(self.secret, name, ttl_seconds)

    def ice_server(self, name: str, ttl_seconds: int = 3600) -> dict[str, Any]:
        """An ``RTCIceServer`` dict (browser / protocol shape) with fresh credentials."""
        username, credential = self.credentials(name, ttl_seconds)
        return {"urls": [self.url], "username": username, "credential": credential}

    def server_env(self) -> dict[str, str]:
        """Environment variables pointing an ``mtm-consult serve`` process at this server."""
        return {
            "MTM_ICE__TURN_URLS": f'["{self.url}"]',
            "MTM_ICE__TURN_SECRET": self.secret,
            "MTM_ICE__TRANSPORT_POLICY": "relay",
        }

    def log_text(self) -> str:
        """coturn's log so far (kept after ``stop``). Session lines need ``verbose``."""
        if self._workdir is not None:
            with contextlib.suppress(OSError):
                return (self._workdir / "turnserver.log").read_text(errors="replace")
        return self._final_log

    # -- lifecycle ------------------------------------------------------------------------

    def _command(self) -> list[str]:
        assert self._workdir is not None
        command = [
            self.binary,
            "-n",
            f"--listening-ip={LOOPBACK}",
            f"--relay-ip={LOOPBACK}",
            f"--listening-port={self.port}",
            "--use-auth-secret",
            f"--static-auth-secret={self.secret}",
            f"--realm={self.realm}",
            "--no-tls",
            "--no-dtls",
            "--allow-loopback-peers",
            "--denied-peer-ip=0.0.0.0-255.255.255.255",
            "--allowed-peer-ip=127.0.0.0-127.255.255.255",
            "--denied-peer-ip=::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "--allowed-peer-ip=::1",
            "--no-cli",
            f"--min-port={self.min_port}",
            f"--max-port={self.max_port}",
            f"--log-file={self._workdir / 'turnserver.log'}",
            "--simple-log",
            "--no-stdout-log",
            f"--pidfile={self._workdir / 'turnserver.pid'}",
            f"--db={self._workdir / 'turndb'}",
        ]
        if self.verbose:
            command.append("--verbose")
        return command

    def _launch(self) -> None:
        if self._process is not None:
            raise CoturnError("coturn is already running")
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise CoturnError(
                f"{self.binary} not found: install the Debian package 'coturn' "
                "(scripts/setup.sh does)"
            )
        self._workdir = Path(tempfile.mkdtemp(prefix="mtm-coturn-"))
        self.port = _pick_listening_port()
        self.min_port, self.max_port = _pick_relay_range(self.relay_ports, self.port)
        self._process = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    def _check_alive(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            log = self.log_text()
            self._cleanup()
            raise CoturnError(f"turnserver exited with status {code} while starting:\n{log}")

    def _timed_out(self) -> None:
        log = self.log_text()
        self._terminate_blocking()
        raise CoturnError(
            f"turnserver did not accept on {LOOPBACK}:{self.port} within "
            f"{self.startup_timeout} s:\n{log}"
        )

    async def start(self) -> None:
        """Start coturn and wait until it answers a STUN Binding request over UDP."""
        self._launch()
        deadline = time.monotonic() + self.startup_timeout
        with _StunProbe(self.port) as probe:
            while not probe.answered():
                self._check_alive()
                if time.monotonic() > deadline:
                    self._timed_out()
                await asyncio.sleep(0.05)

    def start_blocking(self) -> None:
        """Like :meth:`start`, without an event loop."""
        self._launch()
        deadline = time.monotonic() + self.startup_timeout
        with _StunProbe(self.port) as probe:
            while not probe.answered():
                self._check_alive()
                if time.monotonic() > deadline:
                    self._timed_out()
                time.sleep(0.05)

    async def stop(self, grace: float = 5.0) -> None:
        """Terminate coturn (SIGTERM, then SIGKILL after ``grace`` seconds) and clean up."""
        await asyncio.to_thread(self._terminate_blocking, grace)

    def stop_blocking(self, grace: float = 5.0) -> None:
        """Like :meth:`stop`, without an event loop."""
        self._terminate_blocking(grace)

    def _terminate_blocking(self, grace: float = 5.0) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        self._final_log = self.log_text()
        self._process = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    async def __aenter__(self) -> Coturn:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __enter__(self) -> Coturn:
        self.start_blocking()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_blocking()
