"""Prometheus metrics of a microhub process (prometheus-client), served at ``/metrics``
by the public API and by every service's health port.

Counted where it happens, through a few small hooks: booking decisions and every event a
unit of work commits (uow.py), dead letters (consumer.py), HTTP requests (http.py), and
dispatch's waves (the planner, wrapped). Read when scraped: the consumers' lag per
partition and their counts, and each service's outbox backlog and the age of its oldest
row. The names are listed in docs/observability.md and used by infra/grafana.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

DECISIONS = Counter(
    "microhub_booking_decisions_total",
    "Booking outcomes committed, by outcome (the event: confirmed, rejected, cancelled, "
    "checked_in, no_show, command_rejected) and reason (rejections).",
    ["outcome", "reason"],
)
EVENTS = Counter(
    "microhub_events_emitted_total",
    "Events written to a service's outbox by committed units of work.",
    ["service", "type"],
)
DEAD_LETTERED = Counter(
    "microhub_dead_lettered_total",
    "Records a consumer sent to <topic>.dlq, by reason (not_json, not_cloudevent, "
    "unknown_type, invalid_payload, handler_failed).",
    ["consumer", "topic", "reason"],
)
HTTP_SECONDS = Histogram(
    "microhub_http_request_duration_seconds",
    "Time to the response's first byte, by route template.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SOLVER_SECONDS = Histogram(
    "microhub_dispatch_solver_seconds",
    "Wall time of one wave's route planning, by the solver that produced the plan.",
    ["solver"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
WAVE_STOPS = Histogram(
    "microhub_dispatch_wave_stops",
    "Stops waiting when a wave was planned.",
    buckets=(1, 5, 10, 20, 40, 80, 160, 320),
)
WAVE_KM = Histogram(
    "microhub_dispatch_wave_planned_km",
    "Planned km of a wave's routes (solver quality: fewer km for the same stops).",
    buckets=(1, 5, 10, 25, 50, 100, 200, 400),
)
WAVE_ROUTES = Counter("microhub_dispatch_routes_planned_total", "Routes planned.", ["solver"])
WAVE_UNSERVED = Counter(
    "microhub_dispatch_stops_unserved_total",
    "Stops a wave could not put on a route (they wait for the next one).",
)
CONSUMER_LAG = Gauge(
    "microhub_consumer_lag",
    "Records in a partition the consumer has not read yet (high watermark - position).",
    ["consumer", "topic", "partition"],
)
CONSUMER_RECORDS = Gauge(
    "microhub_consumer_records",
    "Records a consumer of this process applied (processed), found in its inbox already "
    "(duplicates) or retried, since it started.",
    ["consumer", "kind"],
)
OUTBOX_PENDING = Gauge("microhub_outbox_pending", "Outbox rows not yet published.", ["service"])
OUTBOX_AGE = Gauge(
    "microhub_outbox_oldest_pending_age_seconds",
    "Age of the oldest unpublished outbox row (0 when none).",
    ["service"],
)
OUTBOX_PUBLISHED = Gauge(
    "microhub_outbox_published",
    "Rows this process's relay published since it started.",
    ["service"],
)

# ---------------------------------------------------------------------- hooks ---


def committed(service: str, payloads: Iterable[Any]) -> None:
    """A unit of work committed these event payloads (uow.py): counted per label set
    first, so that a batch of 500 decisions costs a few increments, not 1 000 label
    lookups."""
    events: collections.Counter[str] = collections.Counter()
    decisions: collections.Counter[tuple[str, str]] = collections.Counter()
    for payload in payloads:
        event_type = getattr(payload, "event_type", type(payload).__name__)
        events[event_type] += 1
        if service == "booking" and event_type.startswith("microhub.booking."):
            # from the instance's fields: getattr on a payload without a reason goes
            # through pydantic's __getattr__ and an AttributeError, per decision
            reason = getattr(payload, "__dict__", {}).get("reason")
            decisions[event_type.split(".")[2], str(getattr(reason, "value", reason) or "")] += 1
    for event_type, count in events.items():
        EVENTS.labels(service, event_type).inc(count)
    for (outcome, reason_code), count in decisions.items():
        DECISIONS.labels(outcome, reason_code).inc(count)


def dead_lettered(consumer: str, topic: str, reason: str) -> None:
    DEAD_LETTERED.labels(consumer, topic, reason).inc()


def timed_planner(plan: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Wraps dispatch's planner ``(instance, time limit) -> plan``: time and quality of
    every wave."""

    async def timed(instance: Any, time_limit_s: float) -> Any:
        started = time.perf_counter()
        result = await plan(instance, time_limit_s)
        solver = str(getattr(result, "solver", "unknown"))
        SOLVER_SECONDS.labels(solver).observe(time.perf_counter() - started)
        WAVE_STOPS.observe(len(getattr(instance, "stops", ())))
        WAVE_KM.observe(float(getattr(result, "total_km", 0.0)))
        WAVE_ROUTES.labels(solver).inc(len(getattr(result, "routes", ())))
        WAVE_UNSERVED.inc(len(getattr(result, "unserved", ())))
        return result

    return timed


class HttpMetrics:
    """ASGI middleware: :data:`HTTP_SECONDS` per request, by route template (not by path:
    ids would make a series each)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                HTTP_SECONDS.labels(scope["method"], template, str(message["status"])).observe(
                    time.perf_counter() - started
                )
            await send(message)

        await self.app(scope, receive, timed_send)


# -------------------------------------------------------------------- scraping ---


async def _lag(consumer: Any) -> None:
    subscription = getattr(consumer, "subscription", None)
    if subscription is None:
        return
    # a partition whose position is not known yet (just assigned) has no sample rather
    # than a wrong one
    for topic, partition, lag in subscription.lag():
        CONSUMER_LAG.labels(consumer.name, topic, str(partition)).set(lag)


async def _outbox(service: Any) -> None:
    outbox = getattr(service, "outbox", None)
    if outbox is None:
        return
    async with service.engine.connect() as conn:
        row = (
            await conn.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(
                    outbox.c.sent_at.is_(None)
                )
            )
        ).one()
    pending, oldest = row
    OUTBOX_PENDING.labels(service.name).set(pending)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
    OUTBOX_AGE.labels(service.name).set(max(0.0, age))
    if service.relay is not None:
        OUTBOX_PUBLISHED.labels(service.name).set(service.relay.published)


async def refresh(services: Iterable[Any]) -> None:
    """Read what is read when scraped: consumers' lag and counts, outbox backlogs."""
    for service in services:
        for consumer in getattr(service, "consumers", ()):
            for kind in ("processed", "duplicates", "retries"):
                CONSUMER_RECORDS.labels(consumer.name, kind).set(getattr(consumer.stats, kind))
            try:
                await _lag(consumer)
            except Exception as exc:
                log.debug("lag of %s not read: %r", consumer.name, exc)
        try:
            await asyncio.wait_for(_outbox(service), 2.0)
        except Exception as exc:
            log.debug("outbox of %s not read: %r", getattr(service, "name", "?"), exc)


def exposition() -> tuple[bytes, str]:
    """The process's metrics in Prometheus' text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
