"""A service process freezes what start-up made and collects young objects less often
(services/runtime/gc_tuning.py): what the booking bench measured ~75 µs of a decision's
CPU on (docs/booking-throughput.md). The threshold is a setting, refused when absurd."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from services.app.cli import app
from services.runtime import gc_tuning


@pytest.fixture
def collector_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector_restored")
def test_settling_freezes_what_lives_and_collects_young_objects_less_often() -> None:
    gc.unfreeze()
    long_lived = [object() for _ in range(1000)]  # made "at start-up", still referenced
    _, gen1, gen2 = gc.get_threshold()

    gc_tuning.settle(50_000)

    assert gc.get_freeze_count() >= len(long_lived)
    # a full collection no longer walks them; the older generations keep their rhythm
    assert gc.get_threshold() == (50_000, gen1, gen2)
    # cyclic garbage made afterwards is still collected
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1


def test_a_threshold_below_the_floor_is_a_one_line_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MICROHUB_GC_GEN0_THRESHOLD", "5")
    result = CliRunner().invoke(app, ["serve", "booking"])
    assert result.exit_code == 2
    assert "MICROHUB_GC_GEN0_THRESHOLD" in result.output
    assert "greater than or equal to 100" in result.output
