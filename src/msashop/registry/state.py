"""The registry's state and Consul's indexes (pure: a clock is passed in, nothing does I/O).

Every change that a watch can see (an instance added, removed or changed; a check changing
status) takes the next index and stamps it on the service name it touched, so a blocking query
on `health/service/<name>` wakes only for its own service. Output-only updates do not count:
Consul, too, syncs a check's output lazily and its status at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from msashop.registry.model import CheckSpec, CheckState, ServiceRecord, ServiceSpec, Status, worst


class UnknownId(KeyError):
    """No service or check with that id (answered with 404)."""


class NotAllowed(ValueError):
    """The request names something real but cannot apply to it (answered with 400)."""


class Registry:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.index = 1
        self.catalog_index = 1
        self.name_indexes: dict[str, int] = {}
        self.services: dict[str, ServiceRecord] = {}
        self.checks: dict[str, CheckState] = {}
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def name_index(self, name: str) -> int:
        """The index of the last change to the service `name` (1 for a name never seen)."""
        return self.name_indexes.get(name, 1)

    # --- changes ------------------------------------------------------------------------------
    def register_service(
        self,
        spec: ServiceSpec,
        checks: Iterable[tuple[CheckSpec, Status | None]] = (),
        *,
        replace_existing_checks: bool = False,
    ) -> None:
        """Add or replace an instance. A re-registered check keeps its status unless the body sets one."""
        checks = list(checks)
        old = self.services.get(spec.id)
        touched = {spec.name}
        changed = old is None or old.spec != spec
        if old is not None and old.spec.name != spec.name:
            touched.add(old.spec.name)
        record = old if old is not None and old.spec.name == spec.name else ServiceRecord(spec)
        record.spec = spec
        stale = [cid for cid in (old.check_ids if old else []) if cid not in {c.id for c, _ in checks}]
        if replace_existing_checks or (old is not None and old.spec.name != spec.name):
            for check_id in stale:
                self.checks.pop(check_id, None)
                changed = True
        else:
            checks = [(self.checks[cid].spec, None) for cid in stale if cid in self.checks] + checks
        for check, status in checks:
            changed |= self._put_check(check, status)
        record.check_ids = [c.id for c, _ in checks]
        self.services[spec.id] = record
        if changed:
            self._bump(touched, catalog=True)
            record.create_index = record.create_index or self.index
            record.modify_index = self.index
            for check_id in record.check_ids:
                state = self.checks[check_id]
                state.create_index = state.create_index or self.index
                state.modify_index = self.index
            self._notify()

    def register_check(self, check: CheckSpec, status: Status | None = None) -> None:
        """A check on its own (`/v1/agent/check/register`), on a service or on the node."""
        if check.service_id and check.service_id not in self.services:
            raise NotAllowed(f"ServiceID {check.service_id!r} does not exist")
        if not self._put_check(check, status):
            return
        names = set()
        if check.service_id:
            record = self.services[check.service_id]
            if check.id not in record.check_ids:
                record.check_ids.append(check.id)
            names.add(record.spec.name)
        self._bump(names)
        state = self.checks[check.id]
        state.create_index = state.create_index or self.index
        state.modify_index = self.index
        self._notify()

    def deregister_service(self, service_id: str) -> None:
        record = self.services.pop(service_id, None)
        if record is None:
            raise UnknownId(service_id)
        for check_id in record.check_ids:
            self.checks.pop(check_id, None)
        self._bump({record.spec.name}, catalog=True)
        self._notify()

    def deregister_check(self, check_id: str) -> None:
        state = self.checks.pop(check_id, None)
        if state is None:
            raise UnknownId(check_id)
        record = self.services.get(state.spec.service_id)
        if record is not None:
            record.check_ids.remove(check_id)
        self._bump({record.spec.name} if record else set())
        self._notify()

    def update_check(self, check_id: str, status: Status, output: str = "") -> None:
        state = self.checks.get(check_id)
        if state is None:
            raise UnknownId(check_id)
        state.output = output
        if state.status == status:
            return
        state.status = status
        state.critical_since = self.clock() if status == "critical" else None
        record = self.services.get(state.spec.service_id)
        self._bump({record.spec.name} if record else set())
        state.modify_index = self.index
        self._notify()

    def ttl_update(self, check_id: str, status: Status, output: str = "") -> None:
        """pass / warn / fail / update on a TTL check: sets the status and restarts its timer."""
        state = self.checks.get(check_id)
        if state is None:
            raise UnknownId(check_id)
        if state.spec.kind != "ttl":
            raise NotAllowed(f"CheckID {check_id!r} does not have associated TTL")
        state.ttl_deadline = self.clock() + state.spec.ttl
        self.update_check(check_id, status, output)

    def tick(self) -> list[str]:
        """Expire TTL checks, then deregister instances critical for too long; the ids removed."""
        now = self.clock()
        for check_id, state in list(self.checks.items()):
            expired = state.ttl_deadline is not None and now > state.ttl_deadline
            if state.spec.kind == "ttl" and expired and state.status != "critical":
                output = f"TTL expired (no update for {state.spec.ttl:g} s)"
                self.update_check(check_id, "critical", output)
        reaped = []
        for state in list(self.checks.values()):
            limit, since = state.spec.deregister_after, state.critical_since
            service_id = state.spec.service_id
            if limit is None or since is None or state.status != "critical" or now - since < limit:
                continue
            if service_id in self.services:
                self.deregister_service(service_id)
                reaped.append(service_id)
        return reaped

    # --- reads --------------------------------------------------------------------------------
    def instances(
        self, name: str, *, passing: bool = False, tags: Iterable[str] = ()
    ) -> list[tuple[ServiceRecord, list[CheckState]]]:
        """The instances of `name` with their checks, by id; `passing`: only all-checks-passing ones."""
        wanted = set(tags)
        found = []
        for service_id in sorted(self.services):
            record = self.services[service_id]
            if record.spec.name != name or not wanted <= set(record.spec.tags):
                continue
            checks = [self.checks[cid] for cid in record.check_ids if cid in self.checks]
            if passing and any(c.status != "passing" for c in checks):
                continue
            found.append((record, checks))
        return found

    def status_of(self, service_id: str) -> Status:
        record = self.services[service_id]
        return worst([self.checks[cid].status for cid in record.check_ids if cid in self.checks])

    def service_names(self) -> dict[str, list[str]]:
        """{name: every tag any of its instances has}, as `/v1/catalog/services` answers."""
        names: dict[str, set[str]] = {}
        for record in self.services.values():
            names.setdefault(record.spec.name, set()).update(record.spec.tags)
        return {name: sorted(tags) for name, tags in sorted(names.items())}

    # --- internals ----------------------------------------------------------------------------
    def _put_check(self, check: CheckSpec, status: Status | None) -> bool:
        """Store a check definition; True when something a watch sees changed."""
        now = self.clock()
        existing = self.checks.get(check.id)
        if existing is not None and existing.spec == check and status in (None, existing.status):
            return False
        state = existing or CheckState(check, critical_since=now)
        state.spec = check
        if status is not None and status != state.status:
            state.status = status
            state.critical_since = now if status == "critical" else None
        if check.kind == "ttl" and (existing is None or status is not None):
            state.ttl_deadline = now + check.ttl
        self.checks[check.id] = state
        return True

    def _bump(self, names: set[str], *, catalog: bool = False) -> None:
        self.index += 1
        for name in names:
            self.name_indexes[name] = self.index
        if catalog:
            self.catalog_index = self.index

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()
