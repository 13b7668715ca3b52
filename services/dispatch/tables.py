"""The dispatch service's tables, and the rows its queries (store.py) return.

Apart from the queries so that the schema reads in one place: the migrations and the
live queue's change log (changes.py) need the tables, not the queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from services.dispatch.domain import RouteStatus, StopStatus
from services.runtime.db import UTCDateTime, new_metadata
from services.runtime.messaging_tables import add_inbox, add_outbox

metadata = new_metadata()
PURGED = "when its delivery address was anonymised (docs/privacy.md)"

# What dispatch knows of a hub: from the hub summary in BookingConfirmed, plus its own
# event-time clock and wave counter.
hubs = Table(
    "hubs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("city_id", String(64), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("clock", UTCDateTime(), nullable=True, comment="latest event time seen"),
    Column("last_wave_at", UTCDateTime(), nullable=True),
    Column("wave_seq", Integer, nullable=False, default=0),
)

stops = Table(
    "stops",
    metadata,
    Column("booking_id", String(100), nullable=False),
    Column("stop_id", String(64), nullable=False),
    Column("hub_id", String(64), nullable=False, index=True),
    Column("carrier_id", String(64), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("parcels", Integer, nullable=False),
    Column("weight_kg", Float, nullable=False),
    Column("volume_m3", Float, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("reason", Text, nullable=True, comment="why it waits (or was returned)"),
    Column("route_id", String(100), nullable=True),
    Column("expected_at", UTCDateTime(), nullable=True, comment="slot start"),
    Column(
        "booking_moves",
        Integer,
        nullable=False,
        default=0,
        comment="BookingRescheduled.moves last applied (a resent older move changes nothing)",
    ),
    Column("queued_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("purged_at", UTCDateTime(), nullable=True, comment=PURGED),
    # booking's stop terms (microhub.booking.requested.v2), the planner's ETA, the POD
    Column("kind", String(20), nullable=False, server_default="delivery"),
    Column("window_start", UTCDateTime(), nullable=True),
    Column("window_end", UTCDateTime(), nullable=True),
    Column("eta", UTCDateTime(), nullable=True, comment="when service should start"),
    Column("proof", JSON, nullable=True, comment="the proof of delivery, as the vehicle sent it"),
    Column("pinned_vehicle", String(64), nullable=True, comment="the dispatcher's pin"),
    PrimaryKeyConstraint("booking_id", "stop_id"),
    # after every event dispatch counts the hub's waiting stops; a route's stops are
    # read as it starts and ends: without these, each is a scan of the hub's history
    Index("ix_stops_hub_status", "hub_id", "status"),
    Index("ix_stops_route_id", "route_id"),
)

vehicles = Table(
    "vehicles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("hub_id", String(64), nullable=False, index=True),
    Column("config", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("battery_pct", Float, nullable=True),
    Column("status_at", UTCDateTime(), nullable=True),
    Column("active", Integer, nullable=False, default=1, comment="0 once removed by an admin"),
)

routes = Table(
    "routes",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("hub_id", String(64), nullable=False, index=True),
    Column("wave_id", String(100), nullable=False),
    Column("vehicle_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("planned", JSON, nullable=False, comment="the RoutePlanned payload"),
    Column("planned_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=True),
    Column("completed_at", UTCDateTime(), nullable=True),
    Column("actual_km", Float, nullable=True),
    Column("energy_kwh", Float, nullable=True),
    Column("purged_at", UTCDateTime(), nullable=True, comment=PURGED),
    Index("ix_routes_vehicle_status", "vehicle_id", "status"),  # a vehicle's active route
)
# the purge's next rows (privacy.py): done and not yet anonymised
Index(
    "ix_stops_unpurged",
    stops.c.updated_at,
    postgresql_where=stops.c.purged_at.is_(None),
    sqlite_where=stops.c.purged_at.is_(None),
)
Index(
    "ix_routes_unpurged",
    routes.c.completed_at,
    postgresql_where=routes.c.purged_at.is_(None),
    sqlite_where=routes.c.purged_at.is_(None),
)

# The live queue's change log (services/dispatch/changes.py): a row per hub and
# transaction that changed the hub's queue, numbered per hub without gaps, read by every
# process that serves the queue over HTTP. The number comes from the hub's head row, which
# the writing transaction updates and so holds locked until it commits: numbers of one
# hub become visible in order. (A head table, not a column of ``hubs``: the fleet admin
# changes hubs that no booking has brought into ``hubs`` yet.)
hub_change_heads = Table(
    "hub_change_heads",
    metadata,
    Column("hub_id", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False, comment="the hub's latest change number"),
)

hub_changes = Table(
    "hub_changes",
    metadata,
    Column("hub_id", String(64), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("at", UTCDateTime(), nullable=False, comment="wall clock of the write: pruning"),
    Column("changes", JSON, nullable=False, comment="what changed, as the SSE stream sends it"),
    PrimaryKeyConstraint("hub_id", "version"),
    Index("ix_hub_changes_at", "at"),
)

outbox = add_outbox(metadata)
inbox = add_inbox(metadata)


# -------------------------------------------------------------------------------- rows ---


@dataclass(frozen=True)
class HubRow:
    id: str
    name: str
    city_id: str
    timezone: str
    lat: float
    lon: float
    clock: datetime | None
    last_wave_at: datetime | None
    wave_seq: int


@dataclass(frozen=True)
class StopRow:
    booking_id: str
    stop_id: str
    hub_id: str
    carrier_id: str
    lat: float
    lon: float
    parcels: int
    weight_kg: float
    volume_m3: float
    status: StopStatus
    attempts: int
    reason: str | None
    route_id: str | None
    expected_at: datetime | None
    queued_at: datetime | None
    updated_at: datetime
    purged_at: datetime | None = None
    booking_moves: int = 0
    kind: str = "delivery"
    window_start: datetime | None = None
    window_end: datetime | None = None
    eta: datetime | None = None
    proof: dict[str, Any] | None = None
    pinned_vehicle: str | None = None


@dataclass(frozen=True)
class RouteRow:
    id: str
    hub_id: str
    wave_id: str
    vehicle_id: str
    status: RouteStatus
    planned: dict[str, Any]
    planned_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    actual_km: float | None
    energy_kwh: float | None
    purged_at: datetime | None = None
