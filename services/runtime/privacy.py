"""Personal data retention: what every service's purge shares (docs/privacy.md).

Delivery coordinates and what a carrier or a driver wrote in free text are personal data
of the recipients. ``personal_data_retention_days`` after a row's relevant time (a
booking's slot end, a stop done, a route completed, an outbox row sent) each service
anonymises it: coordinates are rounded to :data:`DECIMALS` decimal degrees (about a
kilometre: one cell holds hundreds of addresses), free text is dropped, copies of whole
events that are no longer needed are deleted. What aggregates need (counts, weights,
distances already computed) is kept.

A purge runs in one transaction; ``dry_run`` runs it and rolls back, so its counts are
exactly what a real run would change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, null, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.runtime.db import rowcount

# 0.01 degrees: 1.1 km north-south, 0.7 km east-west at 52 degrees north
DECIMALS = 2
# event types whose ``reason`` is free text a carrier wrote (it may name a recipient)
FREE_TEXT_REASON_TYPES = frozenset(
    {"microhub.booking.cancellation_requested.v1", "microhub.booking.cancelled.v1"}
)

Counts = dict[str, int]


def cutoff(now: datetime, days: int) -> datetime:
    """Rows whose relevant time is before this are purged."""
    return now - timedelta(days=days)


def coarse(value: float) -> float:
    return round(float(value), DECIMALS)


def coarse_point(point: Any) -> Any:
    """A ``{"lat", "lon"}`` rounded; anything else as it is."""
    if isinstance(point, Mapping) and "lat" in point and "lon" in point:
        return {**point, "lat": coarse(point["lat"]), "lon": coarse(point["lon"])}
    return point


# what a proof of delivery (contracts.fleet.ProofOfDelivery) names of the recipient
PROOF_PERSONAL = ("recipient_name", "signature_ref", "photo_ref")


def scrub_proof(proof: Any) -> Any:
    """A stored proof of delivery without the recipient: the name and the references to
    the signature and photo dropped, the place rounded; when it happened stays."""
    if not isinstance(proof, Mapping):
        return proof
    kept = {k: v for k, v in proof.items() if k not in PROOF_PERSONAL}
    if "location" in kept:
        kept["location"] = coarse_point(kept["location"])
    return kept


def scrub(document: Any) -> Any:
    """A JSON document (an event's payload, ``{"type", "data"}``, a list of those) with
    every delivery stop's ``location`` rounded and carriers' free-text reasons dropped.
    Hubs' and depots' locations (businesses, not recipients) stay as they are, and the
    document stays valid for its schema."""
    if isinstance(document, list):
        return [scrub(item) for item in document]
    if not isinstance(document, Mapping):
        return document
    out: dict[str, Any] = {}
    for key, value in document.items():
        if key == "stops" and isinstance(value, list):
            out[key] = [
                {**stop, "location": coarse_point(stop["location"])}
                if isinstance(stop, Mapping) and "location" in stop
                else scrub(stop)
                for stop in value
            ]
        else:
            out[key] = scrub(value)
    if out.get("type") in FREE_TEXT_REASON_TYPES and isinstance(out.get("data"), Mapping):
        out["data"] = {**out["data"], "reason": None}
    return out


def scrub_event_payload(event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """An event's ``data`` alone (stored without its type), scrubbed like :func:`scrub`."""
    scrubbed = scrub({"type": event_type, "data": data})
    return dict(scrubbed["data"])


async def purge_outbox(session: AsyncSession, outbox: Table, before: datetime) -> int:
    """Delete the outbox rows sent before ``before``: once in Kafka, a row is only a copy
    (its payload holds the event, coordinates included). Unsent rows stay, whatever
    their age: the relay still needs them."""
    o = outbox.c
    result = await session.execute(delete(outbox).where(o.sent_at.is_not(None), o.sent_at < before))
    return rowcount(result)


async def purge_answers(session: AsyncSession, inbox: Table, before: datetime) -> int:
    """Forget the answers kept with commands processed before ``before`` (a confirmation
    holds the consignment's stops). The inbox row stays, so the command is still known: a
    copy sent again after that is taken for a duplicate and not answered again."""
    i = inbox.c
    result = await session.execute(
        update(inbox)
        .where(i.answer.is_not(None), i.processed_at < before)
        .values(answer=null())  # SQL NULL, not JSON null
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)
