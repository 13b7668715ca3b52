"""What the inbox reads of a delivery (its event's identity and its record's position),
for tests of the inbox's statements without a decoded event."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    source: str
    id: str


@dataclass(frozen=True)
class InboxDelivery:
    event: Event
    topic: str
    partition: int
    offset: int


def delivery(
    source: str, event_id: str, offset: int, partition: int = 0, topic: str = "booking.commands"
) -> InboxDelivery:
    return InboxDelivery(Event(source, event_id), topic, partition, offset)
