"""The booking service's commands consumer without Kafka, for the property tests that try
many sequences of commands through the consumer's own apply path (inbox claim and
handlers in one transaction, the service's answering, retries)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from contracts.envelope import new_event
from services.booking import store
from services.booking.handlers import BookingHandlers
from services.booking.service import BookingService
from services.runtime.consumer import DeadLetters, Delivery, RecordApplier
from services.runtime.uow import UnitsOfWork


def commands_consumer(sessions: Any, handlers: BookingHandlers) -> RecordApplier:
    """The commands consumer as the service declares it (handlers, batch handler, answers
    that name their command: causationid), on ``sessions``: give each instance its own
    engine to play two processes."""
    [commands] = BookingService.spec.consumes
    return RecordApplier(
        name=commands.consumer,
        allowed_types=commands.accepts,
        units=UnitsOfWork(
            sessions, source="microhub/booking", outbox=store.outbox, topic=lambda t: t
        ),
        inbox=store.inbox,
        handler=commands.bind(handlers),
        batch_handler=commands.bind_batch(handlers),
        dead_letters=DeadLetters(None, consumer=commands.consumer),
        answers=commands.answers,
    )


def command_delivery(
    payload: Any, offset: int, *, time: datetime, event_id: str | None = None
) -> Delivery:
    """A carrier's command as the consumer hands it over, on the hub's key at ``offset``
    of partition 0 (a new event id unless one is given)."""
    event = new_event(
        payload,
        source="test",
        subject=payload.hub_id,
        time=time,
        event_id=event_id or str(uuid.uuid4()),
    )
    return Delivery(event, "commands", 0, offset, int(time.timestamp() * 1000), payload.hub_id)


class Record:
    """The Kafka record a delivery came in, as far as the consumer looks at it: what it
    would dead-letter if the delivery kept failing (in these tests it must not)."""

    def __init__(self, delivery: Delivery) -> None:
        self.topic, self.partition, self.offset = "commands", 0, delivery.offset
        self.key, self.value = None, b""
