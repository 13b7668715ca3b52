"""The Kafka topic table as code (naming: ``microhub.<domain>.<kind>.v<major>``).

Keying by hub id keeps every decision about one hub's capacity in one partition, in
order, decided serially by one consumer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    key: str
    written_by: str
    read_by: str
    partitions: int = 6
    # its events answer the commands of another topic: they carry the command's identity
    # (CloudEvents extension attributes causationid and causationsource)
    answers: bool = False

    @property
    def dlq(self) -> str:
        return dead_letter_topic(self.name)


def dead_letter_topic(name: str) -> str:
    return f"{name}.dlq"


BOOKING_COMMANDS = Topic(
    "microhub.booking.commands.v1", "hub id", "carriers (directly, or via the HTTP API)", "booking"
)
BOOKING_EVENTS = Topic(
    "microhub.booking.events.v1",
    "hub id",
    "booking (outbox)",
    "dispatch, reporting, carriers",
    answers=True,
)
FLEET_TELEMETRY = Topic(
    "microhub.fleet.telemetry.v1", "vehicle id", "vehicle apps / the simulator", "dispatch"
)
DISPATCH_EVENTS = Topic(
    "microhub.dispatch.events.v1", "hub id", "dispatch (outbox)", "reporting, dashboards"
)

TOPICS: tuple[Topic, ...] = (BOOKING_COMMANDS, BOOKING_EVENTS, FLEET_TELEMETRY, DISPATCH_EVENTS)


def all_topic_names(*, with_dlq: bool = True) -> list[str]:
    names = [t.name for t in TOPICS]
    if with_dlq:
        names += [t.dlq for t in TOPICS]
    return names
