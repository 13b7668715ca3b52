"""The versioned emission-factor file: loading, validation, per-city overrides.

The shipped defaults live in ``data/emission_factors.yaml``; a deployment may add a file of
the same shape (``MICROHUB_EMISSION_FACTORS_FILE``) whose ``factors`` replace defaults
everywhere and whose ``cities.<id>`` entries replace them for one city.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.reporting.domain import ELECTRIC_VEHICLES, EmissionParameters

DEFAULT_FILE = Path(__file__).parent / "data" / "emission_factors.yaml"


class FactorError(ValueError):
    """The factor file is missing, unreadable, or lacks a value a report needs."""


class Factor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(allow_inf_nan=False, ge=0)
    unit: str = Field(min_length=1)
    source: str = Field(min_length=1)
    year: int = Field(ge=1900, le=2100)
    confidence: Literal["high", "medium", "low"]
    note: str = ""


class FactorFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=100)
    factors: dict[str, Factor] = Field(default_factory=dict)
    cities: dict[str, dict[str, Factor]] = Field(default_factory=dict)


def read_factor_file(path: Path) -> FactorFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FactorError(f"emission factor file {path} does not exist") from None
    except (OSError, yaml.YAMLError) as exc:
        raise FactorError(f"emission factor file {path} cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise FactorError(
            f"emission factor file {path}: expected a mapping with 'version' and 'factors'"
        )
    try:
        return FactorFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise FactorError(f"emission factor file {path}: {problems}") from None


@dataclass(frozen=True)
class FactorSet:
    """The factors one city's report uses, with their provenance."""

    version: str
    factors: dict[str, Factor]
    overridden: frozenset[str]

    def value(self, key: str) -> float:
        try:
            return self.factors[key].value
        except KeyError:
            raise FactorError(
                f"the emission factor {key!r} is missing from the factor file"
            ) from None

    def parameters(self, country: str) -> EmissionParameters:
        return EmissionParameters(
            diesel_wtw_kg_per_l=self.value("diesel.wtw_kgco2e_per_l"),
            diesel_l_per_100km=self.value("vehicle.diesel_van.l_per_100km"),
            nox_g_per_km=self.value("pollutant.diesel_van.nox_g_per_km"),
            pm25_g_per_km=self.value("pollutant.diesel_van.pm25_g_per_km"),
            grid_g_per_kwh=self.value(f"grid.{country}.gco2e_per_kwh"),
            charging_loss_factor=self.value("electricity.charging_loss_factor"),
            kwh_per_km={
                v: self.value(f"vehicle.{v}.kwh_per_km") for v in sorted(ELECTRIC_VEHICLES)
            },
        )

    def table(self) -> list[dict[str, object]]:
        return [
            {"key": key, **f.model_dump(), "overridden": key in self.overridden}
            for key, f in sorted(self.factors.items())
        ]

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.table(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class FactorCatalogue:
    """Defaults plus the optional user file; ``for_city`` resolves one city's set."""

    def __init__(self, defaults: FactorFile, user: FactorFile | None = None) -> None:
        self.defaults = defaults
        self.user = user

    @classmethod
    def load(
        cls, user_file: Path | None = None, default_file: Path = DEFAULT_FILE
    ) -> FactorCatalogue:
        return cls(
            read_factor_file(default_file), read_factor_file(user_file) if user_file else None
        )

    def for_city(self, city_id: str) -> FactorSet:
        layers = [self.defaults.factors, self.defaults.cities.get(city_id, {})]
        version = self.defaults.version
        if self.user is not None:
            layers += [self.user.factors, self.user.cities.get(city_id, {})]
            version = f"{version}+{self.user.version}"
        merged: dict[str, Factor] = {}
        overridden: set[str] = set()
        for depth, layer in enumerate(layers):
            for key, factor in layer.items():
                if depth > 0 and key in merged and merged[key] != factor:
                    overridden.add(key)
                elif depth > 0 and key not in self.defaults.factors:
                    overridden.add(key)
                merged[key] = factor
        return FactorSet(version=version, factors=merged, overridden=frozenset(overridden))
