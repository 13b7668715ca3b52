"""The published schemas say exactly what the service accepts (issue 12).

A carrier's client is written only from ``contracts/schemas/``: whatever validates there
must decode here (and be answered), and whatever the service refuses at the door must be
invalid there too. Records no parser should have to read (nested without end, too
large, NaN) are refused with a :class:`ContractError`, never with another exception.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.envelope import MAX_RECORD_BYTES, REGISTRY, ContractError, decode
from contracts.export import SCHEMA_DIR
from tests.support.carrier import consignment, envelope

REQUESTED = "microhub.booking.requested.v1"


def _schema(event_type: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{event_type}.json").read_text(encoding="utf-8"))


# A client asserts the formats the schemas name (JSON Schema leaves ``format`` an
# annotation unless asked; the README asks): date-time is RFC 3339, with an offset.
FORMATS = jsonschema.FormatChecker(formats=())
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


@FORMATS.checks("date-time")
def _date_time(value: object) -> bool:
    if not isinstance(value, str) or not RFC3339.match(value):
        return not isinstance(value, str)
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _validator(event_type: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(_schema(event_type), format_checker=FORMATS)


def _request(**data: Any) -> dict[str, Any]:
    body = {
        "carrier_id": "acme",
        "carrier_reference": "r1",
        "hub_id": "test-hub",
        "slot_start": "2027-03-02T09:00:00+00:00",
        "consignment": consignment(),
        **data,
    }
    return envelope(REQUESTED, body, time=datetime(2027, 3, 1, tzinfo=UTC), subject="test-hub")


def _raw(document: Any) -> bytes:
    return json.dumps(document).encode()


def test_a_record_nested_without_end_is_a_contract_error_not_a_recursion_error() -> None:
    for raw in (b"[" * 200_000, b'{"a":' * 100_000, _raw(_request())[:-1] + b',"x":' + b"[" * 5000):
        with pytest.raises(ContractError) as info:
            decode(raw)
        assert info.value.reason == "not_json"


def test_a_record_over_the_size_limit_is_refused_before_it_is_parsed() -> None:
    document = _request()
    document["padding"] = "x" * MAX_RECORD_BYTES
    with pytest.raises(ContractError) as info:
        decode(_raw(document))
    assert info.value.reason == "too_large"
    assert str(MAX_RECORD_BYTES) in info.value.detail


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json(literal: bytes) -> None:
    raw = _raw(_request()).replace(b'"weight_kg": 30.0', b'"weight_kg": ' + literal)
    assert literal in raw
    with pytest.raises(ContractError) as info:
        decode(raw)
    assert info.value.reason == "not_json"


@pytest.mark.parametrize("attribute", ["id", "source"])
def test_an_identity_holding_nul_is_refused_by_the_schema_and_the_service(attribute: str) -> None:
    # PostgreSQL's text cannot hold NUL: such an identity could not be kept in the inbox
    document = _request()
    document[attribute] = "carrier\u0000" + document[attribute]
    assert not _validator(REQUESTED).is_valid(document)
    with pytest.raises(ContractError) as info:
        decode(_raw(document))
    assert info.value.reason == "not_cloudevent"
    assert attribute in info.value.detail


def test_every_published_schema_requires_specversion_as_the_service_does() -> None:
    for event_type in REGISTRY:
        assert "specversion" in _schema(event_type)["required"], event_type
    document = _request()
    del document["specversion"]
    with pytest.raises(jsonschema.ValidationError):
        _validator(REQUESTED).validate(document)
    with pytest.raises(ContractError):
        decode(_raw(document))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("data", "consignment", "parcel_count"), "4"),  # a string where an integer is
        (("data", "consignment", "stops", 0, "parcels"), "2"),
        (("data", "consignment", "parcel_count"), True),
        (("data", "consignment", "weight_kg"), "30.0"),  # a string where a number is
        (("data", "consignment", "depot", "lat"), "52.4"),
        (("data", "carrier_reference"), 17),  # a number where a string is
        (("data", "slot_start"), 1_803_000_000),  # a Unix time where a date-time string is
        (("time",), 1_803_000_000),
    ],
)
def test_wrong_json_types_are_refused_as_the_schema_refuses_them(
    path: tuple[Any, ...], value: Any
) -> None:
    document = _request()
    node = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        _validator(REQUESTED).validate(document)
    with pytest.raises(ContractError) as info:
        decode(_raw(document))
    assert info.value.reason in {"invalid_payload", "not_cloudevent"}


def test_a_whole_number_written_with_a_fraction_is_an_integer_in_both() -> None:
    """JSON Schema's ``integer`` is any number without a fractional part (5.0 too)."""
    document = _request()
    document["data"]["consignment"]["parcel_count"] = 4.0
    _validator(REQUESTED).validate(document)
    assert decode(_raw(document)).data.consignment.parcel_count == 4
    document["data"]["consignment"]["parcel_count"] = 4.5
    with pytest.raises(jsonschema.ValidationError):
        _validator(REQUESTED).validate(document)
    with pytest.raises(ContractError):
        decode(_raw(document))


def test_stops_that_do_not_add_up_are_valid_on_the_wire_and_left_to_the_rules() -> None:
    """The schema cannot say "the stops carry parcel_count parcels" or "stop ids are
    unique": such a command decodes, and the booking service answers it with a reason
    (services/booking/domain.py check_consignment), instead of dead-lettering it."""
    mismatch = _request()
    mismatch["data"]["consignment"]["parcel_count"] = 999
    duplicate = _request()
    for stop in duplicate["data"]["consignment"]["stops"]:
        stop["stop_id"] = "same"
    for document in (mismatch, duplicate):
        _validator(REQUESTED).validate(document)
        decode(_raw(document))


# --- the schema and the decoder agree (hypothesis) -----------------------------------

# JSON values a client might put anywhere; strings from a plain alphabet (the date-time
# *format* is an annotation in JSON Schema, and Python's ``re`` lets ``$`` match before a
# final newline where the service's (and ECMA's) regular expressions do not)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    | st.text(alphabet="abcXYZ019-_.: ", max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["lat", "lon", "x", "stop_id"]), inner, max_size=3)
    ),
    max_leaves=6,
)


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, (*path, k))] + [path]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaves(v, (*path, i))] + [path]
    return [path]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_whatever_the_schema_accepts_decodes_and_whatever_it_refuses_does_not(data) -> None:
    document = _request()
    paths = [p for p in _leaves(document) if p and p[0] == "data"]
    path = data.draw(st.sampled_from(paths))
    replacement = data.draw(_values | st.just("__delete__"))
    mutated = copy.deepcopy(document)
    node = mutated
    for step in path[:-1]:
        node = node[step]
    if replacement == "__delete__":
        if isinstance(node, list):
            node.pop(path[-1])
        else:
            del node[path[-1]]
    else:
        node[path[-1]] = replacement
    schema_ok = _validator(REQUESTED).is_valid(mutated)
    try:
        decode(_raw(mutated))
        decoded = True
    except ContractError:
        decoded = False
    assert schema_ok == decoded, (path, replacement, schema_ok)


# --- answers: what a carrier's client reads ----------------------------------------------


def test_every_answer_a_carrier_can_get_validates_against_its_published_schema() -> None:
    """The reasons the booking service gives (README) are what the schemas allow: a
    client that validates answers against contracts/schemas/ accepts each of them."""
    from contracts.booking import BookingCommandRejectedV2, CommandRejectionReasonV2

    for reason in CommandRejectionReasonV2:
        payload = BookingCommandRejectedV2(
            command_type=REQUESTED,
            carrier_id="acme",
            carrier_reference="r1",
            hub_id="test-hub",
            booking_id=None,
            reason=reason,
            message="why",
        )
        from contracts.envelope import encode, new_event

        event = new_event(
            payload,
            source="microhub/booking",
            subject="test-hub",
            extensions={"causationid": "1", "causationsource": "carrier/acme"},
        )
        document = json.loads(encode(event))
        _validator(payload.event_type).validate(document)
        assert document["causationid"] == "1"
    schema = _schema("microhub.booking.command_rejected.v2")
    reason = schema["$defs"]["BookingCommandRejectedV2"]["properties"]["reason"]
    assert "enum" not in json.dumps(reason), "v2 leaves the reason open: new codes are no v3"
    # a reason added later is still valid for a client written from this schema
    document = json.loads(encode(event))
    document["data"]["reason"] = "some_future_reason"
    _validator("microhub.booking.command_rejected.v2").validate(document)


def test_booking_event_schemas_document_the_causation_attributes() -> None:
    # booking's answers, and what a carrier reads on its own topic (the gateway's refusals
    # name the carrier's command too)
    answering = {"microhub.booking.events.v1", "microhub.carriers.{carrier}.events.v1"}
    for event_type, model in REGISTRY.items():
        properties = _schema(event_type)["properties"]
        if model.topic in answering:
            assert {"causationid", "causationsource"} <= set(properties), event_type
            assert "causationid" not in _schema(event_type)["required"]
        else:
            assert "causationid" not in properties, event_type


def test_the_frozen_check_allows_the_errata_and_optional_envelope_fields_only() -> None:
    from contracts.export import incompatibilities, message_schema

    current = message_schema("microhub.booking.confirmed.v1")
    released = json.loads(
        (SCHEMA_DIR.parent / "released" / "1.0" / "microhub.booking.confirmed.v1.json").read_text()
    )
    assert incompatibilities(released, current) == []
    # an optional envelope field that is *required* now is a break
    required = copy.deepcopy(current)
    required["required"].append("causationid")
    assert incompatibilities(released, required) == [
        "field 'causationid' changed between optional and required"
    ]
    # a field added to a payload (which refuses unknown fields) still is one
    added = copy.deepcopy(current)
    added["$defs"]["BookingConfirmed"]["properties"]["new"] = {"type": "string"}
    assert incompatibilities(released, added) == ["nested types changed: BookingConfirmed"]
    # and so is any other envelope field made required
    subject = copy.deepcopy(current)
    subject["required"].append("subject")
    assert "field 'subject' changed between optional and required" in incompatibilities(
        released, subject
    )


def test_asyncapi_says_how_answers_are_correlated_and_describes_the_dead_letter_topics() -> None:
    from contracts.export import ASYNCAPI_FILE

    document = json.loads(ASYNCAPI_FILE.read_text(encoding="utf-8"))
    addresses = {c["address"] for c in document["channels"].values()}
    assert {f"{t}.dlq" for t in ("microhub.booking.commands.v1",)} <= addresses
    messages = document["components"]["messages"]
    [answers] = [
        m for name, m in messages.items() if name.startswith("booking:microhub.booking.events.v1")
    ]
    assert answers["correlationId"]["location"] == "$message.payload#/causationid"
    [dead] = [m for name, m in messages.items() if "microhub.booking.commands.v1.dlq" in name]
    header_names = set(dead["headers"]["properties"])
    assert {
        "x-microhub-error-reason",
        "x-microhub-error-class",
        "x-microhub-error-message",
        "x-microhub-original-topic",
        "x-microhub-original-partition",
        "x-microhub-original-offset",
        "x-microhub-consumer",
        "x-microhub-original-size",
        "x-microhub-truncated",
    } <= header_names
    reasons = dead["headers"]["properties"]["x-microhub-error-reason"]["enum"]
    assert {"not_json", "too_large", "handler_failed", "invalid_payload"} <= set(reasons)
