"""The Kafka topic table as code (naming: ``microhub.<domain>.<kind>.v<major>``).

Keying by hub id keeps every decision about one hub's capacity in one partition, in
order, decided serially by one consumer.

The platform's own topics (``TOPICS``) carry every carrier's data and only platform
principals read or write them. Each carrier of the registry has two topics of its own
(``CARRIER_TOPICS``, templates with ``{carrier}`` in the name): the commands only it may
write and the events only it may read (docs/architecture.md, "Carriers").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CARRIER = "{carrier}"  # the placeholder of a carrier topic's name
# A carrier id is part of Kafka topic, group and user names, and of the prefixes its ACLs
# grant: lowercase letters, digits and inner hyphens, no dot (``acme`` must not be a
# prefix of another carrier's names: ``microhub.carriers.acme.`` vs ``…acme-2.``).
CARRIER_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$"


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
    # topics whose message types this one carries as well (a carrier's own topics carry
    # the booking commands and events unchanged, besides types of their own)
    carries: tuple[str, ...] = ()
    # single message types of other topics it carries as well (a carrier's events topic:
    # dispatch's per-stop updates of the carrier's own stops)
    carries_types: tuple[str, ...] = ()

    @property
    def dlq(self) -> str:
        return dead_letter_topic(self.name)

    @property
    def is_template(self) -> bool:
        """One topic per carrier: ``name`` holds ``{carrier}``."""
        return CARRIER in self.name

    def for_carrier(self, carrier_id: str) -> str:
        if not self.is_template:
            raise ValueError(f"{self.name} is not a carrier topic")
        if not re.fullmatch(CARRIER_ID_PATTERN, carrier_id):
            raise ValueError(f"{carrier_id!r} is not a carrier id ({CARRIER_ID_PATTERN})")
        return self.name.replace(CARRIER, carrier_id)

    def pattern(self, prefix: str = "") -> str:
        """A regular expression matching every carrier's topic (with ``prefix``) and
        nothing else: anchored at the end too (Kafka clients only ``re.match``), or the
        commands' pattern would take in their dead letters."""
        before, after = self.name.split(CARRIER)
        return re.escape(prefix + before) + r"([a-z0-9][a-z0-9-]*)" + re.escape(after) + "$"

    def carrier_of(self, topic: str, prefix: str = "") -> str | None:
        """The carrier whose topic ``topic`` (a full name, with ``prefix``) is, else None."""
        match = re.fullmatch(self.pattern(prefix), topic)
        if match is None or not re.fullmatch(CARRIER_ID_PATTERN, match.group(1)):
            return None
        return match.group(1)


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

# Per carrier. Its commands are the booking commands, written by it alone (ACL); the
# gateway's ingress binds the carrier to the topic and forwards them to BOOKING_COMMANDS.
CARRIER_COMMANDS = Topic(
    f"microhub.carriers.{CARRIER}.commands.v1",
    "hub id",
    "that carrier only (ACL)",
    "gateway (ingress)",
    partitions=3,
    carries=(BOOKING_COMMANDS.name,),
)
# Its outcomes (the booking events of its own bookings, unchanged) and the status of its
# own deliveries, read by it alone (ACL); written by the gateway's egress.
CARRIER_EVENTS = Topic(
    f"microhub.carriers.{CARRIER}.events.v1",
    "booking id",
    "gateway (egress)",
    "that carrier only (ACL)",
    partitions=3,
    # answers (booking's, and the gateway's refusals) carry the carrier's own command id
    # and source as causationid and causationsource
    answers=True,
    carries=(BOOKING_EVENTS.name,),
    carries_types=("microhub.dispatch.stop_updated.v1",),
)
CARRIER_TOPICS: tuple[Topic, ...] = (CARRIER_COMMANDS, CARRIER_EVENTS)


def all_topic_names(*, with_dlq: bool = True) -> list[str]:
    names = [t.name for t in TOPICS]
    if with_dlq:
        names += [t.dlq for t in TOPICS]
    return names
