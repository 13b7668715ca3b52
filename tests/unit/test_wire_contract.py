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


def test_the_frozen_check_allows_the_specversion_erratum_only() -> None:
    from contracts.export import incompatibilities, message_schema

    current = message_schema("microhub.booking.confirmed.v1")
    released = json.loads(
        (SCHEMA_DIR.parent / "released" / "1.0" / "microhub.booking.confirmed.v1.json").read_text()
    )
    assert incompatibilities(released, current) == []
    subject = copy.deepcopy(current)
    subject["required"].append("subject")
    assert incompatibilities(released, subject) == [
        "field 'subject' changed between optional and required"
    ]
