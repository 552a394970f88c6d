"""Trace context across the bus, carried in the envelope's `traceparent` (W3C).

An event is stamped with the current span when a transaction queues it in the outbox (a request,
or the handling of a message); the relay publishes it in a PRODUCER span under that context and
sends the publish span's context on; a consumer handles it in a CONSUMER span under that. So a
saga's asynchronous hops, outbox included, are one trace. RPC over the bus carries it in the
request body (`RPC_TRACE_KEY`), which the responding side takes out before its responder sees it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.trace import Span, SpanKind

from msashop.chassis import tracing
from msashop.chassis.bus.port import EventBus, Responder
from msashop.contracts.envelope import Envelope

RPC_TRACE_KEY = "_traceparent"


def stamp(envelope: Envelope) -> Envelope:
    """Queued now: it carries the current span (else the cause's context `wrap` copied)."""
    if (current := tracing.current_traceparent()) is not None:
        envelope.traceparent = current
    return envelope


def _attributes(envelope: Envelope, operation: str) -> dict[str, str | int]:
    return {
        "messaging.operation.type": operation,
        "messaging.destination.name": envelope.type,
        "messaging.message.id": envelope.id,
        "messaging.message.conversation_id": envelope.correlation_id or "",
    }


@contextmanager
def publishing(envelope: Envelope) -> Iterator[Envelope]:
    """The relay's publish of one event: a PRODUCER span under the context the event carries;
    what is sent carries the publish span's."""
    parent = tracing.context_from(envelope.traceparent)
    with tracing.span(
        f"publish {envelope.type}",
        kind=SpanKind.PRODUCER,
        parent=parent,
        attributes=_attributes(envelope, "send"),
    ) as span:
        sent = tracing.traceparent_of(span.get_span_context())
        yield envelope if sent is None else envelope.model_copy(update={"traceparent": sent})


@contextmanager
def consuming(envelope: Envelope, group: str) -> Iterator[Span]:
    """Handling one event in consumer group `group`: a CONSUMER span under the publisher's."""
    attributes = {**_attributes(envelope, "process"), "messaging.consumer.group.name": group}
    with tracing.span(
        f"process {envelope.type}",
        kind=SpanKind.CONSUMER,
        parent=tracing.context_from(envelope.traceparent),
        attributes=attributes,
    ) as span:
        yield span


async def request(bus: EventBus, subject: str, body: dict[str, Any], *, timeout: float) -> dict[str, Any]:
    """`bus.request` in a CLIENT span whose context travels in the body."""
    with tracing.span(
        f"request {subject}", kind=SpanKind.CLIENT, attributes={"messaging.destination.name": subject}
    ) as span:
        traceparent = tracing.traceparent_of(span.get_span_context())
        sent = body if traceparent is None else {**body, RPC_TRACE_KEY: traceparent}
        return await bus.request(subject, sent, timeout=timeout)


def traced_responder(subject: str, responder: Responder) -> Responder:
    """`responder` in a SERVER span under the requester's; it never sees the trace key."""

    async def respond(body: dict[str, Any]) -> dict[str, Any]:
        traceparent = body.pop(RPC_TRACE_KEY, None)
        with tracing.span(
            f"respond {subject}",
            kind=SpanKind.SERVER,
            parent=tracing.context_from(traceparent if isinstance(traceparent, str) else None),
            attributes={"messaging.destination.name": subject},
        ):
            return await responder(body)

    return respond
