"""User service settings (`MSASHOP_USER_*`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from msashop.chassis.settings import ServiceSettings


class UserSettings(ServiceSettings):
    # The Ed25519 key that signs access tokens. Unset: `<data_dir>/keys/access-signing.pem`,
    # created on first start, which production refuses (see `development_keys`).
    signing_key_file: Path | None = None
    # Password of the seeded admin `admin@msashop.local` (the supervisor passes it); unset: no seed.
    admin_password: SecretStr | None = None
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=3600)

    def development_keys(self) -> dict[str, bool]:
        return {**super().development_keys(), "signing_key_file": self.signing_key_file is None}

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key_file or self.data_dir / "keys" / "access-signing.pem"
