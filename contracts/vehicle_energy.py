"""Reference energy use of electric delivery vehicles, shared by dispatch and reporting.

Services never import each other; both import this. The numbers live in
``contracts/data/vehicle_energy.yaml`` (battery kWh per km, low / central / high, with
their sources), so a change there changes dispatch's planning and reporting's modelled
energy together.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.fleet import VehicleType

DATA_FILE = Path(__file__).parent / "data" / "vehicle_energy.yaml"


class VehicleEnergy(BaseModel):
    """Battery kWh per km of one vehicle type: a range and where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float = Field(ge=0, le=5, allow_inf_nan=False)
    central: float = Field(ge=0, le=5, allow_inf_nan=False)
    high: float = Field(ge=0, le=5, allow_inf_nan=False)
    source: str = Field(min_length=1)
    year: int = Field(ge=1900, le=2100)
    confidence: Literal["high", "medium", "low"]
    note: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> VehicleEnergy:
        if not self.low <= self.central <= self.high:
            raise ValueError(
                f"needs low <= central <= high, got {self.low}, {self.central}, {self.high}"
            )
        return self


class VehicleEnergyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    unit: str
    vehicles: dict[VehicleType, VehicleEnergy]


@cache
def vehicle_energy(path: Path = DATA_FILE) -> VehicleEnergyFile:
    return VehicleEnergyFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def battery_kwh_per_km(vehicle_type: VehicleType | str) -> float | None:
    """The central value for an electric vehicle type; None for a type without a battery."""
    entry = vehicle_energy().vehicles.get(VehicleType(vehicle_type))
    return entry.central if entry is not None else None
