"""Client secrets for service tokens (client credentials at the user service), one per service.

Made on the first start and kept across restarts, in `<data-dir>/secrets/<service>.secret`
(mode 0600, the directory 0700). Each process is told only the path of its own (launch.py); the
user service gets `clients.json`, the client ids with sha256 hashes of their secrets, never a
secret itself (services/user/clients.py reads it).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from msashop.services.user.clients import secret_hash

REGISTRY_FILE = "clients.json"


def secrets_dir(data_dir: Path) -> Path:
    return data_dir / "secrets"


def secret_file(data_dir: Path, service: str) -> Path:
    return secrets_dir(data_dir) / f"{service}.secret"


def _private_write(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read, replacing it whole (never half written)."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


def ensure(data_dir: Path, services: Iterable[str]) -> Path:
    """A secret for every one of `services` (the existing ones kept), and the registry of their
    hashes rewritten to match. Returns the registry's path."""
    directory = secrets_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    hashes = {}
    for service in sorted(set(services)):
        path = secret_file(data_dir, service)
        secret = path.read_text().strip() if path.is_file() else ""
        if not secret:
            secret = secrets.token_urlsafe(32)
            _private_write(path, secret + "\n")
        hashes[service] = secret_hash(secret)
    registry = directory / REGISTRY_FILE
    _private_write(registry, json.dumps({"clients": hashes}, indent=2, sort_keys=True) + "\n")
    return registry
