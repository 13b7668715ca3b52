"""The hub catalogue file (YAML): parsing with errors that name the hub and the field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from services.booking.domain import HubConfig

SAMPLE_HUBS = Path(__file__).parent / "data" / "hubs.yaml"


class CatalogueError(ValueError):
    pass


def load_catalogue(path: Path | None = None) -> list[HubConfig]:
    path = path or SAMPLE_HUBS
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(f"cannot read hub catalogue {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CatalogueError(f"hub catalogue {path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("hubs"), list):
        raise CatalogueError(f"hub catalogue {path} must be a mapping with a 'hubs' list")
    hubs: list[HubConfig] = []
    for index, entry in enumerate(document["hubs"]):
        name = entry.get("id", f"#{index + 1}") if isinstance(entry, dict) else f"#{index + 1}"
        try:
            hubs.append(HubConfig.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise CatalogueError(f"hub {name} in {path}: {problems}") from exc
    ids = [hub.id for hub in hubs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CatalogueError(f"hub catalogue {path} lists these ids more than once: {duplicates}")
    return hubs
