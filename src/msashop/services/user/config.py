"""User service settings (`MSASHOP_USER_*`, and `MSASHOP_RATE_LIMITS` shared with the gateway)."""

from __future__ import annotations

from pathlib import Path

from limits import RateLimitItem, parse
from pydantic import AliasChoices, Field, SecretStr, field_validator

from msashop.chassis.settings import ServiceSettings


class UserSettings(ServiceSettings):
    # Where the private keys that sign access tokens come from (every one found is loaded; the
    # database says which is current, see keyring.py). Production refuses to start unless one of
    # the three is given explicitly (see `development_keys`).
    # A PEM Ed25519 key. Unset: `<data_dir>/keys/access-signing.pem`, created in development when
    # no key exists anywhere.
    signing_key_file: Path | None = None
    # A directory of `*.pem` keys. Unset: `<data_dir>/keys/signing`, where development rotations
    # write the keys they generate. In production a rotation promotes a key put here beforehand.
    signing_keys_dir: Path | None = None
    # PEM text of one or more keys (a secret from the environment), loaded like the files.
    signing_keys_pem: SecretStr | None = None
    # How often a replica rereads which key is current (a rotation by another replica).
    keyring_reload_seconds: float = Field(default=5.0, gt=0, le=60)
    # Password of the seeded admin `admin@msashop.local` (the supervisor passes it); unset: no seed.
    admin_password: SecretStr | None = None
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=3600)
    # Failed logins tolerated before answers are 429 (`limits` notation), per account (the email
    # given, known or not) and per client IP. `MSASHOP_RATE_LIMITS=off` turns the throttle off.
    login_failures_per_account: str = "5/15minutes"
    login_failures_per_ip: str = "20/15minutes"
    rate_limits: bool = Field(
        default=True, validation_alias=AliasChoices("MSASHOP_RATE_LIMITS", "rate_limits")
    )
    # The platform's services as OAuth clients (clients.py): a JSON file of client ids and secret
    # hashes, which the supervisor writes. Unset: `<data_dir>/secrets/clients.json`. Production
    # refuses to start without it (no service could get a token).
    clients_file: Path | None = None
    # Lifetime of a service token (client credentials, POST /oauth/token).
    service_token_ttl_seconds: int = Field(default=300, ge=60, le=900)
    # The client IP is the gateway's X-Forwarded-For (it overwrites a client's own); False: the
    # TCP peer (a user service reached directly, without the gateway in front).
    trust_forwarded_for: bool = True

    @field_validator("login_failures_per_account", "login_failures_per_ip")
    @classmethod
    def _a_limit(cls, value: str) -> str:
        parse(value)  # a ValueError names what is wrong
        return value

    def development_keys(self) -> dict[str, bool]:
        explicit = self.signing_key_file or self.signing_keys_dir or self.signing_keys_pem
        return {**super().development_keys(), "signing_key_file": not explicit}

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key_file or self.data_dir / "keys" / "access-signing.pem"

    @property
    def signing_keys_path(self) -> Path:
        return self.signing_keys_dir or self.data_dir / "keys" / "signing"

    @property
    def clients_path(self) -> Path:
        return self.clients_file or self.data_dir / "secrets" / "clients.json"

    @property
    def account_limit(self) -> RateLimitItem:
        return parse(self.login_failures_per_account)

    @property
    def ip_limit(self) -> RateLimitItem:
        return parse(self.login_failures_per_ip)
