"""The platform's services as OAuth clients: who may ask for a service token, and for whom.

The registry is a JSON file the supervisor writes (deploys: a mounted secret), holding for each
client id (a service's name) the hash of its secret, never the secret itself:

    {"clients": {"order": "sha256:<hex>", "gateway": "sha256:<hex>", ...}}

sha256 is enough: a client secret is 256 random bits, not a guessable password (the same reason
refresh tokens are stored as sha256). Every registered service may also be called, so the client
ids are the audiences a token may be asked for. The file is read again when it changes (a service
added), checked at most once per request for its modification time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path

SCHEME = "sha256:"


def secret_hash(secret: str) -> str:
    return SCHEME + hashlib.sha256(secret.encode()).hexdigest()


def parse_registry(text: str, *, source: str = "client registry") -> dict[str, str]:
    """{client id: secret hash} from the file's text; a ValueError names what is wrong."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{source} is not JSON: {exc}") from None
    clients = data.get("clients") if isinstance(data, dict) else None
    if not isinstance(clients, dict):
        raise ValueError(f'{source} has no "clients" object')
    for client_id, hashed in clients.items():
        if not isinstance(hashed, str) or not hashed.startswith(SCHEME) or len(hashed) != len(SCHEME) + 64:
            raise ValueError(f"{source}: the secret hash of {client_id!r} is not sha256:<64 hex digits>")
    return dict(clients)


@dataclass
class ClientRegistry:
    path: Path | None
    _hashes: dict[str, str] = field(default_factory=dict)
    _mtime: float | None = None

    @classmethod
    def of(cls, hashes: dict[str, str]) -> ClientRegistry:
        """A registry held in memory (tests, a registry from elsewhere)."""
        return cls(None, dict(hashes))

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._hashes, self._mtime = {}, None
            return
        if mtime != self._mtime:
            self._hashes = parse_registry(self.path.read_text(), source=str(self.path))
            self._mtime = mtime

    def authenticate(self, client_id: str, secret: str) -> bool:
        """Whether `secret` is `client_id`'s. Compared in constant time, known client or not."""
        self._reload()
        expected = self._hashes.get(client_id, "")
        matches = hmac.compare_digest(secret_hash(secret), expected or SCHEME + "0" * 64)
        return bool(expected) and matches

    def audiences(self) -> frozenset[str]:
        self._reload()
        return frozenset(self._hashes)
