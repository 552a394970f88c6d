"""The ring of keys that sign access tokens: the current one signs, the previous ones still verify.

Private keys come from files and the environment (settings: `signing_key_file`, every `*.pem` of
`signing_keys_dir`, `signing_keys_pem`); development also generates them. The database keeps, for
every key ever seen, its public JWK and its dates (keys.py), so all replicas agree on the current
key and the JWKS lists exactly the keys whose tokens may still be valid.

Rotation without downtime: the new key becomes current and signs every new token; the old one stays
in the JWKS for the grace period (one token lifetime and a little more), then drops out. Verifiers
meet the new key id on the first token it signed and refetch the JWKS. Retiring a key by hand (it
leaked) also puts `kid:<kid>` in the shared revocation store, which every verifier checks, so its
tokens fail at once everywhere, not when the verifiers' cached JWKS next expires.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError

from msashop.chassis.auth import LEEWAY_SECONDS
from msashop.chassis.errors import Conflict, NotFound
from msashop.chassis.revocation import RevocationStore
from msashop.chassis.signing import SigningKey
from msashop.chassis.unit_of_work import UnitOfWork
from msashop.services.user.config import UserSettings
from msashop.services.user.db import SigningKeyRepository
from msashop.services.user.keys import KeyRecord, KeyState, current, grace_period, next_key, published

log = structlog.get_logger()
PEM_BEGIN = "-----BEGIN"


def _pem_blocks(text: str) -> list[str]:
    return [PEM_BEGIN + block for block in text.split(PEM_BEGIN)[1:]]


class KeyRing:
    def __init__(self, settings: UserSettings, store: RevocationStore) -> None:
        self.settings = settings
        self.store = store
        self.grace = grace_period(
            settings.access_token_ttl_seconds, LEEWAY_SECONDS, settings.keyring_reload_seconds
        )
        self._private: dict[str, SigningKey] = {}
        self._records: list[KeyRecord] = []
        self._loaded_at = -float("inf")
        self._new_uow: Callable[[], UnitOfWork] | None = None
        self._scan()
        if not self._private:
            if not settings.is_development:
                raise RuntimeError("no signing key found in signing_key_file, signing_keys_dir or _pem")
            self._private_add(SigningKey.load_or_create(settings.signing_key_path))
        # Until start() reads the database: the configured file's key, else any key in hand.
        first = self._file_key()
        self._current = first or next(iter(self._private.values()))

    # --- private keys from the sources -----------------------------------------------------------
    def _private_add(self, key: SigningKey) -> None:
        self._private.setdefault(key.kid, key)

    def _file_key(self) -> SigningKey | None:
        path = self.settings.signing_key_path
        return SigningKey.load(path) if path.is_file() else None

    def _scan(self) -> None:
        """Load every key of every source (again: one may have been added since)."""
        given = self.settings.signing_key_file
        if given is not None and not given.is_file() and not self.settings.is_development:
            raise RuntimeError(f"signing_key_file {self.settings.signing_key_file} does not exist")
        if key := self._file_key():
            self._private_add(key)
        directory = self.settings.signing_keys_path
        if directory.is_dir():
            for path in sorted(directory.glob("*.pem")):
                self._private_add(SigningKey.load(path))
        if self.settings.signing_keys_pem is not None:
            for n, block in enumerate(_pem_blocks(self.settings.signing_keys_pem.get_secret_value())):
                self._private_add(SigningKey.from_pem(block.encode(), source=f"signing_keys_pem key {n + 1}"))

    def _generate(self) -> SigningKey:
        if not self.settings.is_development:
            raise Conflict(
                "no new signing key to rotate to: add a PEM Ed25519 key to signing_keys_dir "
                "(or signing_keys_pem and restart), then rotate",
                code="no_new_signing_key",
            )
        key = SigningKey.generate()
        key.save(self.settings.signing_keys_path / f"{key.kid}.pem")
        self._private_add(key)
        log.info("signing_key.generated", kid=key.kid)
        return key

    # --- the ring in the database ---------------------------------------------------------------
    @property
    def key(self) -> SigningKey:
        """The key new tokens are signed with."""
        return self._current

    def records(self) -> list[KeyRecord]:
        return list(self._records)

    def state(self, record: KeyRecord) -> KeyState:
        return record.state(datetime.now(UTC), self.grace)

    async def start(self, new_uow: Callable[[], UnitOfWork]) -> None:
        """Record the keys in hand, make one current if none is, and read the ring."""
        self._new_uow = new_uow
        try:
            await self._sync()
        except IntegrityError:  # another replica recorded the same key at the same moment
            await self._sync()
        await self.reload()

    async def _sync(self) -> None:
        assert self._new_uow is not None
        now = datetime.now(UTC)
        async with self._new_uow() as uow:
            repo = SigningKeyRepository(uow.session)
            records = await self._record_new_keys(repo, now)
            if current(records, now, self.grace) is None:
                chosen = await self._first_current(repo, records, now)
                await repo.activate(chosen.kid, now)
                log.info("signing_key.activated", kid=chosen.kid)
            await uow.commit()

    async def _record_new_keys(self, repo: SigningKeyRepository, now: datetime) -> list[KeyRecord]:
        known = {r.kid for r in await repo.all()}
        for kid, key in self._private.items():
            if kid not in known:
                await repo.add(KeyRecord(kid=kid, jwk=key.jwk(), created_at=now))
        return await repo.all()

    async def _first_current(
        self, repo: SigningKeyRepository, records: list[KeyRecord], now: datetime
    ) -> KeyRecord:
        pending = {r.kid: r for r in records if r.state(now, self.grace) is KeyState.PENDING}
        file_key = self._file_key()
        if file_key is not None and file_key.kid in pending:
            return pending[file_key.kid]
        held = [r for r in pending.values() if r.kid in self._private]
        if chosen := next_key(held, now, self.grace):
            return chosen
        return await self._new_record(repo, now)  # every key in hand was retired (development)

    async def _new_record(self, repo: SigningKeyRepository, now: datetime) -> KeyRecord:
        key = self._generate()
        record = KeyRecord(kid=key.kid, jwk=key.jwk(), created_at=now)
        await repo.add(record)
        return record

    async def reload(self, *, max_age: float = 0.0) -> None:
        """Reread the ring (another replica may have rotated); sign with its current key."""
        if self._new_uow is None or time.monotonic() - self._loaded_at < max_age:
            return
        async with self._new_uow() as uow:
            records = await SigningKeyRepository(uow.session).all()
        self._records, self._loaded_at = records, time.monotonic()
        record = current(records, datetime.now(UTC), self.grace)
        if record is None:
            return
        if record.kid not in self._private:
            self._scan()  # a replica on the same directory generated it
        if record.kid in self._private:
            self._current = self._private[record.kid]
        else:
            log.error("signing_key.private_key_missing", kid=record.kid, signing_with=self._current.kid)

    def jwks(self) -> dict[str, Any]:
        if not self._records:  # not started: the key in hand is all there is
            return {"keys": [self._current.jwk()]}
        return {"keys": [r.jwk for r in published(self._records, datetime.now(UTC), self.grace)]}

    async def fetch_jwks(self, max_age: float = 0.0) -> dict[str, Any]:
        """The JWKS as the database has it (at most `max_age` seconds old).

        This service's verifier calls it for a key id it does not know (another replica rotated);
        the verifier already spaces those calls.
        """
        await self.reload(max_age=max_age)
        return self.jwks()

    # --- operations -----------------------------------------------------------------------------
    async def rotate(self) -> KeyRecord:
        """Make a new key current: the newest pending one provided, or (development) a generated one."""
        assert self._new_uow is not None
        self._scan()
        now = datetime.now(UTC)
        async with self._new_uow() as uow:
            repo = SigningKeyRepository(uow.session)
            records = await self._record_new_keys(repo, now)
            held = [r for r in records if r.kid in self._private]
            chosen = next_key(held, now, self.grace)
            if chosen is None:
                chosen = await self._new_record(repo, now)
            old = current(records, now, self.grace)
            if old is not None and not await repo.supersede(old.kid, now):
                raise Conflict("another rotation is under way", code="rotation_in_progress")
            if not await repo.activate(chosen.kid, now):
                raise Conflict("another rotation is under way", code="rotation_in_progress")
            await uow.commit()
        log.info("signing_key.rotated", kid=chosen.kid, previous=old.kid if old else None)
        await self.reload()
        return next(r for r in self._records if r.kid == chosen.kid)

    async def retire(self, kid: str) -> KeyRecord:
        """Stop a key verifying now, everywhere. The current key cannot be: rotate first."""
        assert self._new_uow is not None
        now = datetime.now(UTC)
        async with self._new_uow() as uow:
            repo = SigningKeyRepository(uow.session)
            record = next((r for r in await repo.all() if r.kid == kid), None)
            if record is None:
                raise NotFound("no signing key with this id", code="signing_key_not_found")
            if record.state(now, self.grace) is KeyState.CURRENT:
                raise Conflict(
                    "the current key signs every new token: rotate first", code="signing_key_current"
                )
            await repo.retire(kid, now)
            await uow.commit()
        # Tokens it signed live at most a lifetime from now; verifiers check `kid:` until then.
        await self.store.revoke(f"kid:{kid}", int(self.grace.total_seconds()))
        log.warning("signing_key.retired", kid=kid)
        await self.reload()
        return next(r for r in self._records if r.kid == kid)
