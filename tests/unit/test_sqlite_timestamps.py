"""On SQLite a timestamp is stored as text and compared as text: the text microhub writes
must be exactly what SQLAlchemy's DATETIME writes for the same instant in UTC, or rows
written before and after would compare wrongly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects.sqlite import pysqlite

from services.runtime import db
from services.runtime.db import UTCDateTime

SQLITE = pysqlite.dialect()
OURS = UTCDateTime()._cached_bind_processor(SQLITE)
SQLALCHEMYS = DateTime()._cached_bind_processor(SQLITE)
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(
    moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offset=OFFSETS,
)
def test_the_text_is_sqlalchemys_for_the_utc_instant(moment: datetime, offset: timezone) -> None:
    aware = moment.replace(tzinfo=offset)
    assert OURS is not None and SQLALCHEMYS is not None
    assert OURS(aware) == SQLALCHEMYS(aware.astimezone(UTC).replace(tzinfo=None))


def test_a_naive_timestamp_is_refused_and_none_stays_null() -> None:
    assert OURS is not None
    assert OURS(None) is None
    with pytest.raises(ValueError, match="naive datetime"):
        OURS(datetime(2026, 12, 1))


@given(
    moments=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 999_999), OFFSETS), min_size=1, max_size=40
    )
)
def test_kept_texts_are_those_of_the_instants_bound_even_past_the_limit(
    moments: list[tuple[int, int, timezone]],
) -> None:
    """The processor keeps the text of instants it has bound (a batch binds the same
    slot starts and clock again and again): an instant bound again, under any offset,
    or after what is kept was dropped (here every 3 instants), is still its own text."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(db, "_DATETIME_TEXTS", 3)
        ours = UTCDateTime().bind_processor(SQLITE)
        assert ours is not None and SQLALCHEMYS is not None
        base = datetime(2027, 3, 1, 8, tzinfo=UTC)
        for hours, micros, offset in moments:
            aware = (base + timedelta(hours=hours, microseconds=micros)).astimezone(offset)
            assert ours(aware) == SQLALCHEMYS(aware.astimezone(UTC).replace(tzinfo=None))
