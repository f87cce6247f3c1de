"""A private redis-server on a free loopback port, which tests may stop and start again.

The Redis every agent of this machine shares (127.0.0.1:6379) is never restarted: a test
that needs Redis to fail starts one of its own. It keeps nothing on disk (`--save ""`,
no append-only file), so a restart loses every key, as a crashed Redis without
persistence would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.support.coturn import _die_with_parent

REDIS_SERVER = "/usr/bin/redis-server"


class RedisServerError(RuntimeError):
    pass


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, *, binary: str = REDIS_SERVER) -> None:
        self.binary = binary
        self.port = free_tcp_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir = Path(tempfile.mkdtemp(prefix="mtm-redis-"))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start (again, on the same port) and wait until it answers PING."""
        if self.running:
            return
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise RedisServerError(
                f"{self.binary} not found: install the Debian package 'redis-server' "
                "(scripts/setup.sh does)"
            )
        self._process = subprocess.Popen(
            [
                self.binary,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self._workdir),
                "--protected-mode", "yes",
                "--loglevel", "warning",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None:
                raise RedisServerError(f"redis-server exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RedisServerError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Kill it at once (SIGKILL): every key and connection is gone."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(Exception):
            self.close()
