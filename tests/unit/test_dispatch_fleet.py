"""The fleet file: the sample covers every sample hub; mistakes are named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from contracts.fleet import VehicleType
from services.booking.catalogue import load_catalogue
from services.dispatch.fleet import FleetError, load_fleet
from tests.support.dispatch import bike


def test_the_sample_fleet_serves_every_sample_hub() -> None:
    fleet = load_fleet()
    hubs = {h.id for h in load_catalogue()}
    assert {h.hub_id for h in fleet.hubs} == hubs
    for hub in fleet.hubs:
        assert hub.vehicles, hub.hub_id
        assert {v.type for v in hub.vehicles} <= set(VehicleType)
        assert all(v.shifts for v in hub.vehicles)
    assert fleet.circuity_of("berlin") == 1.3
    assert fleet.circuity_of("oslo") == 1.4
    assert fleet.circuity_of("elsewhere") == 1.3


def write(tmp_path: Path, document) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("hubs: [", "not valid YAML"),
        ({"vehicles": []}, "mapping with a 'hubs' list"),
        (
            {"hubs": [{"hub_id": "h1", "vehicles": [bike("b1", type="rocket")]}]},
            "hub h1, vehicle b1: type",
        ),
        (
            {"hubs": [{"hub_id": "h1", "vehicles": [bike("b1", range_km=0)]}]},
            "hub h1, vehicle b1: range_km",
        ),
        (
            {"hubs": [{"hub_id": "h1", "vehicles": [bike("b1", shifts={"mon": ["17:00-07:00"]})]}]},
            "must end after it starts",
        ),
        (
            {"hubs": [{"hub_id": "h1", "vehicles": [bike("b1", shifts={"mon": ["7-17"]})]}]},
            "is not 'HH:MM-HH:MM'",
        ),
        (
            {"hubs": [{"hub_id": "h1", "vehicles": [bike("b1"), bike("b1")]}]},
            "vehicle ids listed more than once: ['b1']",
        ),
        (
            {
                "hubs": [
                    {"hub_id": "h1", "vehicles": [bike("b1")]},
                    {"hub_id": "h2", "vehicles": [bike("b1")]},
                ]
            },
            "vehicle b1 is in both h1 and h2",
        ),
        ({"hubs": [{"hub_id": "h1"}, {"hub_id": "h1"}]}, "more than once: ['h1']"),
        ({"circuity": {"berlin": 0.7}, "hubs": []}, "circuity of berlin is 0.7"),
        (
            {"hubs": [{"hub_id": "h1", "vehicles": [bike("b1", charge_kw=-3)]}]},
            "hub h1, vehicle b1: charge_kw",
        ),
        (
            {"hubs": [{"hub_id": "h1", "vehicles": [bike("b1", charge_at_shift_start_pct=120)]}]},
            "hub h1, vehicle b1: charge_at_shift_start_pct",
        ),
        (
            {
                "hubs": [
                    {
                        "hub_id": "h1",
                        "vehicles": [bike("b1", breaks={"after_hours": 0, "minutes": 30})],
                    }
                ]
            },
            "hub h1, vehicle b1: breaks.after_hours",
        ),
    ],
)
def test_mistakes_are_named(tmp_path: Path, document, message: str) -> None:
    with pytest.raises(FleetError) as caught:
        load_fleet(write(tmp_path, document))
    assert message in str(caught.value)
    assert "fleet" in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match=r"cannot read fleet file .*nope\.yaml"):
        load_fleet(tmp_path / "nope.yaml")
