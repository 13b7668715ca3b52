"""The message contracts: exported schemas are current, published ones are not broken,
and the envelope refuses what it should with a clear reason."""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import UTC, datetime

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.booking import BookingCancellationRequested, BookingRequested
from contracts.booking.commands import BOOKING_ID_NAMESPACE, booking_id_for
from contracts.envelope import REGISTRY, ContractError, decode, encode, new_event
from contracts.export import (
    ASYNCAPI_FILE,
    RELEASED_DIR,
    SCHEMA_DIR,
    compatibility_report,
    incompatibilities,
    message_schema,
    schema_files,
)
from contracts.topics import CARRIER_COMMANDS, CARRIER_TOPICS, TOPICS, all_topic_names
from services.app.generated import generated_files
from services.app.simulate import simulation_groups
from tests.support.carrier import consignment

STALE = "run `make schemas` and commit the result"


def test_checked_in_json_schemas_are_current() -> None:
    expected = schema_files()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.json")}
    assert sorted(on_disk) == sorted(expected), STALE
    for name, text in expected.items():
        assert on_disk[name] == text, f"{name} is stale: {STALE}"


def test_every_generated_file_is_current() -> None:
    """AsyncAPI and KEDA's ScaledObjects are derived from the services' declarations."""
    for path, text in generated_files().items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: {STALE}"


def test_asyncapi_documents_every_topic_the_services_use() -> None:
    document = json.loads(ASYNCAPI_FILE.read_text(encoding="utf-8"))
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {"microhub.booking.commands.v1", "microhub.booking.events.v1"} <= addresses


def test_no_released_contract_was_broken() -> None:
    assert (RELEASED_DIR / "1.0").is_dir()
    assert compatibility_report() == {}


def test_the_compatibility_check_catches_breaking_changes() -> None:
    released = message_schema("microhub.booking.requested.v1")
    added = copy.deepcopy(released)
    added["properties"]["data"] = {"type": "object"}
    assert incompatibilities(released, added) == ["field 'data' changed its schema"]
    retyped = copy.deepcopy(released)
    retyped["$defs"]["BookingRequested"]["properties"]["carrier_id"]["type"] = "integer"
    assert "nested types changed: BookingRequested" in incompatibilities(released, retyped)
    documented = copy.deepcopy(released)
    documented["description"] = "better words"
    assert incompatibilities(released, documented) == []


def test_an_encoded_event_validates_against_its_exported_schema() -> None:
    payload = BookingRequested(
        carrier_id="acme",
        carrier_reference="r1",
        hub_id="ber-westhafen",
        slot_start=datetime(2027, 3, 2, 9, tzinfo=UTC),
        consignment=consignment(),
    )
    document = json.loads(
        encode(new_event(payload, source="carrier/acme", subject="ber-westhafen"))
    )
    schema = json.loads((SCHEMA_DIR / "microhub.booking.requested.v1.json").read_text())
    jsonschema.validate(document, schema)
    document["type"] = "microhub.booking.cancellation_requested.v1"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


def test_every_message_has_a_topic_from_the_table() -> None:
    names = {t.name for t in (*TOPICS, *CARRIER_TOPICS)}
    assert {model.topic for model in REGISTRY.values()} <= names
    assert all(name.startswith("microhub.") for name in all_topic_names())
    assert "microhub.booking.commands.v1.dlq" in all_topic_names()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe", "not_json"),
        (b"[1, 2]", "not_cloudevent"),
        (b'{"specversion": "0.3"}', "not_cloudevent"),
        (
            b'{"specversion":"1.0","id":"1","source":"s","type":"x.y","time":"2027-01-01T00:00:00Z","data":{}}',
            "unknown_type",
        ),
        (
            b'{"specversion":"1.0","id":"1","source":"s","type":"microhub.booking.cancellation_requested.v1",'
            b'"time":"2027-01-01T00:00:00Z","data":{"carrier_id":"a b","carrier_reference":"r","hub_id":"h"}}',
            "invalid_payload",
        ),
        (
            b'{"specversion":"1.0","id":"1","source":"s","type":"microhub.booking.cancellation_requested.v1",'
            b'"time":"2027-01-01T00:00:00","data":{"carrier_id":"a","carrier_reference":"r","hub_id":"h"}}',
            "not_cloudevent",  # a time without offset is ambiguous
        ),
    ],
)
def test_decode_refuses_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ContractError) as info:
        decode(raw)
    assert info.value.reason == reason
    assert info.value.detail


def test_decode_round_trip_and_allowed_types() -> None:
    payload = BookingCancellationRequested(carrier_id="acme", carrier_reference="r1", hub_id="h1")
    event = new_event(payload, source="test", subject="h1")
    assert decode(encode(event)).data == payload
    with pytest.raises(ContractError) as info:
        decode(encode(event), allowed={"microhub.booking.requested.v1"})
    assert info.value.reason == "unknown_type"


def test_unknown_fields_are_refused_so_typos_surface() -> None:
    data = {"carrier_id": "acme", "carrier_reference": "r1", "hub_id": "h1", "reasn": "typo"}
    raw = json.dumps(
        {
            "specversion": "1.0",
            "id": "1",
            "source": "s",
            "time": "2027-01-01T00:00:00Z",
            "type": "microhub.booking.cancellation_requested.v1",
            "data": data,
        }
    )
    with pytest.raises(ContractError, match="reasn"):
        decode(raw)


def test_a_carrier_topics_pattern_takes_every_carriers_topic_and_nothing_else() -> None:
    """Kafka clients only ``re.match`` a subscription pattern: unanchored at the end, the
    commands' pattern would take in their dead letters too."""
    pattern = re.compile(CARRIER_COMMANDS.pattern("dev."))
    assert pattern.match("dev.microhub.carriers.acme-1.commands.v1")
    assert not pattern.match("dev.microhub.carriers.acme-1.commands.v1.dlq")
    assert not pattern.match("microhub.carriers.acme-1.commands.v1")
    assert CARRIER_COMMANDS.carrier_of("dev.microhub.carriers.acme-1.commands.v1", "dev.") == (
        "acme-1"
    )
    assert (
        CARRIER_COMMANDS.carrier_of("dev.microhub.carriers.acme-1.commands.v1.dlq", "dev.") is None
    )


def test_the_simulation_waits_for_the_gateways_ingress_not_for_the_carriers_events() -> None:
    """The gateway's ingress forwards the carriers' commands to booking (the next step
    depends on it); its egress writes topics only carriers read, a projection."""
    driving, projections = simulation_groups()
    assert driving["gateway-ingress"] == "microhub.carriers.{carrier}.commands.v1"
    assert "gateway-bookings" in projections and "gateway-dispatch" in projections
    assert driving["booking"] == "microhub.booking.commands.v1"


UTF8_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


@given(carrier=UTF8_TEXT, reference=UTF8_TEXT)
def test_a_booking_id_is_the_uuid5_of_the_carriers_key(carrier: str, reference: str) -> None:
    """Booking ids are stored and handed out before the decision: the id made without
    the UUID object must be uuid5's, for any text (Identifiers are narrower)."""
    booking_id_for.cache_clear()
    name = f"{carrier}\x1f{reference}"
    assert booking_id_for(carrier, reference) == str(uuid.uuid5(BOOKING_ID_NAMESPACE, name))
