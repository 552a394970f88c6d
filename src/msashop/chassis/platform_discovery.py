"""How a process finds the others and is found: the registry when one is configured, the port map
the supervisor writes otherwise (and while the registry has no healthy instance of a service), or
on Kubernetes one DNS name per service (`DNS_URL_TEMPLATE`).

With a registry (`REGISTRY_URL`, our registry or a Consul agent), the process keeps itself
registered (its instance id, `version` and environment as tags, an HTTP check on its `/health`
every 10 s with a 5 s timeout, deregistered after 30 s critical) and watches the services it
calls; on SIGTERM it deregisters before it stops.
"""

from __future__ import annotations

from msashop.chassis.discovery import DnsDiscovery, Instance, PortMapDiscovery, first_url
from msashop.chassis.registry import ConsulDiscovery, ConsulRegistrar
from msashop.chassis.settings import ServiceSettings


class PlatformDiscovery:
    def __init__(self, settings: ServiceSettings) -> None:
        assert settings.ports_file is not None
        self.settings = settings
        self.port_map = PortMapDiscovery(settings.ports_file)
        self.dns = DnsDiscovery(settings.dns_url_template) if settings.dns_url_template else None
        self.registry: ConsulDiscovery | None = None
        self.registrar: ConsulRegistrar | None = None
        if settings.registry_url:
            watched = [s for s in settings.discover_services.split(",") if s.strip()]
            tls = settings.tls_files()  # mTLS on: the registry is reached with our certificate
            self.registry = ConsulDiscovery(
                settings.registry_url, services=[s.strip() for s in watched], tls=tls
            )
            self.registrar = ConsulRegistrar(settings.registry_url, tls=tls)

    def instances(self, service: str) -> list[Instance]:
        if self.dns is not None:
            return self.dns.instances(service)
        if self.registry is not None and (found := self.registry.instances(service)):
            return found
        return self.port_map.instances(service)

    def url(self, service: str) -> str:
        return first_url(self, service)

    def all(self) -> dict[str, str]:
        return self.port_map.all()

    @property
    def me(self) -> Instance:
        s = self.settings
        return Instance(
            id=s.instance_id or s.service_name,
            service=s.service_name,
            url=f"{'https' if s.serves_tls else 'http'}://{s.host}:{s.port}",
            tags=frozenset({s.version, s.env}),
        )

    async def start(self) -> None:
        """Watch the registry and keep this instance registered (no-op without a registry)."""
        if self.registry is not None:
            await self.registry.start()
        if self.registrar is not None and self.settings.port:
            me = self.me
            self.registrar.keep_registered(me, health_url=f"{me.url}/health")

    async def stop(self) -> None:
        if self.registrar is not None:
            await self.registrar.close()  # deregisters: callers stop picking this instance
        if self.registry is not None:
            await self.registry.stop()
