"""Hypothesis strategies shared by the contract tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

IDENTIFIER = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:\-]{0,30}\Z")  # contracts.common
# instants with and without microseconds, under offsets a carrier's clock may give
MOMENTS = st.builds(
    lambda base, micros, offset: (base + timedelta(microseconds=micros)).astimezone(
        timezone(timedelta(minutes=offset))
    ),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(0, 999_999) | st.just(0),
    st.sampled_from([0, 60, -300, 330, 840]),
)
