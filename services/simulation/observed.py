"""What the services answered, read back from the topics: the counts of a simulation run
(booking outcomes, routes, stops, dead letters) that the summary prints and checks.

Apart from driver.py because it is a concern of its own: the driver sends and keeps the
simulated clock; this only interprets the records the driver's reader gets back, and is
what summary.py needs of a run.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from contracts.dispatch import RouteCompleted, RoutePlanned, StopUpdated
from contracts.envelope import ContractError, decode
from contracts.topics import BOOKING_EVENTS


@dataclass
class Observed:
    """What the services answered, read back from the topics (deduplicated by event id)."""

    booking: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    command_rejected: Counter[str] = field(default_factory=Counter)
    late_cancellations: int = 0
    routes_planned: int = 0
    routes_completed: int = 0
    stops_returned: int = 0
    stops_failed: int = 0  # failed delivery attempts the vehicles reported
    # what the carriers heard per stop (StopUpdated), by status, and how many proofs
    stop_updates: Counter[str] = field(default_factory=Counter)
    proofs_to_carriers: int = 0
    km_by_city: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    routes_by_city: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)
    months_by_city: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    sent: int = 0
    settles: int = 0
    _seen: set[str] = field(default_factory=set)
    _outcomes: set[tuple[str, str]] = field(default_factory=set)
    _dead: set[tuple[bytes, ...]] = field(default_factory=set)

    def take(
        self,
        name: str,
        record,
        new_routes: dict[str, list[tuple[RoutePlanned, datetime]]],
    ) -> None:
        """Count one record of topic ``name`` (prefix removed); a route planned goes to
        ``new_routes`` of its hub, for the driver to schedule its vehicle's reports."""
        if name.endswith(".dlq"):
            # at-least-once too: a consumer that crashed after dead-lettering a record,
            # before committing it, dead-letters it again; its origin identifies it
            headers = dict(record.headers or ())
            origin = tuple(
                headers.get(f"x-microhub-original-{h}", b"")
                for h in ("topic", "partition", "offset")
            )
            if origin in self._dead:
                return
            self._dead.add(origin)
            self.dead_lettered[name[: -len(".dlq")]] += 1
            return
        try:
            event = decode(record.value)
        except ContractError:
            return
        if event.id in self._seen:
            return  # at-least-once: an outbox may publish a row twice after a crash
        self._seen.add(event.id)
        data, kind = event.data, event.type.split(".")[-2]
        if name == BOOKING_EVENTS.name:
            # a carrier's retry is answered with the booking's outcome again (a new event):
            # count each booking's outcome once
            booking_id = getattr(data, "booking_id", None)
            if booking_id and kind != "command_rejected":
                if (kind, booking_id) in self._outcomes:
                    return
                self._outcomes.add((kind, booking_id))
            self.booking[kind] += 1
            if kind == "rejected":
                self.rejected[str(data.reason)] += 1
            elif kind == "command_rejected":
                self.command_rejected[str(data.reason)] += 1
            elif kind == "cancelled" and data.late:
                self.late_cancellations += 1
            elif kind == "confirmed":
                zone_month = data.slot_start.astimezone(_zone(data.hub.timezone)).strftime("%Y-%m")
                self.months_by_city[data.hub.city_id].add(zone_month)
        elif isinstance(data, RoutePlanned):
            self.routes_planned += 1
            new_routes[data.hub_id].append((data, event.time))
        elif isinstance(data, RouteCompleted):
            self.routes_completed += 1
            self.routes_by_city[data.city_id] += 1
            self.km_by_city[data.city_id] += data.actual_km
        elif kind == "stop_returned":
            self.stops_returned += 1
        elif isinstance(data, StopUpdated):
            self.stop_updates[data.status.value] += 1
            self.proofs_to_carriers += data.proof is not None


def _zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
