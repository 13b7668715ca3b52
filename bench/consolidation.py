"""Consolidation over a simulated week: how full the waves' routes are, with the wave
policy before (the interval counted from the last wave, so after a quiet spell the first
check-in left at once, alone) and after (the latest departure counted from the first new
stop; the hubs' departure times and fill from the fleet file).

    python -m bench.consolidation [--days 7] [--seed 7]

The carriers' traffic is the demo's (services/simulation/model.py: requests, check-ins,
cancellations, no-shows) on the sample hubs and their fleet; each wave is planned with
the service's planner (PyVRP) and a vehicle is busy for its route's planned duration.
Events are the check-ins plus a check every minute (the service's wall-clock nudge).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from contracts.booking import BookingCancellationRequested, BookingRequested, CheckInReported
from contracts.fleet import VehicleStatus
from services.booking.catalogue import load_catalogue
from services.booking.slot_grid import slots_on
from services.dispatch import domain
from services.dispatch.domain import VehicleState, WavePolicy
from services.dispatch.fleet import FleetFile, load_fleet
from services.dispatch.solver import Point, StopDemand, plan_wave
from services.simulation import model

DEFAULT = WavePolicy(min_stops=20, max_wait=timedelta(minutes=10))
NEAR_EMPTY = 2  # stops: a route this short is what consolidation should avoid


def old_wave_due(
    *, now: datetime, waiting: int, fresh: int, oldest: datetime | None, last: datetime | None
) -> bool:
    """The rule before: the interval counted from the last wave (from the oldest waiting
    stop before the first wave)."""
    if waiting <= 0:
        return False
    if fresh >= DEFAULT.min_stops:
        return True
    since = last or oldest
    assert DEFAULT.max_wait is not None
    return since is None or now >= since + DEFAULT.max_wait


@dataclass
class Tally:
    routes: int = 0
    stops: int = 0
    near_empty: int = 0
    km: float = 0.0
    waits: list[float] = field(default_factory=list)


@dataclass
class Waiting:
    key: str
    demand: StopDemand
    queued_at: datetime


def check_ins(seed: int, hub, days: int, start: date) -> list[tuple[datetime, list[StopDemand]]]:
    """The hub's consignments that check in (not cancelled, no no-show), with their stops."""
    requests: dict[str, BookingRequested] = {}
    cancelled: set[str] = set()
    arrivals: list[tuple[datetime, str]] = []
    for d in range(days):
        day = start + timedelta(days=d)
        local = datetime.combine(day, time(0), tzinfo=hub.zone)
        for action in model.hub_day(seed, hub, local, slots_on(hub, day)):
            for at, payload, _ in action.messages:
                if isinstance(payload, BookingRequested):
                    requests.setdefault(payload.carrier_reference, payload)
                elif isinstance(payload, BookingCancellationRequested):
                    cancelled.add(payload.carrier_reference)
                elif isinstance(payload, CheckInReported):
                    arrivals.append((at, payload.carrier_reference))
    out = []
    for at, ref in sorted(arrivals):
        if ref in cancelled or ref not in requests:
            continue
        loads = domain.split_consignment(requests[ref].consignment)
        out.append(
            (
                at.astimezone(UTC),
                [
                    StopDemand(
                        f"{ref}/{s.stop_id}", s.location, s.parcels, s.weight_kg, s.volume_m3
                    )
                    for s in loads
                ],
            )
        )
    return out


def run_hub(
    hub,
    fleet: FleetFile,
    arrivals: list[tuple[datetime, list[StopDemand]]],
    due: Callable[..., bool],
    iterations: int,
) -> Tally:
    hub_fleet = fleet.hub(hub.id)
    busy_until: dict[str, datetime] = {}
    waiting: list[Waiting] = []
    last_wave: datetime | None = None
    tally = Tally()
    if not arrivals:
        return tally
    now = arrivals[0][0]
    end = arrivals[-1][0] + timedelta(hours=6)
    queue = list(arrivals)
    while now <= end:
        while queue and queue[0][0] <= now:
            at, stops = queue.pop(0)
            waiting += [Waiting(s.key, s, at) for s in stops]
        fresh = [w for w in waiting if last_wave is None or w.queued_at > last_wave]
        if due(
            now=now,
            waiting=len(waiting),
            fresh=len(fresh),
            oldest=min((w.queued_at for w in fresh), default=None),
            last=last_wave,
            hub=hub,
        ):
            specs = []
            for v in hub_fleet.vehicles:
                busy = busy_until.get(v.id)
                state = VehicleState(
                    v, VehicleStatus.AVAILABLE, None, "busy" if busy and busy > now else None
                )
                spec = domain.vehicle_spec(state, now=now, timezone=hub.city.timezone)
                if spec is not None:
                    specs.append(spec)
            if specs:
                instance = domain.wave_instance(
                    hub_location=Point(hub.location.lat, hub.location.lon),
                    stops=[w.demand for w in waiting],
                    vehicles=specs,
                    circuity=fleet.circuity_of(hub.city.id),
                    service_minutes_per_stop=hub_fleet.service_minutes_per_stop,
                    load_minutes_per_trip=hub_fleet.load_minutes_per_trip,
                )
                plan = plan_wave(instance, iterations=iterations)
                served = set()
                for route in plan.routes:
                    tally.routes += 1
                    tally.stops += len(route.stop_keys)
                    tally.near_empty += len(route.stop_keys) <= NEAR_EMPTY
                    tally.km += route.km
                    busy_until[route.vehicle_id] = now + timedelta(minutes=route.duration_min + 10)
                    served.update(route.stop_keys)
                for w in waiting:
                    if w.key in served:
                        tally.waits.append((now - w.queued_at).total_seconds() / 60)
                waiting = [w for w in waiting if w.key not in served]
                last_wave = now
        next_arrival = queue[0][0] if queue else end + timedelta(minutes=1)
        now = min(now + timedelta(minutes=1), max(next_arrival, now + timedelta(seconds=1)))
        if not waiting and queue:
            now = max(now, queue[0][0])
    return tally


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--fleet", type=Path, default=None, help="another fleet file")
    args = parser.parse_args(argv)
    hubs = load_catalogue()
    fleet = load_fleet(args.fleet)
    start = date(2026, 11, 23)  # a Monday

    def before(**kw: object) -> bool:
        kw.pop("hub")
        return old_wave_due(**kw)  # type: ignore[arg-type]

    def after(*, now, waiting, fresh, oldest, last, hub) -> bool:
        return (
            domain.wave_due(
                now=now,
                waiting=waiting,
                fresh=fresh,
                oldest_fresh_since=oldest,
                last_wave_at=last,
                policy=fleet.wave_policy(hub.id, DEFAULT),
                timezone=hub.city.timezone,
            )
            is not None
        )

    console = Console(width=120)
    table = Table(title=f"Consolidation over {args.days} simulated days (seed {args.seed})")
    for col in (
        "hub",
        "policy",
        "routes",
        "stops/route",
        f"routes ≤{NEAR_EMPTY} stops",
        "km",
        "km/stop",
        "mean wait min",
    ):
        table.add_column(col, justify="left" if col in ("hub", "policy") else "right")
    totals = {"before": Tally(), "after": Tally()}
    for hub in hubs:
        arrivals = check_ins(args.seed, hub, args.days, start)
        for name, rule in (("before", before), ("after", after)):
            t = run_hub(hub, fleet, arrivals, rule, args.iterations)
            total = totals[name]
            total.routes += t.routes
            total.stops += t.stops
            total.near_empty += t.near_empty
            total.km += t.km
            total.waits += t.waits
            table.add_row(hub.id, name, *_cells(t))
        table.add_section()
    for name, t in totals.items():
        table.add_row("all hubs", name, *_cells(t))
    console.print(table)


def _cells(t: Tally) -> list[str]:
    return [
        str(t.routes),
        f"{t.stops / t.routes:.1f}" if t.routes else "-",
        f"{t.near_empty} ({t.near_empty / t.routes:.0%})" if t.routes else "-",
        f"{t.km:.0f}",
        f"{t.km / t.stops:.2f}" if t.stops else "-",
        f"{sum(t.waits) / len(t.waits):.0f}" if t.waits else "-",
    ]


if __name__ == "__main__":
    main()
