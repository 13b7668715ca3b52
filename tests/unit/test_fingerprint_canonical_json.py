"""A request's fingerprint is stored (it decides whether a resend is the same request), so
the fast canonical JSON it is taken of must be byte for byte what json.dumps wrote before:
for every JSON document, including the numbers and text where orjson and json.dumps write
differently."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from services.booking.domain import _canonical_json

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=1000)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_the_canonical_json_is_what_json_dumps_writes(document: dict) -> None:
    expected = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    assert _canonical_json(document) == expected


def test_the_numbers_orjson_writes_otherwise_take_the_slow_path() -> None:
    for value in (1e-05, 1e16, 2.5e-07, 2**65, "Straße", "\x7f", 0.0001, 12.0):
        document = {"v": value, "stops": [{"stop_id": "s1"}]}
        assert (
            _canonical_json(document)
            == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        )
