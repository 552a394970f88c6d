"""The adapter for a broker URL: nats://, amqp:// (RabbitMQ) or kafka://."""

from __future__ import annotations

from urllib.parse import urlsplit

from msashop.chassis.bus.port import EventBus

SCHEMES = ("nats", "amqp", "amqps", "kafka")


def bus_from_url(url: str) -> EventBus:
    scheme = urlsplit(url).scheme
    # Imported on demand: a service loads only the client library of the broker it uses.
    if scheme == "nats":
        from msashop.chassis.bus.nats import NatsJetStreamBus

        return NatsJetStreamBus(url)
    if scheme in ("amqp", "amqps"):
        from msashop.chassis.bus.rabbitmq import RabbitMqBus

        return RabbitMqBus(url)
    if scheme == "kafka":
        from msashop.chassis.bus.kafka import KafkaBus

        return KafkaBus(url)
    raise ValueError(f"unsupported broker URL {url!r}: use one of {', '.join(s + '://' for s in SCHEMES)}")
