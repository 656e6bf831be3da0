"""Software no one here wrote, put where users have it: nginx as a strict
front end to an upstream, and a test certificate authority (openssl) for
HTTPS upstreams and TLS between the planes."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness import free_port


def _run(args: list[str], cwd: Path) -> None:
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"{args[0]} failed: {p.stderr}"


@dataclass
class Pki:
    """A CA and leaf certificates signed by it (EC P-256, via the openssl CLI)."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @classmethod
    def create(cls, dir: Path) -> "Pki":
        dir.mkdir(parents=True, exist_ok=True)
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=aigw test CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], dir)
        return cls(dir)

    def leaf(self, name: str, *, dns: list[str], client: bool = False) -> tuple[Path, Path]:
        """A certificate for `dns` names (and 127.0.0.1); returns (cert, key) paths."""
        sans = ",".join([f"DNS:{d}" for d in dns] + ["IP:127.0.0.1"])
        usage = "clientAuth" if client else "serverAuth"
        ext = self.dir / f"{name}.ext"
        ext.write_text(f"subjectAltName={sans}\nextendedKeyUsage={usage}\n"
                       "basicConstraints=critical,CA:FALSE\n")
        _run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={dns[0]}"], self.dir)
        _run(["openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
              "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", str(ext)], self.dir)
        return self.dir / f"{name}.pem", self.dir / f"{name}.key"


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{servers}
}}
"""

SERVER = """
    server {{
        listen 127.0.0.1:{port}{ssl};
        server_name localhost;
        {tls}
        location /moved/ {{
            return 302 https://elsewhere.invalid/;
        }}
        location / {{
            proxy_pass http://127.0.0.1:{mock_port};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            {extra}
        }}
    }}
"""


class Nginx:
    """Debian's nginx in front of the mock: plain HTTP on `url`, and HTTPS
    with a certificate for `localhost` from `pki` on `tls_url` when given;
    under `/moved/` it answers every request with a redirect elsewhere.
    Like any HTTP/1.1 origin it answers a request without `Host` with 400."""

    def __init__(self, dir: Path, mock_port: int, pki: Pki | None = None, *,
                 forwarded_proto: bool = False):
        """`forwarded_proto`: say the scheme the client used
        (`X-Forwarded-Proto`), as a TLS front for admin-web does; `Host` is
        nginx's default (the backend's address) either way."""
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        assert Path(binary).exists(), "nginx is not installed (e2e/run-tests.sh installs it)"
        dir.mkdir(parents=True, exist_ok=True)
        self.dir = dir
        self.port = free_port()
        extra = "proxy_set_header X-Forwarded-Proto $scheme;" if forwarded_proto else ""
        servers = [SERVER.format(port=self.port, ssl="", tls="", mock_port=mock_port, extra=extra)]
        self.tls_port = 0
        if pki is not None:
            cert, key = pki.leaf("nginx", dns=["localhost"])
            self.cert = cert
            self.tls_port = free_port()
            tls = f"ssl_certificate {cert};\n        ssl_certificate_key {key};"
            servers.append(SERVER.format(port=self.tls_port, ssl=" ssl", tls=tls,
                                         mock_port=mock_port, extra=extra))
        conf = dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=dir, servers="".join(servers)))
        self.log = open(dir / "stderr.log", "wb")
        self.proc = subprocess.Popen([binary, "-p", str(dir), "-c", str(conf)],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(self.url + "/v1/models", timeout=2)
                break
            except httpx.TransportError:
                assert self.proc.poll() is None, (dir / "error.log").read_text()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"https://localhost:{self.tls_port}"

    def tls_spki(self) -> str:
        """base64 SHA-256 of the TLS certificate's public key, which
        Chromium's --ignore-certificate-errors-spki-list trusts."""
        pem = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-pubkey", "-noout"],
                             capture_output=True, check=True, timeout=30).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pem,
                             capture_output=True, check=True, timeout=30).stdout
        return base64.b64encode(hashlib.sha256(der).digest()).decode()

    def access_log(self) -> str:
        return (self.dir / "access.log").read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
