"""Monthly emissions report for one city with 100 000 and 1 000 000 delivered stops, on
SQLite and PostgreSQL: report (JSON) and PDF times beside the ceiling, the same
aggregation as one hand-written SQL query on the raw driver.

    python -m bench.reporting_aggregation [--sizes 100000,1000000] [--databases sqlite,postgresql]
                                          [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]

The projection is filled directly (bulk insert / COPY) with rows of the shape the handlers
write, baselines computed with the real domain functions: what is measured is reading,
not ingesting. Goals (issue 4): JSON <= 5 s at 1 M stops on PostgreSQL, PDF <= 15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table
from sqlalchemy import update
from sqlalchemy.engine import make_url

from bench import servers
from services.reporting import domain, store
from services.reporting.baselines import trunk_trips
from services.reporting.factors import FactorCatalogue
from services.reporting.geo import Polygon
from services.reporting.model import to_json
from services.reporting.render import render
from services.reporting.report import build_report
from services.reporting.service import ReportingService
from services.reporting.store import digest_line
from services.reporting.tours import Shipment, Van, baseline_shares
from services.runtime.settings import Settings

console = Console(width=150)

MONTH = "2026-10"
TZ = "Europe/Berlin"
HUBS = {
    "ber-westhafen": (52.5380, 13.3410),
    "ber-suedkreuz": (52.4752, 13.3653),
    "ber-ostkreuz": (52.5030, 13.4690),
}
CARRIERS = ["acme", "bolt", "citypost", "dhx", "parcelo"]
DEPOTS = {c: (52.30 + 0.05 * i, 13.05 + 0.12 * i) for i, c in enumerate(CARRIERS)}
VEHICLES = ["e_cargo_bike", "e_cargo_bike", "e_trike", "e_van", "diesel_van"]
STOPS_PER_CONSIGNMENT = 4
STOPS_PER_ROUTE = 30


@dataclass
class Rows:
    consignments: list[tuple]
    routes: list[tuple]
    allocations: list[tuple]
    events: list[tuple]
    stops: list[tuple]


def _event(event_id: str, event_type: str, booking: str | None, route: str | None) -> tuple:
    sha = uuid.uuid4().hex * 2
    return (event_id, event_type, booking, route, sha, digest_line(event_id, sha))


def generate(stops: int, seed: int = 14083) -> Rows:
    rng = random.Random(seed)
    factors = FactorCatalogue.load().for_city("berlin")
    polygon = factors.polygon()
    city = Polygon(polygon) if polygon else None
    van = Van(
        factors.value("vehicle.diesel_van.payload_kg"),
        factors.value("vehicle.diesel_van.load_volume_m3"),
        int(factors.assumption("baseline.max_stops_per_tour")),
    )
    window = domain.month_window(MONTH, TZ)
    lo, hi = window.start_ms, window.end_ms
    consignments, routes, allocations, events, stop_rows = [], [], [], [], []
    hub_ids = list(HUBS)
    n_consignments = stops // STOPS_PER_CONSIGNMENT
    # every consignment's stops, in route-filling order: routes run per hub
    route_stops: dict[str, list[tuple[str, str, tuple[float, float], float]]] = {
        h: [] for h in hub_ids
    }
    carrier_days: dict[tuple[str, str], list[Shipment]] = {}
    raw: list[dict[str, Any]] = []
    for i in range(n_consignments):
        booking = f"b{i:07d}"
        carrier = CARRIERS[i % len(CARRIERS)]
        hub = hub_ids[i % len(hub_ids)]
        day, day_lo, _day_hi = window.days[(i // len(CARRIERS)) % len(window.days)]
        hlat, hlon = HUBS[hub]
        pts = [
            (hlat + rng.uniform(-0.04, 0.04), hlon + rng.uniform(-0.06, 0.06))
            for _ in range(STOPS_PER_CONSIGNMENT)
        ]
        weight = rng.uniform(5, 1800)
        volume = rng.uniform(0.1, 12)
        depot = domain.Point(*DEPOTS[carrier])
        shipment = Shipment(
            booking,
            depot,
            weight,
            volume,
            STOPS_PER_CONSIGNMENT,
            tuple((f"s{k}", domain.Point(*p), 1) for k, p in enumerate(pts)),
        )
        carrier_days.setdefault((carrier, day), []).append(shipment)
        trunk = trunk_trips(
            depot=depot,
            hub=domain.Point(hlat, hlon),
            weight_kg=weight,
            volume_m3=volume,
            payload_kg=van.payload_kg,
            volume_cap_m3=van.volume_m3,
            city=city,
        )
        activity = sum(
            round(
                weight
                / STOPS_PER_CONSIGNMENT
                * domain.great_circle_km(depot, domain.Point(*p))
                * 1000
            )
            for p in pts
        )
        raw.append(
            dict(
                booking=booking, carrier=carrier, hub=hub, day=day, day_lo=day_lo, weight=weight,
                volume=volume, depot=depot, trunk=trunk, activity=activity,
                trunk_activity=round(weight * domain.great_circle_km(depot, domain.Point(hlat, hlon)) * 1000),
            )
        )  # fmt: skip
        for k, p in enumerate(pts):
            stop_rows.append((booking, f"s{k}", p[0], p[1], 1))
            route_stops[hub].append((booking, carrier, p, weight / STOPS_PER_CONSIGNMENT))
        events.append(_event(f"e-{booking}", "microhub.booking.confirmed.v1", booking, None))
    # the baseline tours of every carrier-day, with the real domain code (what a report's
    # first refresh computes)
    shares = {}
    for group in carrier_days.values():
        shares.update(baseline_shares(group, van, city, pooled=True))
    digests = {c: factors.tour_parameters_digest([c]) for c in CARRIERS}
    for r in raw:
        share = shares[r["booking"]]
        t = r["trunk"]
        consignments.append(
            (
                r["booking"], r["carrier"], r["hub"], "berlin", "confirmed", STOPS_PER_CONSIGNMENT,
                STOPS_PER_CONSIGNMENT, r["weight"], r["volume"], r["day_lo"], r["depot"].lat,
                r["depot"].lon, r["day"], round(r["weight"] * 1000), r["activity"], r["trunk_activity"],
                digests[r["carrier"]], share.gc_m, share.city_gc_m, share.trips_x1000,
                share.city_trips_x1000, t["trunk_trips"], t["trunk_gc_m"], t["trunk_city_gc_m"],
                t["trunk_city_trips"],
            )
        )  # fmt: skip
    r = 0
    for hub, queue in route_stops.items():
        hub_point = domain.Point(*HUBS[hub])
        for start in range(0, len(queue), STOPS_PER_ROUTE):
            chunk = queue[start : start + STOPS_PER_ROUTE]
            route = f"r{r:07d}"
            r += 1
            vehicle = VEHICLES[r % len(VEHICLES)]
            at = rng.randrange(lo, hi)
            planned_m = rng.randrange(8_000, 40_000)
            actual_m = planned_m + rng.randrange(-500, 3_000)
            measured = vehicle != "diesel_van" and r % 2 == 0
            energy_wh = round(actual_m / 1000 * 0.1 * 1000) if measured else None
            routes.append(
                (route, hub, "berlin", vehicle, planned_m, actual_m, energy_wh, at, at, len(chunk))
            )
            loads = [domain.StopLoad(b, domain.Point(*p), w) for b, _c, p, w in chunk]
            route_shares = domain.allocation_shares(hub_point, loads, 1.0)
            metres = domain.apportion(actual_m, route_shares)
            trips = domain.apportion(1000, route_shares)
            wh = domain.apportion(energy_wh, route_shares) if energy_wh is not None else None
            per: dict[str, list[Any]] = {}
            for b, c, p, w in chunk:
                row = per.setdefault(b, [c, 0, 0.0, 0])
                row[1] += 1
                row[2] += w
                row[3] += round(w * domain.great_circle_km(hub_point, domain.Point(*p)) * 1000)
            for b, (c, n, w, kgm) in sorted(per.items()):
                allocations.append(
                    (
                        route, b, "berlin", hub, c, vehicle, at, route_shares[b], kgm / 1e6, n, n, n,
                        w, metres[b], wh[b] if wh else None, True, n, 0, n, kgm, trips[b],
                    )
                )  # fmt: skip
            events.append(_event(f"p-{route}", "microhub.dispatch.route_planned.v1", None, route))
            events.append(_event(f"c-{route}", "microhub.dispatch.route_completed.v1", None, route))
    return Rows(consignments, routes, allocations, events, stop_rows)


TABLE_COLUMNS = {
    "consignments": [
        "booking_id",
        "carrier_id",
        "hub_id",
        "city_id",
        "status",
        "parcel_count",
        "stop_count",
        "weight_kg",
        "volume_m3",
        "slot_start_ms",
        "depot_lat",
        "depot_lon",
        "baseline_day",
        "weight_g",
        "activity_kgm",
        "trunk_activity_kgm",
        "derived_params",
        "tours_gc_m",
        "tours_city_gc_m",
        "tours_x1000",
        "tours_city_x1000",
        "trunk_trips",
        "trunk_gc_m",
        "trunk_city_gc_m",
        "trunk_city_trips",
    ],
    "consignment_stops": ["booking_id", "stop_id", "lat", "lon", "parcels"],
    "routes": [
        "route_id",
        "hub_id",
        "city_id",
        "vehicle_type",
        "planned_m",
        "actual_m",
        "energy_wh",
        "planned_at_ms",
        "completed_at_ms",
        "stop_count",
    ],
    "route_consignments": [
        "route_id",
        "booking_id",
        "city_id",
        "hub_id",
        "carrier_id",
        "vehicle_type",
        "at_ms",
        "share",
        "activity_tkm",
        "stops",
        "parcels",
        "baseline_parcels",
        "weight_kg",
        "alloc_m",
        "alloc_wh",
        "km_actual",
        "delivered_stops",
        "failed_stops",
        "claimed_stops",
        "activity_kgm",
        "trip_x1000",
    ],
    "input_events": [
        "event_id",
        "event_type",
        "booking_id",
        "route_id",
        "content_sha256",
        "digest_line",
    ],
}


def _table_rows(rows: Rows) -> dict[str, list[tuple]]:
    return {
        "consignments": rows.consignments,
        "consignment_stops": rows.stops,
        "routes": rows.routes,
        "route_consignments": rows.allocations,
        "input_events": rows.events,
    }


async def _prepare(url: str) -> None:
    service = ReportingService(Settings(), ["127.0.0.1:9"], database_url=url)
    await service.migrate()
    await service.engine.dispose()


def load_sqlite(path: Path, rows: Rows) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute("INSERT INTO cities VALUES ('berlin', 'Berlin', 'DE', ?)", (TZ,))
        for hub, (lat, lon) in HUBS.items():
            db.execute("INSERT INTO hubs VALUES (?, 'berlin', ?, ?, ?)", (hub, hub, lat, lon))
        for table, data in _table_rows(rows).items():
            cols = TABLE_COLUMNS[table]
            db.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                data,
            )
    db.execute("ANALYZE")
    db.close()


async def load_postgres(url: str, rows: Rows) -> None:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute("INSERT INTO cities VALUES ('berlin', 'Berlin', 'DE', $1)", TZ)
        for hub, (lat, lon) in HUBS.items():
            await conn.execute("INSERT INTO hubs VALUES ($1, 'berlin', $1, $2, $3)", hub, lat, lon)
        for table, data in _table_rows(rows).items():
            await conn.copy_records_to_table(table, records=data, columns=TABLE_COLUMNS[table])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def ceiling_sql(days: tuple[tuple[str, int, int], ...], placeholder: str) -> tuple[str, list[Any]]:
    """The month's aggregation written by hand: the same groups and sums as
    queries.groups_query, in one statement."""
    whens = " ".join(f"WHEN rc.at_ms < {hi} THEN {i}" for i, (_d, _lo, hi) in enumerate(days))
    frac = "((COALESCE({x}, 0)) * rc.baseline_parcels * 2 + c.parcel_count) / (c.parcel_count * 2)"
    live = "c.status = 'confirmed'"
    consignment_sums = ",\n             ".join(
        f"SUM(CASE WHEN {live} THEN {frac.format(x=x)} ELSE 0 END)"
        for x in (
            "c.weight_g", "c.activity_kgm", "c.tours_gc_m", "c.tours_city_gc_m", "c.tours_x1000",
            "c.tours_city_x1000", "c.trunk_gc_m", "c.trunk_city_gc_m", "c.trunk_trips * 1000",
            "c.trunk_city_trips * 1000", "c.trunk_activity_kgm",
        )
    )  # fmt: skip
    sql = f"""
      SELECT CASE {whens} ELSE {len(days) - 1} END AS day,
             rc.hub_id, rc.carrier_id, rc.vehicle_type,
             COUNT(*), SUM(rc.claimed_stops), SUM(rc.stops), SUM(rc.delivered_stops),
             SUM(rc.baseline_parcels), SUM(rc.alloc_m),
             SUM(CASE WHEN rc.km_actual THEN rc.alloc_m ELSE 0 END),
             SUM(CASE WHEN rc.alloc_wh IS NULL THEN rc.alloc_m ELSE 0 END),
             SUM(COALESCE(rc.alloc_wh, 0)), SUM(rc.activity_kgm), SUM(rc.trip_x1000),
             {consignment_sums},
             MAX(rc.at_ms)
      FROM route_consignments rc LEFT JOIN consignments c ON c.booking_id = rc.booking_id
      WHERE rc.city_id = {placeholder.format(1)} AND rc.at_ms >= {placeholder.format(2)}
        AND rc.at_ms < {placeholder.format(3)}
      GROUP BY 1, 2, 3, 4"""
    return sql, ["berlin", days[0][1], days[-1][2]]


def best_of(n: int, fn) -> float:
    return min(fn() for _ in range(n))


async def measure(url: str, kind: str, repeats: int, refresh: bool) -> dict[str, float]:
    window = domain.month_window(MONTH, TZ)
    service = ReportingService(Settings(), ["127.0.0.1:9"], database_url=url)

    async def report_once(fmt: str) -> float:
        started = time.perf_counter()
        async with service.sessions() as session:
            report = await build_report(session, service.catalogue, "berlin", MONTH)
        body = to_json(report) if fmt == "json" else render(report, fmt)
        assert body
        return time.perf_counter() - started

    async def ceiling_once() -> float:
        if kind == "sqlite":
            db = sqlite3.connect(make_url(url).database)
            sql, params = ceiling_sql(window.days, "?")
            started = time.perf_counter()
            rows = db.execute(sql, params).fetchall()
            elapsed = time.perf_counter() - started
            db.close()
        else:
            conn = await asyncpg.connect(
                make_url(url).set(drivername="postgresql").render_as_string(False)
            )
            sql, params = ceiling_sql(window.days, "${}")
            started = time.perf_counter()
            rows = await conn.fetch(sql, *params)
            elapsed = time.perf_counter() - started
            await conn.close()
        assert rows
        return elapsed

    async def first_report() -> float:
        """The first report after the events arrived: every carrier-day's tours are
        computed (baselines.refresh), then the report as usual."""
        async with service.sessions() as session:
            await session.execute(update(store.consignments).values(derived_params=None))
            await session.commit()
        started = time.perf_counter()
        async with service.sessions() as session:
            await build_report(session, service.catalogue, "berlin", MONTH, publish=False)
        return time.perf_counter() - started

    try:
        first_s = await first_report() if refresh else float("nan")
        await report_once("json")  # warm caches and the connection pool once
        json_s = min([await report_once("json") for _ in range(repeats)])
        pdf_s = min([await report_once("pdf") for _ in range(repeats)])
        ceiling_s = min([await ceiling_once() for _ in range(repeats)])
    finally:
        await service.engine.dispose()
    return {"json": json_s, "pdf": pdf_s, "ceiling": ceiling_s, "first": first_s}


async def run(
    sizes: list[int], databases: list[str], postgres_url: str, repeats: int, refresh_up_to: int
) -> None:
    table = Table(title=f"Monthly emissions report, one city ({MONTH}), best of {repeats}")
    for col in (
        "database",
        "delivered stops",
        "allocation rows",
        "ceiling: 1 SQL query",
        "report JSON",
        "JSON / ceiling",
        "report PDF",
        "PDF / ceiling",
        "first report (tours computed)",
        "goal",
    ):
        table.add_column(col, justify="right")
    for size in sizes:
        with console.status(f"generating {size:,} stops"):
            rows = generate(size)
        for kind in databases:
            with tempfile.TemporaryDirectory() as tmp:
                if kind == "sqlite":
                    path = Path(tmp) / "bench.db"
                    url = f"sqlite:///{path}"
                    await _prepare(url)
                    with console.status(f"loading SQLite ({size:,} stops)"):
                        load_sqlite(path, rows)
                    result = await measure(url, kind, repeats, size <= refresh_up_to)
                else:
                    name = f"microhub_bench_{uuid.uuid4().hex[:8]}"
                    admin = (
                        make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
                    )
                    conn = await asyncpg.connect(admin)
                    await conn.execute(f'CREATE DATABASE "{name}"')
                    await conn.close()
                    url = make_url(postgres_url).set(database=name).render_as_string(False)
                    try:
                        await _prepare(url)
                        with console.status(f"loading PostgreSQL ({size:,} stops)"):
                            await load_postgres(url, rows)
                        result = await measure(url, kind, repeats, size <= refresh_up_to)
                    finally:
                        conn = await asyncpg.connect(admin)
                        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                        await conn.close()
            goal = "JSON <= 5 s, PDF <= 15 s" if kind == "postgresql" and size >= 1_000_000 else ""
            if goal:
                met = result["json"] <= 5 and result["pdf"] <= 15
                goal = f"[{'green' if met else 'red'}]{goal}: {'met' if met else 'MISSED'}[/]"
            table.add_row(
                kind,
                f"{size:,}",
                f"{len(rows.allocations):,}",
                f"{result['ceiling']:.3f} s",
                f"{result['json']:.3f} s",
                f"{result['json'] / result['ceiling']:.1f}x",
                f"{result['pdf']:.3f} s",
                f"{result['pdf'] / result['ceiling']:.1f}x",
                "-" if result["first"] != result["first"] else f"{result['first']:.3f} s",
                goal,
            )
            console.print(f"{kind} {size:,}: {result}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="100000,1000000",
        help="comma-separated delivered-stop counts (default: 100000,1000000)",
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--postgres-url",
        default=None,
        help="a server where the bench may create and drop a database (default: "
        "MICROHUB_BENCH_DATABASE_URL, the local server on 127.0.0.1:5432, else a throwaway "
        "cluster started for the bench)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--refresh-up-to",
        type=int,
        default=200_000,
        help="also time the first report after ingest (every carrier-day's tours computed) "
        "up to this many stops (default 200000; it is a one-off cost)",
    )
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(databases) - {"sqlite", "postgresql"}
    if unknown or not sizes or min(sizes) < STOPS_PER_ROUTE:
        parser.error(f"databases: sqlite, postgresql; sizes >= {STOPS_PER_ROUTE}")
    if args.postgres_url is not None or "postgresql" not in databases:
        asyncio.run(run(sizes, databases, args.postgres_url, args.repeats, args.refresh_up_to))
        return
    with servers.postgres() as url:
        asyncio.run(run(sizes, databases, url, args.repeats, args.refresh_up_to))


if __name__ == "__main__":
    main()
