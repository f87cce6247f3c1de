"""nginx from Debian in front of several server instances, on loopback, with TLS.

It runs the repository's own deploy/nginx.conf (the configuration docs/deploy.md gives
operators): only the lines marked `# site` are rewritten, to this machine's loopback ports,
the instances under test and a throw-away self-signed certificate. If the file changes so
that one of them is no longer found, rendering fails: the tests and the documented
configuration cannot drift apart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.coturn import _die_with_parent
from tests.support.redis_server import free_tcp_port

NGINX = "/usr/sbin/nginx"
SITE_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"


class NginxError(RuntimeError):
    pass


def render_site(
    template: str,
    *,
    instances: Sequence[str],
    https_port: int,
    http_port: int,
    certificate: Path,
    key: Path,
) -> str:
    """deploy/nginx.conf with its `# site` lines set for a run on loopback."""
    lines = template.splitlines()
    site = [index for index, line in enumerate(lines) if line.rstrip().endswith("# site")]
    upstreams = [index for index in site if re.match(r"\s*server \S+:\d+ ", lines[index])]
    if not upstreams:
        raise NginxError("deploy/nginx.conf names no upstream `server ...;  # site` line")
    rewrites = {
        r"(\s*)listen 80;": rf"\g<1>listen 127.0.0.1:{http_port};",
        r"(\s*)listen 443 ssl;": rf"\g<1>listen 127.0.0.1:{https_port} ssl;",
        r"(\s*)server_name \S+;": r"\g<1>server_name 127.0.0.1;",
        r"(\s*)ssl_certificate \S+;": rf"\g<1>ssl_certificate {certificate};",
        r"(\s*)ssl_certificate_key \S+;": rf"\g<1>ssl_certificate_key {key};",
    }
    found: set[str] = set()
    out: list[str] = []
    for index, line in enumerate(lines):
        if index == upstreams[0]:
            indent = re.match(r"\s*", line)
            options = line.split(None, 2)[2].split("#")[0].strip()  # max_fails=…;
            for address in instances:
                out.append(f"{indent.group(0) if indent else ''}server {address} {options}")
            continue
        if index in upstreams:
            continue
        if index in site:
            for pattern, replacement in rewrites.items():
                if re.match(pattern, line):
                    line = re.sub(pattern, replacement, line.split("#")[0].rstrip())
                    found.add(pattern)
                    break
            else:
                raise NginxError(f"deploy/nginx.conf: no rewrite for the site line {line!r}")
        out.append(line)
    missing = set(rewrites) - found
    if missing:
        raise NginxError(f"deploy/nginx.conf lacks site lines matching {sorted(missing)}")
    return "\n".join(out) + "\n"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (valid one day)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certificate_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return certificate_path, key_path


class Nginx:
    """nginx in the foreground, one process, its files in a temporary directory."""

    def __init__(self, instances: Sequence[str], *, binary: str = NGINX) -> None:
        self.binary = binary
        self.instances = list(instances)
        self.https_port = free_tcp_port()
        self.http_port = free_tcp_port()
        self._workdir = Path(tempfile.mkdtemp(prefix="mtm-nginx-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _write_config(self) -> Path:
        certificate, key = self_signed(self._workdir)
        site = render_site(
            SITE_CONFIG.read_text(),
            instances=self.instances,
            https_port=self.https_port,
            http_port=self.http_port,
            certificate=certificate,
            key=key,
        )
        (self._workdir / "mtm-consult.conf").write_text(site)
        temp = self._workdir / "temp"
        temp.mkdir()
        main = f"""
daemon off;
master_process off;
pid {self._workdir / "nginx.pid"};
error_log {self._workdir / "error.log"} warn;
# Two connections per client (client and upstream): room for the benchmarks' thousands.
worker_rlimit_nofile 65536;
events {{ worker_connections 16384; }}
http {{
    access_log {self._workdir / "access.log"};
    client_body_temp_path {temp / "body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    include {self._workdir / "mtm-consult.conf"};
}}
"""
        path = self._workdir / "nginx.conf"
        path.write_text(main)
        return path

    def start(self, timeout: float = 10.0) -> None:
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise NginxError(
                f"{self.binary} not found: install the Debian package 'nginx' "
                "(scripts/setup.sh does)"
            )
        config = self._write_config()
        check = subprocess.run(
            [self.binary, "-t", "-q", "-c", str(config), "-p", str(self._workdir)],
            capture_output=True,
            text=True,
        )
        if check.returncode != 0:
            raise NginxError(f"nginx refused the configuration:\n{check.stderr}")
        self._process = subprocess.Popen(
            [self.binary, "-c", str(config), "-p", str(self._workdir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.https_port), timeout=0.5).close()
                return
            if self._process.poll() is not None:
                raise NginxError(f"nginx exited with {self._process.returncode}:\n{self.errors()}")
            if time.monotonic() > deadline:
                self.stop()
                raise NginxError("nginx did not listen in time")
            time.sleep(0.02)

    def errors(self) -> str:
        with contextlib.suppress(OSError):
            return (self._workdir / "error.log").read_text()
        return ""

    def access_log(self) -> str:
        with contextlib.suppress(OSError):
            return (self._workdir / "access.log").read_text()
        return ""

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Nginx:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
