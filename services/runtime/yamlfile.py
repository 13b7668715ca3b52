"""Reading the YAML files people edit (hub catalogue, fleet, API keys, factors) with
errors that name the file and what is wrong with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


def load_listing(path: Path, *, what: str, key: str, error: type[ValueError]) -> dict[str, Any]:
    """A YAML mapping whose ``key`` holds a list, e.g. ``hubs: [...]``."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get(key), list):
        raise error(f"{what} {path} must be a mapping with a '{key}' list")
    return document


def validation_problems(exc: ValidationError, *, limit: int = 8) -> str:
    """``field.path: message; …`` — the part of a pydantic error a person needs."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
        for e in exc.errors()[:limit]
    )
