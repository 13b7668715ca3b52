"""A confirmation's stored form (the booking's ``outcome``, the event's ``data``, the answer
kept with the command) is built from parts already in JSON form instead of dumping the
whole confirmation: it must be exactly what dumping it writes, for any request the
contract accepts (a booking resent later is answered with it, and the outbox publishes it).
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.booking import BookingConfirmed, BookingRequested, HubSummary
from services.booking.decisions import as_document, confirmation_document, hub_summary
from services.booking.domain import HubConfig
from tests.support.hubs import hub_config
from tests.support.strategies import IDENTIFIER, MOMENTS

COORDINATES = st.floats(-89.9, 89.9, allow_nan=False)
STOPS = st.lists(
    st.fixed_dictionaries(
        {"location": st.fixed_dictionaries({"lat": COORDINATES, "lon": COORDINATES})}
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=300)
@given(
    carrier=IDENTIFIER,
    reference=IDENTIFIER,
    slot=MOMENTS,
    stops=STOPS,
    weight=st.floats(0.001, 5_000, allow_nan=False) | st.sampled_from([1e-5, 12.0, 3.0]),
    volume=st.floats(0.001, 30, allow_nan=False),
    city=st.sampled_from(["Berlin", "Zürich", "Saint-Étienne"]),
)
def test_the_confirmation_built_from_its_parts_is_what_dumping_it_writes(
    carrier: str,
    reference: str,
    slot: datetime,
    stops: list[dict],
    weight: float,
    volume: float,
    city: str,
) -> None:
    config = hub_config()
    config["city"]["name"] = city
    hub = HubConfig.model_validate(config)
    request = BookingRequested(
        carrier_id=carrier,
        carrier_reference=reference,
        hub_id=hub.id,
        slot_start=slot,
        consignment={
            "parcel_count": len(stops),
            "weight_kg": weight,
            "volume_m3": volume,
            "depot": {"lat": 52.4, "lon": 13.1},
            "stops": [{"stop_id": f"s{i}", "parcels": 1, **s} for i, s in enumerate(stops)],
        },
    )
    document = request.model_dump(mode="json")
    start = slot.astimezone(UTC)
    confirmed = BookingConfirmed(
        booking_id=f"b-{reference}",
        carrier_id=request.carrier_id,
        carrier_reference=request.carrier_reference,
        hub_id=hub.id,
        slot_start=start,
        slot_end=start + hub.slot_length,
        hub=hub_summary(hub),
        consignment=request.consignment,
    )
    assert confirmation_document(confirmed, document["consignment"], hub) == as_document(confirmed)


def _confirmed(hub: HubConfig, summary: HubSummary, reference: str) -> BookingConfirmed:
    """A one-stop confirmation at ``hub`` carrying ``summary``."""
    slot = datetime(2027, 3, 1, 8, tzinfo=UTC)
    return BookingConfirmed(
        booking_id=f"b-{reference}",
        carrier_id="acme",
        carrier_reference=reference,
        hub_id=hub.id,
        slot_start=slot,
        slot_end=slot + hub.slot_length,
        hub=summary,
        consignment={
            "parcel_count": 1,
            "weight_kg": 1.0,
            "volume_m3": 0.1,
            "depot": {"lat": 52.4, "lon": 13.1},
            "stops": [{"stop_id": "s0", "parcels": 1, "location": {"lat": 52.5, "lon": 13.4}}],
        },
    )


def test_a_hub_whose_summary_changed_is_confirmed_with_the_new_one() -> None:
    """The summaries' JSON forms are kept per hub object: a hub renamed (a new object)
    must not be confirmed under its old name."""
    forms = []
    for name in ("Westhafen", "Westhafen Nord"):
        config = hub_config()
        config["name"] = name
        hub = HubConfig.model_validate(config)
        confirmed = _confirmed(hub, hub_summary(hub), "r1")
        consignment = confirmed.consignment.model_dump(mode="json")
        forms.append(confirmation_document(confirmed, consignment, hub)["data"]["hub"]["name"])
    assert forms == ["Westhafen", "Westhafen Nord"]


def test_a_summary_made_elsewhere_is_confirmed_as_it_is() -> None:
    """The kept JSON form is the kept summary's: a payload carrying another summary of
    the same hub (built by hand, say) gets that summary's own form."""
    hub = HubConfig.model_validate(hub_config())
    other = hub_summary(hub).model_copy(update={"name": "Westhafen (by hand)"})
    confirmed = _confirmed(hub, other, "r2")
    consignment = confirmed.consignment.model_dump(mode="json")
    document = confirmation_document(confirmed, consignment, hub)
    assert document == as_document(confirmed)
    assert document["data"]["hub"]["name"] == "Westhafen (by hand)"
