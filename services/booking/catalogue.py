"""The hub catalogue file (YAML): parsing with errors that name the hub and the field."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from services.booking.domain import HubConfig
from services.runtime.yamlfile import load_listing, validation_problems

SAMPLE_HUBS = Path(__file__).parent / "data" / "hubs.yaml"


class CatalogueError(ValueError):
    pass


def load_catalogue(path: Path | None = None) -> list[HubConfig]:
    path = path or SAMPLE_HUBS
    document = load_listing(path, what="hub catalogue", key="hubs", error=CatalogueError)
    hubs: list[HubConfig] = []
    for index, entry in enumerate(document["hubs"]):
        name = entry.get("id", f"#{index + 1}") if isinstance(entry, dict) else f"#{index + 1}"
        try:
            hubs.append(HubConfig.model_validate(entry))
        except ValidationError as exc:
            raise CatalogueError(f"hub {name} in {path}: {validation_problems(exc)}") from exc
    ids = [hub.id for hub in hubs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CatalogueError(f"hub catalogue {path} lists these ids more than once: {duplicates}")
    return hubs
