"""Mutual TLS inside the platform: where a process finds its certificate, and the TLS settings
its server and its clients use.

The supervisor (`msashop up`, supervisor/certificates.py) keeps a private CA in `<data-dir>/tls`
and one certificate per component there: `ca.pem`, `<name>.pem`, `<name>.key`. A process is told
the directory (`MSASHOP_<NAME>_TLS_DIR`); its name picks its files. With mTLS on:

- its server (uvicorn) presents `<name>.pem` and accepts only clients presenting a certificate
  signed by `ca.pem` (CERT_REQUIRED): plain HTTP, no certificate or another CA's are refused in
  the handshake, before any HTTP is read;
- its clients (ServiceClient, the gateway's upstream pool, the registry's checks) present the
  same certificate and trust only `ca.pem`.

The transport says "one of ours", not who: uvicorn does not hand the peer certificate to the
app, so the calling service's identity is the service token it sends (README, Security).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CA_FILE = "ca.pem"


@dataclass(frozen=True)
class TlsFiles:
    """One component's certificate, its key and the CA that signed every certificate."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def of(cls, tls_dir: Path, name: str) -> TlsFiles:
        return cls(ca=tls_dir / CA_FILE, cert=tls_dir / f"{name}.pem", key=tls_dir / f"{name}.key")

    def missing(self) -> list[Path]:
        return [path for path in (self.ca, self.cert, self.key) if not path.is_file()]


def scheme(tls: TlsFiles | None) -> str:
    return "https" if tls is not None else "http"


def client_context(tls: TlsFiles | None) -> ssl.SSLContext | None:
    """What a client of the platform's services connects with: our CA only, our certificate
    shown (hostnames checked: certificates name 127.0.0.1, localhost and the service). None: no TLS."""
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(tls.cert), str(tls.key))
    return context


def server_context(tls: TlsFiles) -> ssl.SSLContext:
    """A server that accepts only clients with a certificate from our CA (tests, raw servers)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tls.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(str(tls.cert), str(tls.key))
    return context


def uvicorn_options(tls: TlsFiles | None) -> dict[str, Any]:
    """uvicorn.run/Config keywords for a server with mTLS (empty: plain HTTP)."""
    if tls is None:
        return {}
    return {
        "ssl_certfile": str(tls.cert),
        "ssl_keyfile": str(tls.key),
        "ssl_ca_certs": str(tls.ca),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }
