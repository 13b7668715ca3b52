"""Which rows of a relay pass count as sent (services/runtime/outbox.settle): per key, the
acked rows before its first failure, and no other; the rest stays pending, so that a
re-sent tail keeps each key's order."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from services.runtime.outbox import settle


@dataclass(frozen=True)
class Row:
    id: int
    topic: str
    key: str


@st.composite
def passes(draw: st.DrawFn) -> tuple[list[Row], list[BaseException | None]]:
    """A pass's rows (ids ascending, a few topics and keys) and each one's ack or error."""
    count = draw(st.integers(0, 40))
    rows = [
        Row(1000 + i, draw(st.sampled_from(["a", "b"])), draw(st.sampled_from(["h1", "h2", "h3"])))
        for i in range(count)
    ]
    results: list[BaseException | None] = [
        draw(st.one_of(st.none(), st.builds(lambda n: TimeoutError(f"ack {n}"), st.integers())))
        for _ in rows
    ]
    return rows, results


@given(passes())
def test_per_key_the_rows_sent_are_those_acked_before_its_first_failure(
    case: tuple[list[Row], list[BaseException | None]],
) -> None:
    rows, results = case
    sent, pending, first_error = settle(rows, results)
    assert sorted(sent + pending) == [r.id for r in rows]  # each row once
    assert sent == sorted(sent) and pending == sorted(pending)  # in publication order
    failed_before: set[tuple[str, str]] = set()
    for row, result in zip(rows, results, strict=True):
        key = (row.topic, row.key)
        if result is None and key not in failed_before:
            assert row.id in sent
        else:
            assert row.id in pending
            failed_before.add(key)
    errors = [r for r in results if r is not None]
    assert first_error is (errors[0] if errors else None)


def test_a_failure_holds_back_its_keys_later_rows_only() -> None:
    rows = [Row(1, "t", "h1"), Row(2, "t", "h2"), Row(3, "t", "h1"), Row(4, "t", "h2")]
    error = TimeoutError("no ack")
    # h1's first record failed; the second was acked by the broker but must go again
    assert settle(rows, [error, None, None, None]) == ([2, 4], [1, 3], error)
