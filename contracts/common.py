"""Value types shared by several contracts."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# Identifiers chosen by people (hub ids, carrier ids, references): short, printable,
# no whitespace, safe in URLs and Kafka keys.
Identifier = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
]


def _whole_number(value: Any) -> Any:
    """JSON Schema's ``integer`` is any number without a fractional part: ``5.0`` is one.
    Strict validation takes only ``5``; this lets ``5.0`` through as 5, and nothing else
    (``"5"``, ``true`` and ``5.5`` stay refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer field of a message: what JSON Schema's "integer" accepts, no more, no less.
Integer = Annotated[int, BeforeValidator(_whole_number)]


class GeoPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
