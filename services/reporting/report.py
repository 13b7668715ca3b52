"""The monthly emissions report of one city, as a typed model (model.EmissionsReport).

SQL does the aggregation (queries.period_groups: exact integer sums per day x hub x
carrier x vehicle type); figures.py applies the city's factors to those few hundred sums;
uncertainty.py moves one parameter at a time to its low and high end. A closed month is
published once per version (publication.py): the same inputs, factors and methodology
give the same bytes, and any change gives a new version number, never a silent edit.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting import baselines, domain, model, queries, store
from services.reporting.factors import FactorCatalogue, FactorSet
from services.reporting.figures import Quantities, evaluate, rollup, rounded, sig
from services.reporting.hub_energy import allocate, hub_energy_plan
from services.reporting.presentation import banners, headline
from services.reporting.uncertainty import data_quality, ranges_and_sensitivity

METHODOLOGY_VERSION = "2.0"

METHODOLOGY = (
    "Standard: ISO 14083:2023 and the GLEC Framework v3. CO2e well-to-wheel (WTW = WTT + "
    "TTW), shown split; electricity is all WTT (generation, upstream, grid losses).",
    "What happened (the hub chain): each consignment's depot -> hub trips by the carrier's "
    "vehicle, the hub's operation (metered kWh, else a configured default per day, flagged "
    "modelled, allocated to the parcels the hub handled) and the consolidated last-mile "
    "routes (actual km and energy when completed, planned km otherwise).",
    "What would have happened without the hubs (a modelled counterfactual, labelled as "
    "such): each carrier delivers a day's consignments from its depot by diesel van; stops "
    "are swept by angle into tours within the van's payload, volume and stops per tour, each "
    "tour ordered nearest-neighbour and improved by 2-opt. The saving is the difference "
    "between the two: avoided emissions, not emissions that happened.",
    "Distances: great-circle x the city's circuity factor (the one dispatch plans with). A "
    "shared route or tour is allocated by weight x distance (ISO 14083 / GLEC).",
    "Diesel: litres = km x l/100 km; TTW and WTT kg CO2e per litre (DESNZ 2025). "
    "Electricity: kWh from the grid = battery kWh x charging losses; kg = kWh x generation "
    "intensity / (1 - grid losses), location-based; market-based shown beside it.",
    "In the city: the share of each leg inside the city boundary polygon; the hubs' own "
    "routes count in the city in full. NOx and PM2.5 = avoided diesel van-km x g/km.",
    "Uncertainty: each factor and assumption with a range is moved to its low and high end "
    "alone; the range of a figure is central +- the root sum of squares of those changes.",
    "Cancelled and no-show bookings add no baseline and no depot-hub trips. Days and the "
    "month are bounded at local midnight; a route counts on the day it was completed.",
)


class UnknownCity(LookupError):
    pass


class ReportUnavailable(ValueError):
    """The projection holds something a report cannot be built from (e.g. a time zone)."""


def _trend_windows(month: str, timezone: str, n: int = 12) -> list[domain.MonthWindow]:
    year, mon = domain.parse_month(month)
    out = []
    for back in range(n - 1, -1, -1):
        index = year * 12 + (mon - 1) - back
        out.append(domain.month_window(f"{index // 12:04d}-{index % 12 + 1:02d}", timezone))
    return out


def _metrics(cls: type, q: Quantities, p: domain.EmissionParameters, c0: float, **keys: Any):
    return cls(**keys, **rounded(evaluate(q, p, c0)))


async def build_report(
    session: AsyncSession,
    catalogue: FactorCatalogue,
    city_id: str,
    month: str,
    *,
    now: datetime | None = None,
    progress: Any = None,
    publish: bool = True,
) -> model.EmissionsReport:
    """Raises ValueError for a malformed month and UnknownCity for a city never seen.
    A closed month is published (publication.py) unless ``publish`` is False."""
    from services.reporting import publication

    domain.parse_month(month)
    now = now or datetime.now(UTC)
    city = await store.find_city(session, city_id)
    if city is None:
        known = ", ".join(await store.city_ids(session)) or "none yet"
        raise UnknownCity(
            f"no booking for city {city_id!r} has been seen: unknown city (known: {known})"
        )
    try:
        window = domain.month_window(month, city.timezone)
        trend_windows = _trend_windows(month, city.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ReportUnavailable(
            f"city {city_id!r} has an unusable time zone {city.timezone!r}: {exc}"
        ) from None
    factors: FactorSet = catalogue.for_city(city_id)
    closed = domain.month_is_closed(window, now)
    step = progress or (lambda _what: None)

    step("computing baseline tours")
    try:
        await baselines.refresh(session, factors, city_id, window.days[-1][0])
    except baselines.LegacyProjection as exc:
        raise ReportUnavailable(str(exc)) from None
    await session.commit()
    step("aggregating")
    groups = await queries.period_groups(session, city_id, window.days)
    # the trend's earlier months (the month itself is the aggregation above)
    trend_groups = await queries.period_groups(
        session, city_id, [(w.month, w.start_ms, w.end_ms) for w in trend_windows[:-1]]
    )
    step("counting")
    counts = await queries.monthly_counts(session, city_id, window.start_ms, window.end_ms)
    hub_names = await store.city_hubs(session, city_id)
    readings_list = await queries.hub_energy_readings(
        session, sorted(hub_names), [w.month for w in trend_windows]
    )
    readings: dict[str, dict[str, Any]] = {}
    for r in readings_list:
        readings.setdefault(r.month, {})[r.hub_id] = r
    step("hashing inputs")
    energy_lines = [
        store.digest_line(
            f"hub-energy:{r.hub_id}:{r.month}:{r.revision}", f"{r.wh}:{r.supplier_gco2e_per_kwh}"
        )
        for r in readings_list
        if r.month == window.month
    ]
    n_events, digest = await queries.input_digest(
        session, city_id, window.start_ms, window.end_ms, energy_lines
    )
    step("applying factors")

    carriers = sorted({g.carrier_id for g in groups} | {g.carrier_id for g in trend_groups})
    p = factors.parameters(
        city.country,
        hubs=sorted(set(hub_names) | {g.hub_id for g in trend_groups}),
        carriers=carriers,
    )
    c0 = p.circuity
    plan = hub_energy_plan(
        window, closed, sorted(hub_names), groups, readings.get(window.month, {})
    )
    cells, unallocated = allocate(groups, plan)
    total = Quantities()
    for _g, q in cells:
        total.merge(q)
    spare = Quantities()
    for q in unallocated.values():
        spare.merge(q)
    total.merge(spare)
    by_hub = rollup(cells, lambda g: g.hub_id)
    for hub, q in unallocated.items():
        by_hub.setdefault(hub, Quantities()).merge(q)
    by_hub = dict(sorted(by_hub.items()))
    central = evaluate(total, p, c0)
    ranges, sensitivity = ranges_and_sensitivity(
        factors, city.country, total, hub_names, carriers, c0
    )
    verdict, sentence = headline(
        city.name, window.month, ranges.saving_kgco2e, has_data=bool(groups), closed=closed
    )

    days = [d for d, _lo, _hi in window.days]
    by_day = rollup(cells, lambda g: g.day)
    last_at = max((g.last_at_ms for g in groups), default=None)
    report = model.EmissionsReport(
        schema_=model.SCHEMA,
        city=model.City(
            id=city.city_id, name=city.name, country=city.country, timezone=city.timezone
        ),
        month=window.month,
        period=model.Period(start=window.start.isoformat(), end=window.end.isoformat()),
        status="closed" if closed else "open",
        generated_at=now.astimezone(UTC).isoformat(timespec="seconds"),
        data_until=datetime.fromtimestamp(last_at / 1000, window.start.tzinfo).isoformat(
            timespec="minutes"
        )
        if last_at is not None
        else None,
        headline=model.Headline(verdict=verdict, sentence=sentence),
        banners=banners(factors, city.country, window, closed, groups, plan, hub_names, central),
        totals=model.Totals(
            **rounded(central),
            **counts,
            hub_kgco2e_unallocated=sig(evaluate(spare, p, c0)["hub_kgco2e"]),
        ),
        ranges=ranges,
        sensitivity=sensitivity,
        data_quality=data_quality(factors, total, p, c0),
        data_basis=_basis(total, p, c0),
        hub_energy=_hub_energy(plan, hub_names, by_hub, p, c0),
        by_hub=[
            _metrics(model.HubRow, q, p, c0, hub_id=h, hub_name=hub_names.get(h, h))
            for h, q in by_hub.items()
        ],
        by_carrier=[
            _metrics(model.CarrierRow, q, p, c0, carrier_id=k)
            for k, q in rollup(cells, lambda g: g.carrier_id).items()
        ],
        by_vehicle_type=[
            _metrics(model.VehicleRow, q, p, c0, vehicle_type=k)
            for k, q in rollup(cells, lambda g: g.vehicle_type).items()
        ],
        daily=[_metrics(model.DayRow, by_day.get(d, Quantities()), p, c0, date=d) for d in days],
        trend=_trend(trend_windows, trend_groups, window, central, readings, hub_names, p, c0, now),
        factors=_factors(factors, city.country),
        methodology=model.Methodology(
            version=METHODOLOGY_VERSION,
            standard="ISO 14083:2023; GLEC Framework v3",
            document="docs/methodology.md",
            steps=list(METHODOLOGY),
        ),
        inputs=model.Inputs(events=n_events, digest=digest),
        version=model.Version(
            id="",
            methodology=METHODOLOGY_VERSION,
            factors_version=factors.version,
            factors_digest=factors.digest,
            inputs_digest=digest,
        ),
    )
    content = hashlib.sha256(model.content_without_publication(report)).hexdigest()
    report = report.model_copy(
        update={"version": report.version.model_copy(update={"id": f"sha256:{content[:32]}"})}
    )
    if closed and publish:
        step("publishing")
        report = await publication.publish(session, report, now)
    return report


def _basis(q: Quantities, p: domain.EmissionParameters, c0: float) -> dict[str, float]:
    f = evaluate(q, p, c0)
    s = q.sums
    measured_kwh = q.measured_wh / 1000 * p.charging_loss_factor
    return {
        "last_mile_km_from_actual_share": sig(s["actual_km_m"] / s["last_mile_m"])
        if s["last_mile_m"]
        else 0.0,
        "last_mile_km_from_plan_share": sig(1 - s["actual_km_m"] / s["last_mile_m"])
        if s["last_mile_m"]
        else 0.0,
        "electricity_measured_share": sig(measured_kwh / f["electricity_kwh"])
        if f["electricity_kwh"]
        else 0.0,
        "electricity_modelled_share": sig(1 - measured_kwh / f["electricity_kwh"])
        if f["electricity_kwh"]
        else 0.0,
        "hub_energy_metered_share": sig(f["hub_kwh_metered"] / f["hub_kwh"])
        if f["hub_kwh"]
        else 0.0,
    }


def _hub_energy(plan, hub_names, by_hub, p, c0) -> list[model.HubEnergy]:
    out = []
    for hub, (metered, days, supplier, meter) in sorted(plan.items()):
        q = by_hub.get(hub, Quantities())
        f = evaluate(q, p, c0)
        kwh = metered if metered is not None else days * p.hub_kwh_per_day.get(hub, 0.0)
        kg = kwh * p.grid_kg_per_kwh()
        market_g = supplier if supplier is not None else p.grid_market_g_per_kwh
        out.append(
            model.HubEnergy(
                hub_id=hub,
                hub_name=hub_names.get(hub, hub),
                basis="metered" if metered is not None else ("modelled" if days else "none"),
                kwh=sig(kwh),
                days=days,
                kgco2e=sig(kg),
                market_based_kgco2e=sig(kwh * p.grid_kg_per_kwh(market_g)),
                parcels=int(f["parcels"]),
                g_per_parcel=sig(1000 * kg / f["parcels"]) if f["parcels"] else 0.0,
                meter=meter,
            )
        )
    return out


def _trend(
    windows, trend_groups, window, central, readings, hub_names, p, c0, now
) -> list[model.TrendPoint]:
    out = []
    for w in windows:
        if w.month == window.month:
            figures = central
        else:
            groups = [g for g in trend_groups if g.day == w.month]
            closed = domain.month_is_closed(w, now)
            plan = hub_energy_plan(w, closed, sorted(hub_names), groups, readings.get(w.month, {}))
            cells, unallocated = allocate(groups, plan)
            q = Quantities()
            for _g, cq in cells:
                q.merge(cq)
            for uq in unallocated.values():
                q.merge(uq)
            figures = evaluate(q, p, c0)
        out.append(
            model.TrendPoint(
                month=w.month,
                status="closed" if domain.month_is_closed(w, now) else "open",
                baseline_kgco2e=sig(figures["baseline_kgco2e"]),
                actual_kgco2e=sig(figures["actual_kgco2e"]),
                saving_kgco2e=sig(figures["saving_kgco2e"]),
                parcels=int(figures["parcels"]),
            )
        )
    return out


def _factors(factors: FactorSet, country: str) -> model.Factors:
    b = factors.boundary
    return model.Factors(
        version=factors.version,
        digest=factors.digest,
        grid_country=country,
        table=[model.FactorRow(**row) for row in factors.table()],
        assumptions=dict(sorted(factors.assumptions.items())),
        boundary=model.CityBoundary(
            source=b.source, year=b.year, note=b.note, vertices=len(b.polygon)
        )
        if b
        else None,
    )


to_json = model.to_json
