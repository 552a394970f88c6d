"""Ed25519 signing keys for access tokens: load or create, publish as JWK, sign claims.

The user service signs with it (one current key of a ring, see services/user/keyring.py); tests
use it to mint tokens the chassis verifier accepts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from msashop.chassis.auth import ACCESS, AUDIENCE, ISSUER, SERVICE


class SigningKey:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        # RFC 7638 thumbprint as the key id: stable for the same key.
        canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": self._x}, separators=(",", ":"))
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes, *, source: str = "PEM") -> SigningKey:
        """One unencrypted PKCS8 Ed25519 private key; anything else is a ValueError naming `source`."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{source} is not a readable private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{source} is not an Ed25519 private key")
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        return cls.from_pem(path.read_bytes(), source=str(path))

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """Load a PEM key file, creating it (mode 0600) the first time."""
        if path.exists():
            return cls.load(path)
        key = cls.generate()
        key.save(path)
        return key

    def pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def save(self, path: Path) -> None:
        """Write the private key as PEM, readable by the owner only (created 0600, never widened)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_bytes(self.pem())

    def jwk(self) -> dict[str, str]:
        return {"kty": "OKP", "crv": "Ed25519", "x": self._x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._private, algorithm="EdDSA", headers={"kid": self.kid})

    def access_token(
        self,
        user_id: str,
        roles: list[str] | tuple[str, ...] = ("customer",),
        *,
        email: str = "",
        session_id: str | None = None,
        ttl_seconds: int = 900,
    ) -> tuple[str, dict[str, Any]]:
        """A signed access token and its claims."""
        extra = {"email": email, "roles": list(roles), "sid": session_id or uuid.uuid4().hex}
        return self._issue(ACCESS, user_id, AUDIENCE, ttl_seconds, extra)

    def service_token(
        self, service: str, audience: str, *, ttl_seconds: int = 300
    ) -> tuple[str, dict[str, Any]]:
        """A signed service token: `service` (its client id) calling `audience`, and its claims."""
        return self._issue(SERVICE, service, audience, ttl_seconds, {})

    def _issue(
        self, typ: str, subject: str, audience: str, ttl_seconds: int, extra: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """A signed token of type `typ` and its claims: ours (iss), for `audience`, from now on."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "sub": subject,
            **extra,
            "typ": typ,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
        }
        return self.sign(claims), claims
