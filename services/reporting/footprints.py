"""Carriers' Scope 3 export: per carrier and month, an ISO 14083 shipment footprint per
consignment in the iLEAP data model (Smart Freight Centre / SINE: ShipmentFootprint with
its transport chain elements, TOCs and HOCs), each wrapped in a PACT (WBCSD Pathfinder)
ProductFootprint as a data-model extension. docs/methodology.md, "Carriers' footprints",
describes every field; the figures are the report's (methodology 2.0), so a carrier's
footprints of a city add up to its row of that city's monthly report.

iLEAP writes every number as a decimal string; so does this export. What is NOT done:
the PACT/iLEAP HTTP protocol (OAuth2, /2/footprints paging) and a conformance run (ACT);
the document is what such an endpoint would serve.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting import domain, queries, store
from services.reporting.factors import FactorCatalogue
from services.reporting.figures import Quantities, evaluate
from services.reporting.report import METHODOLOGY_VERSION, build_report

SCHEMA = "microhub.reporting.carrier_footprints.v1"
ILEAP_SHIPMENT = "https://api.ileap.sine.dev/shipment-footprint.json"
ILEAP_TOC = "https://api.ileap.sine.dev/toc.json"
ILEAP_HOC = "https://api.ileap.sine.dev/hoc.json"
NAMESPACE = uuid.UUID("5e1f8a52-3c1d-4f0e-9a53-6d1c0b8e1401")


def dec(x: float, places: int = 6) -> str:
    """An iLEAP Decimal: a JSON string of a plain decimal number."""
    text = f"{x:.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in {"", "-0"} else text


async def carrier_month(
    session: AsyncSession,
    catalogue: FactorCatalogue,
    carrier_id: str,
    month: str,
    *,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """None when the carrier has no consignment in any city."""
    domain.parse_month(month)
    now = now or datetime.now(UTC)
    c = store.consignments.c
    cities = sorted(
        r[0]
        for r in await session.execute(
            select(c.city_id).where(c.carrier_id == carrier_id).distinct()
        )
    )
    if not cities:
        return None
    footprints: list[dict[str, Any]] = []
    tocs: dict[str, dict[str, Any]] = {}
    hocs: dict[str, dict[str, Any]] = {}
    reports = []
    for city_id in cities:
        report = await build_report(session, catalogue, city_id, month, now=now, publish=False)
        reports.append({"city": city_id, "report_id": report.version.id, "status": report.status})
        factors = catalogue.for_city(city_id)
        window = domain.month_window(month, report.city.timezone)
        groups = await queries.shipment_groups(
            session, city_id, carrier_id, window.start_ms, window.end_ms
        )
        hubs = sorted({g.hub_id for g in groups} | {h.hub_id for h in report.hub_energy})
        p = factors.parameters(report.city.country, hubs=hubs, carriers=[carrier_id])
        c0 = p.circuity
        hub_g_per_parcel = {h.hub_id: h.g_per_parcel for h in report.hub_energy}
        hub_mass = {h.hub_id: h.mass_t for h in report.by_hub}
        hub_kg = {h.hub_id: h.hub_kgco2e for h in report.by_hub}
        lhv = factors.value("diesel.lhv_mj_per_l")
        grid_kg_per_mj = p.grid_kg_per_kwh() / 3.6
        diesel_ttw_mj = p.diesel_ttw_kg_per_l / lhv
        diesel_wtw_mj = (p.diesel_ttw_kg_per_l + p.diesel_wtt_kg_per_l) / lhv
        by_shipment: dict[str, list[queries.Group]] = {}
        for g in groups:
            by_shipment.setdefault(g.day, []).append(g)
        for booking_id, parts in sorted(by_shipment.items()):
            tces = []
            trunk_q = Quantities()
            for g in parts:
                trunk_q.add(g)
            f = evaluate(trunk_q, p, c0)
            mass_t = f["mass_t"]
            trunk_tkm = trunk_q.sums["trunk_kgm"] / 1e6 * c0
            trunk_ttw = (
                f["depot_hub_kgco2e"]
                * p.diesel_ttw_kg_per_l
                / (p.diesel_ttw_kg_per_l + p.diesel_wtt_kg_per_l)
            )
            toc_trunk = f"{city_id}:{carrier_id}:depot-hub:diesel_van"
            tces.append(
                _tce(
                    booking_id,
                    "trunk",
                    None,
                    toc_trunk,
                    None,
                    mass_t,
                    trunk_tkm,
                    "Simulated",
                    f["depot_hub_kgco2e"],
                    trunk_ttw,
                )
            )
            previous = "trunk"
            for g in parts:
                hub_kg_here = hub_g_per_parcel.get(g.hub_id, 0.0) * g.parcels / 1000
                hoc = f"{city_id}:{g.hub_id}"
                tce_hub = f"hub:{g.hub_id}"
                if not any(t["tceId"] == f"{booking_id}:{tce_hub}" for t in tces):
                    tces.append(
                        _tce(
                            booking_id,
                            tce_hub,
                            previous,
                            None,
                            hoc,
                            mass_t,
                            0.0,
                            "Actual",
                            hub_kg_here,
                            0.0,
                        )
                    )
                    hocs.setdefault(
                        hoc,
                        _hoc(
                            hoc,
                            g.hub_id,
                            hub_kg.get(g.hub_id, 0.0),
                            hub_mass.get(g.hub_id, 0.0),
                            grid_kg_per_mj,
                        ),
                    )
                q = Quantities()
                q.add(g)
                lf = evaluate(q, p, c0)
                lm_tkm = g.last_mile_kgm / 1e6 * c0
                toc = f"{city_id}:{g.hub_id}:{g.vehicle_type}"
                source = (
                    "Actual" if g.actual_km_m == g.last_mile_m and g.last_mile_m else "Simulated"
                )
                diesel = g.vehicle_type in domain.DIESEL_VEHICLES
                ttw = lf["last_mile_kgco2e"] * (diesel_ttw_mj / diesel_wtw_mj) if diesel else 0.0
                tces.append(
                    _tce(
                        booking_id,
                        f"last-mile:{g.hub_id}:{g.vehicle_type}",
                        f"{booking_id}:{tce_hub}",
                        toc,
                        None,
                        mass_t,
                        lm_tkm,
                        source,
                        lf["last_mile_kgco2e"],
                        ttw,
                    )
                )
                tocs.setdefault(toc, {"kg": 0.0, "ttw": 0.0, "tkm": 0.0, "vehicle": g.vehicle_type})
                tocs[toc]["kg"] += lf["last_mile_kgco2e"]
                tocs[toc]["ttw"] += ttw
                tocs[toc]["tkm"] += lm_tkm
            tocs.setdefault(toc_trunk, {"kg": 0.0, "ttw": 0.0, "tkm": 0.0, "vehicle": "diesel_van"})
            tocs[toc_trunk]["kg"] += f["depot_hub_kgco2e"]
            tocs[toc_trunk]["ttw"] += trunk_ttw
            tocs[toc_trunk]["tkm"] += trunk_tkm
            total_wtw = sum(float(t["co2eWTW"]) for t in tces)
            footprints.append(
                _product_footprint(
                    city_id, carrier_id, month, booking_id, mass_t, total_wtw, tces, window, now
                )
            )
        for toc, t in tocs.items():
            if "tocId" not in t:
                diesel = t["vehicle"] in domain.DIESEL_VEHICLES
                tocs[toc] = {
                    "tocId": toc,
                    "isVerified": False,
                    "isAccredited": False,
                    "description": f"{t['vehicle']} in {city_id}, {month}",
                    "mode": "Road",
                    "energyCarriers": [
                        {
                            "energyCarrier": "Diesel" if diesel else "Electric",
                            "emissionFactorWTW": dec(diesel_wtw_mj if diesel else grid_kg_per_mj),
                            "emissionFactorTTW": dec(diesel_ttw_mj if diesel else 0.0),
                        }
                    ],
                    "co2eIntensityWTW": dec(t["kg"] / t["tkm"] if t["tkm"] else 0.0),
                    "co2eIntensityTTW": dec(t["ttw"] / t["tkm"] if t["tkm"] else 0.0),
                    "transportActivityUnit": "tkm",
                }
    return {
        "schema": SCHEMA,
        "carrier": carrier_id,
        "month": month,
        "methodology": {
            "version": METHODOLOGY_VERSION,
            "document": "docs/methodology.md",
            "standard": "ISO 14083:2023; GLEC Framework v3",
        },
        "reports": reports,
        "footprints": footprints,
        "tocs": [tocs[k] for k in sorted(tocs)],
        "hocs": [hocs[k] for k in sorted(hocs)],
    }


def _tce(shipment, name, previous, toc, hoc, mass_t, tkm, source, wtw, ttw) -> dict[str, Any]:
    tce: dict[str, Any] = {
        "tceId": f"{shipment}:{name}",
        "shipmentId": shipment,
        "mass": dec(mass_t * 1000, 3),
        "transportActivity": dec(tkm),
        "co2eWTW": dec(wtw),
        "co2eTTW": dec(ttw),
    }
    if previous:
        tce["prevTceIds"] = [previous if ":" in previous else f"{shipment}:{previous}"]
    if toc:
        tce["tocId"] = toc
        tce["distance"] = {
            "value": dec(tkm / mass_t if mass_t else 0.0, 3),
            "unit": "km",
            "dataSource": source,
        }
    if hoc:
        tce["hocId"] = hoc
    return tce


def _hoc(hoc: str, hub_id: str, kg: float, mass_t: float, grid_kg_per_mj: float) -> dict[str, Any]:
    return {
        "hocId": hoc,
        "isVerified": False,
        "isAccredited": False,
        "description": f"micro-hub {hub_id}: lighting, heating, handling, charger losses",
        "hubType": "Transshipment",
        "energyCarriers": [
            {
                "energyCarrier": "Electric",
                "emissionFactorWTW": dec(grid_kg_per_mj),
                "emissionFactorTTW": "0",
            }
        ],
        "co2eIntensityWTW": dec(kg / mass_t if mass_t else 0.0),
        "co2eIntensityTTW": "0",
        "hubActivityUnit": "tonnes",
    }


def _product_footprint(
    city, carrier, month, booking_id, mass_t, wtw, tces, window, now
) -> dict[str, Any]:
    fid = uuid.uuid5(NAMESPACE, f"{city}/{carrier}/{month}/{booking_id}/{METHODOLOGY_VERSION}")
    return {
        "id": str(fid),
        "specVersion": "2.2.0",
        "version": 1,
        "created": now.astimezone(UTC).isoformat(timespec="seconds"),
        "status": "Active",
        "companyName": f"microhub micro-hubs of {city}",
        "companyIds": [f"urn:microhub:city:{city}"],
        "productDescription": f"Delivery of consignment {booking_id} through the {city} micro-hubs, {month}",
        "productIds": [f"urn:microhub:booking:{booking_id}"],
        "productCategoryCpc": "6511",
        "productNameCompany": f"consignment {booking_id}",
        "comment": "ISO 14083 shipment footprint; the month's share when its routes span months",
        "pcf": {
            "declaredUnit": "kilogram",
            "unitaryProductAmount": dec(mass_t * 1000, 3),
            "pCfExcludingBiogenic": dec(wtw / (mass_t * 1000) if mass_t else 0.0, 9),
            "fossilGhgEmissions": dec(wtw / (mass_t * 1000) if mass_t else 0.0, 9),
            "characterizationFactors": "AR5",
            "ipccCharacterizationFactorsSources": ["AR5"],
            "crossSectoralStandardsUsed": ["ISO Standard 14083"],
            "boundaryProcessesDescription": "Well-to-wheel transport (depot-hub, last mile) and hub operation",
            "referencePeriodStart": window.start.astimezone(UTC).isoformat(),
            "referencePeriodEnd": window.end.astimezone(UTC).isoformat(),
            "exemptedEmissionsPercent": 0,
            "packagingEmissionsIncluded": False,
        },
        "extensions": [
            {
                "specVersion": "2.0.0",
                "dataSchema": ILEAP_SHIPMENT,
                "data": {"mass": dec(mass_t * 1000, 3), "shipmentId": booking_id, "tces": tces},
            }
        ],
    }
