"""A service's own events are encoded without building the envelope model
(``encode_new``): what the relay publishes must be the same JSON document, byte for
meaning, as the envelope model's own encoding, and must read back under the published
contract."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.booking import BookingCancelled, BookingConfirmed
from contracts.envelope import Payload, decode, encode, encode_new, new_event, new_event_id
from tests.support.carrier import consignment
from tests.support.strategies import IDENTIFIER, MOMENTS

ANY_TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
FREE_TEXT = st.none() | st.text(
    st.characters(codec="utf-8"), max_size=80
)  # control characters, quotes, emoji, ...
EXTENSIONS = st.none() | st.fixed_dictionaries(
    {"causationid": ANY_TEXT, "causationsource": ANY_TEXT},
    optional={"traceparent": st.just("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
)


def _cancelled(carrier: str, reference: str, slot: datetime, reason: str | None) -> Payload:
    try:
        return BookingCancelled(
            booking_id=f"b-{reference}",
            carrier_id=carrier,
            carrier_reference=reference,
            hub_id="ber-westhafen",
            slot_start=slot,
            late=False,
            reason=reason,
        )
    except ValidationError:
        assume(False)
        raise


@given(
    carrier=IDENTIFIER,
    reference=IDENTIFIER,
    slot=MOMENTS,
    reason=FREE_TEXT,
    time=MOMENTS,
    subject=st.none() | ANY_TEXT,
    extensions=EXTENSIONS,
    with_data=st.booleans(),
)
def test_an_event_encoded_without_its_model_is_the_same_document(
    carrier: str,
    reference: str,
    slot: datetime,
    reason: str | None,
    time: datetime,
    subject: str | None,
    extensions: dict[str, str] | None,
    with_data: bool,
) -> None:
    payload = _cancelled(carrier, reference, slot, reason)
    modelled = encode(
        new_event(
            payload,
            source="microhub/booking",
            subject=subject,
            time=time,
            event_id="e-1",
            extensions=extensions,
            trusted=True,
        )
    )
    fast = encode_new(
        payload,
        event_id="e-1",
        source="microhub/booking",
        subject=subject,
        time=time,
        data=payload.model_dump(mode="json") if with_data else None,
        extensions=extensions,
    )
    assert json.loads(fast) == json.loads(modelled)
    # and what carriers read back is the event that was emitted
    read = decode(fast)
    assert read.data == payload and read.id == "e-1" and read.time == time
    assert {k: getattr(read, k) for k in extensions or {}} == (extensions or {})


def test_a_confirmation_reads_back_under_its_contract() -> None:
    slot = datetime(2026, 12, 1, 9, tzinfo=UTC)
    payload = BookingConfirmed.model_validate(
        {
            "booking_id": "b-1",
            "carrier_id": "acme",
            "carrier_reference": "r-1",
            "hub_id": "ber-westhafen",
            "slot_start": slot.isoformat(),
            "slot_end": (slot + timedelta(hours=1)).isoformat(),
            "hub": {
                "hub_id": "ber-westhafen",
                "name": "Westhafen",
                "city_id": "berlin",
                "city_name": "Berlin",
                "country": "DE",
                "timezone": "Europe/Berlin",
                "location": {"lat": 52.53, "lon": 13.33},
            },
            "consignment": consignment(parcels=5, stops=3),
        }
    )
    encoded = encode_new(
        payload,
        event_id="e-2",
        source="microhub/booking",
        subject="ber-westhafen",
        time=slot,
        data=payload.model_dump(mode="json"),
    )
    assert decode(encoded).data == payload
    assert b'"time":"2026-12-01T09:00:00Z"' in encoded  # UTC written as the model writes it


class _Counted(Payload):
    event_type: ClassVar[str] = "microhub.test.counted.v1"
    topic: ClassVar[str] = "microhub.test.v1"
    count: int


def test_what_orjson_cannot_write_is_encoded_by_the_model() -> None:
    """orjson refuses integers past 64 bits; the envelope model writes them."""
    payload = _Counted(count=2**70)
    time = datetime(2026, 12, 1, tzinfo=UTC)
    encoded = encode_new(payload, event_id="e-3", source="s", subject=None, time=time)
    assert json.loads(encoded)["data"] == {"count": 2**70}
    assert json.loads(encoded) == json.loads(
        encode(new_event(payload, source="s", subject=None, time=time, event_id="e-3"))
    )


def test_new_event_ids_are_random_version_4_uuids_in_their_canonical_text() -> None:
    """Written without the UUID object (it is taken for every event): still what a
    consumer parsing it as a UUID expects, and never the same twice."""
    ids = [new_event_id() for _ in range(5_000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
    # the 122 random bits are random: every hex digit outside the fixed ones turns up
    assert {c for text in ids for c in text.replace("-", "")[:12]} == set("0123456789abcdef")
