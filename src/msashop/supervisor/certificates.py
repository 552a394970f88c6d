"""The platform's private CA and one certificate per component, in `<data-dir>/tls` (cryptography).

`msashop up` with mTLS on calls `ensure`: a CA is created on the first run, and each component's
certificate is (re)issued when it is missing, expires within RENEW_WITHIN, or was not signed by
the current CA. `msashop certs rotate` re-issues at once. Processes read their files when they
start, so a re-issued certificate is used from the process's next start (a restart of the
platform, or the supervisor restarting a process that died).

Keys are EC P-256 (what every TLS stack accepts); leaf certificates are short-lived (LEAF_DAYS)
and valid for serverAuth and clientAuth (each service is both), named 127.0.0.1, localhost and
the component's name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from msashop.chassis.tls import CA_FILE, TlsFiles

TLS_DIR = "tls"
CA_KEY_FILE = "ca.key"
CA_DAYS = 365
LEAF_DAYS = 30
RENEW_WITHIN = dt.timedelta(days=7)
# Clients of the services that serve nothing themselves: `msashop up`/`status` and a Prometheus.
CLIENT_ONLY = ("supervisor", "prometheus")


class CertificateError(Exception):
    """The TLS directory cannot be used (an unreadable CA, a bad name)."""


def tls_dir(data_dir: Path) -> Path:
    return data_dir / TLS_DIR


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, *, secret: bool) -> None:
    """Atomically, so a starting process never reads half a file; keys readable by us only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _new_authority(directory: Path, now: dt.datetime) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"msashop CA {now:%Y-%m-%d %H:%M:%S}")])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # clocks of other processes may lag a little
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(directory / CA_KEY_FILE, _key_pem(key), secret=True)
    _write(directory / CA_FILE, cert.public_bytes(serialization.Encoding.PEM), secret=False)
    return Authority(cert, key)


def _load_authority(directory: Path) -> Authority | None:
    try:
        cert = x509.load_pem_x509_certificate((directory / CA_FILE).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY_FILE).read_bytes(), password=None)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise CertificateError(
            f"{directory} holds an unreadable CA ({exc}); remove ca.pem and ca.key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{directory / CA_KEY_FILE} is not an EC key")
    return Authority(cert, key)


def authority(directory: Path, *, now: dt.datetime | None = None) -> tuple[Authority, bool]:
    """The CA in `directory`, created (or replaced, when it expires within RENEW_WITHIN) if needed;
    True when it is new, so every certificate it signed before is void."""
    now = now or _now()
    directory.mkdir(parents=True, exist_ok=True)
    found = _load_authority(directory)
    if found is not None and found.cert.not_valid_after_utc - now > RENEW_WITHIN:
        return found, False
    return _new_authority(directory, now), True


def _check_name(name: str) -> None:
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise CertificateError(f"{name!r} is not a component name")


def issue(directory: Path, ca: Authority, name: str, *, now: dt.datetime | None = None) -> TlsFiles:
    """A new key and certificate for component `name`, signed by `ca`."""
    _check_name(name)
    now = now or _now()
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=LEAF_DAYS), ca.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                    x509.DNSName(name),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    files = TlsFiles.of(directory, name)
    # The key first: a process starting in between finds the old pair or a failing check, never
    # a certificate without its key.
    _write(files.key, _key_pem(key), secret=True)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), secret=False)
    return files


def is_current(files: TlsFiles, ca: Authority, *, now: dt.datetime | None = None) -> bool:
    """True when the certificate exists, was signed by `ca` and stays valid beyond RENEW_WITHIN."""
    now = now or _now()
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    except (FileNotFoundError, ValueError):
        return False
    if not files.key.is_file() or cert.issuer != ca.cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return cert.not_valid_after_utc - now > RENEW_WITHIN


def ensure(directory: Path, names: Iterable[str], *, now: dt.datetime | None = None) -> list[str]:
    """The CA and a current certificate for each of `names` (and CLIENT_ONLY); the names whose
    certificate was (re)issued now."""
    ca, new_ca = authority(directory, now=now)
    issued = []
    for name in dict.fromkeys([*names, *CLIENT_ONLY]):
        if new_ca or not is_current(TlsFiles.of(directory, name), ca, now=now):
            issue(directory, ca, name, now=now)
            issued.append(name)
    return issued


def rotate(directory: Path, names: Iterable[str], *, now: dt.datetime | None = None) -> list[str]:
    """Re-issue the certificates of `names` now (new keys), whatever their state."""
    ca, new_ca = authority(directory, now=now)
    if new_ca:  # the old CA was about to expire: nothing it signed is trusted any more
        names = [*names, *issued_names(directory)]
    done = []
    for name in dict.fromkeys(names):
        issue(directory, ca, name, now=now)
        done.append(name)
    return done


def issued_names(directory: Path) -> list[str]:
    """The components with a certificate in `directory`."""
    return sorted(p.stem for p in directory.glob("*.pem") if p.name != CA_FILE)


def expires(files: TlsFiles) -> dt.datetime | None:
    try:
        return x509.load_pem_x509_certificate(files.cert.read_bytes()).not_valid_after_utc
    except (FileNotFoundError, ValueError):
        return None


ON = frozenset({"on", "true", "1", "yes"})
OFF = frozenset({"off", "false", "0", "no"})


def mtls_enabled(configured: bool | None, environ: Mapping[str, str]) -> bool:
    """MSASHOP_MTLS (on/off) over the config file's `[security] mtls` over the default: on in
    production (MSASHOP_ENV=production), off in development and tests, where a plain `curl` to a
    service port is worth more than encryption on one machine."""
    given = environ.get("MSASHOP_MTLS", "").strip().lower()
    if given in ON:
        return True
    if given in OFF:
        return False
    if given:
        raise ValueError(f"MSASHOP_MTLS={given!r}: use on or off")
    if configured is not None:
        return configured
    return environ.get("MSASHOP_ENV", "development") == "production"


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """Signatures only (ECDSA: no key encipherment); the CA's also sign certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )
