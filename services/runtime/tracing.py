"""OpenTelemetry traces from an HTTP request through Kafka to its outcome.

The trace context travels *in* the CloudEvent, as the CloudEvents distributed-tracing
extension attribute ``traceparent`` (W3C Trace Context): whoever publishes an event
stamps it with the current span (:func:`stamp`: the HTTP API's commands, and every
event a unit of work emits); a consumer continues the trace of the record it applies
(:func:`consuming`), so the events that record causes carry the same trace on. A batch
of several records is one span *linked* to each record's trace (OpenTelemetry's way for
batches); its events carry the batch span's context.

The SDK is always set up (ids are made and propagated, logs carry them); spans are
exported only when an exporter is configured the standard way: ``OTEL_TRACES_EXPORTER``
(``otlp``, ``console``) or ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (OTLP over HTTP); ``OTEL_SDK_DISABLED=true``
turns tracing off.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

EXTENSION = "traceparent"  # the CloudEvents distributed-tracing extension attribute
_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("microhub")


def setup(service_name: str = "microhub") -> None:
    """Install the SDK's tracer provider once per process (unless one is installed), with
    the configured exporter if any."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return  # the standard switch: no ids, no spans (the API's no-op tracer)
    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp" or (endpoint and exporter != "none"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(EXTENSION)


def stamp(event: Any) -> Any:
    """``event`` (a CloudEvent) with the current span's ``traceparent``, if there is one."""
    traceparent = current_traceparent()
    if traceparent is None:
        return event
    return event.model_copy(update={EXTENSION: traceparent})


_last: tuple[Any, dict[str, str]] | None = None


def extension() -> dict[str, str]:
    """The ``traceparent`` extension attribute for an event about to be made (empty when
    no span is current). Made into the event rather than stamped on a copy afterwards
    (:func:`stamp`): a copy of every outgoing event was 14 % of a booking decision's CPU
    (docs/booking-throughput.md); and worked out once per span, since a batch's events
    all carry the same one."""
    global _last
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    if _last is None or _last[0] != span_context:
        traceparent = current_traceparent()
        _last = (span_context, {EXTENSION: traceparent} if traceparent else {})
    return _last[1]


def context_of(event: Any) -> context.Context | None:
    """The trace context an event carries, or None."""
    traceparent = (getattr(event, "model_extra", None) or {}).get(EXTENSION)
    if not isinstance(traceparent, str):
        return None
    extracted = _propagator.extract({EXTENSION: traceparent})
    span_context = trace.get_current_span(extracted).get_span_context()
    return extracted if span_context.is_valid else None


@contextlib.asynccontextmanager
async def consuming(consumer: str, deliveries: Sequence[Any]) -> AsyncIterator[None]:
    """The span of a consumer applying ``deliveries`` (services/runtime/consumer.py):
    one record continues its trace; several are one span linked to each of theirs."""
    if not deliveries:
        yield
        return
    first = deliveries[0]
    attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.consumer.group.name": consumer,
        "messaging.destination.name": first.topic,
        "messaging.batch.message_count": len(deliveries),
    }
    if len(deliveries) == 1:
        attributes |= {
            "messaging.message.id": first.event.id,
            "messaging.kafka.offset": first.offset,
            "messaging.destination.partition.id": str(first.partition),
            "cloudevents.event_type": first.event.type,
            "cloudevents.event_subject": first.event.subject or "",
        }
        parent = context_of(first.event)
        with _tracer.start_as_current_span(
            f"process {first.event.type}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ):
            yield
        return
    links = []
    for delivery in deliveries:
        linked = context_of(delivery.event)
        if linked is not None:
            links.append(Link(trace.get_current_span(linked).get_span_context()))
    with _tracer.start_as_current_span(
        f"process {first.topic} batch",
        context=context.Context(),  # a batch is a trace of its own, linked to each record's
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=attributes,
    ):
        yield
