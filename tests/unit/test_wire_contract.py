"""Records no parser should have to read (nested without end, too large, NaN) are
refused with a :class:`ContractError` saying why, never with another exception (issue 12)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.envelope import MAX_RECORD_BYTES, ContractError, decode
from tests.support.carrier import consignment, envelope

REQUESTED = "microhub.booking.requested.v1"


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
