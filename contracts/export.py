"""JSON Schema files for every message, and the compatibility check of released ones.

The schemas are generated from the models and checked in (``make schemas``, which also
writes the AsyncAPI document: services/app/generated.py); tests fail when the checked-in
files are stale, and when a published contract changed incompatibly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contracts.catalog import messages_on  # noqa: F401 - every message registered
from contracts.envelope import NO_NUL, REGISTRY, envelope_for

HERE = Path(__file__).parent
SCHEMA_DIR = HERE / "schemas"
RELEASED_DIR = HERE / "released"
ASYNCAPI_FILE = HERE / "asyncapi.json"


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def message_schema(event_type: str) -> dict[str, Any]:
    model = REGISTRY[event_type]
    schema = envelope_for(model)[model].model_json_schema()  # type: ignore[index]
    schema["title"] = f"{model.__name__} ({event_type})"
    schema["$id"] = f"https://microhub.dev/schemas/{event_type}.json"
    schema["properties"]["type"] = {"const": event_type, "title": "Type", "type": "string"}
    schema["x-topic"] = model.topic
    return schema


def schema_files() -> dict[str, str]:
    return {f"{t}.json": _dump(message_schema(t)) for t in sorted(REGISTRY)}


# ------------------------------------------------------------- compatibility ---------

IGNORED_KEYS = {"title", "description", "examples"}

# Corrections of released schemas that said something other than what the service ever
# did, each with why it breaks nobody. Applied to the released schema before comparing.
ERRATA = {
    "specversion": "CloudEvents 1.0 requires `specversion`, the service never accepted a "
    "message without it (the consumer refused it as not_cloudevent) and never sent one "
    "without it; the 1.0 schemas called it optional (with a default) by mistake.",
    "no NUL in id and source": "an event's identity is kept in the consumer's inbox; on "
    "PostgreSQL a NUL character in `id` or `source` failed the record in the database "
    "(dead-lettered, unanswered); the schemas now say what the service can accept "
    "(`pattern`), and the service refuses such a record as not_cloudevent.",
}


def _apply_errata(released: dict[str, Any]) -> dict[str, Any]:
    corrected = json.loads(json.dumps(released))
    if "specversion" in corrected.get("properties", {}):
        corrected["properties"]["specversion"].pop("default", None)
        if "specversion" not in corrected.setdefault("required", []):
            corrected["required"].insert(0, "specversion")
    for name in ("id", "source"):
        field = corrected.get("properties", {}).get(name)
        if field is not None and field.get("type") == "string":
            field.setdefault("pattern", NO_NUL)
    return corrected


def _strip_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_docs(v) for k, v in node.items() if k not in IGNORED_KEYS}
    if isinstance(node, list):
        return [_strip_docs(v) for v in node]
    return node


def incompatibilities(released: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """A released major version is frozen: consumers of it validate strictly (unknown
    fields are refused), so a field added, removed, made required or retyped breaks them.
    Documentation may change, and so may :data:`ERRATA`; the one addition that breaks
    nobody is an optional field of an envelope that already allowed any further fields
    (``additionalProperties: true``: a CloudEvents extension attribute, documented).
    Anything else needs a new ``.v2`` type."""
    old, new = _strip_docs(_apply_errata(released)), _strip_docs(current)
    old.pop("$id", None)
    new.pop("$id", None)
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    open_envelope = old.get("additionalProperties") is True
    tolerated = {
        name
        for name in set(new_props) - set(old_props)
        if open_envelope and name not in new_required
    }
    if tolerated:  # compare the rest
        new = {**new, "properties": {k: v for k, v in new_props.items() if k not in tolerated}}
        new_props = new["properties"]
    if old == new:
        return []
    problems = []
    for name in sorted(set(old_props) - set(new_props)):
        problems.append(f"field {name!r} was removed")
    for name in sorted(set(new_props) - set(old_props)):
        if not open_envelope:
            problems.append(f"field {name!r} was added (old consumers refuse unknown fields)")
    for name in sorted(old_required ^ new_required):
        problems.append(f"field {name!r} changed between optional and required")
    for name in sorted(set(old_props) & set(new_props)):
        if old_props[name] != new_props[name]:
            problems.append(f"field {name!r} changed its schema")
    if old.get("$defs") != new.get("$defs"):
        changed = sorted(
            k
            for k in set(old.get("$defs", {})) | set(new.get("$defs", {}))
            if old.get("$defs", {}).get(k) != new.get("$defs", {}).get(k)
        )
        problems.append(f"nested types changed: {', '.join(changed)}")
    return problems or ["the schema changed"]


def compatibility_report(released_dir: Path = RELEASED_DIR) -> dict[str, list[str]]:
    report: dict[str, list[str]] = {}
    for release in sorted(p for p in released_dir.iterdir() if p.is_dir()):
        for path in sorted(release.glob("*.json")):
            event_type = path.stem
            if event_type not in REGISTRY:
                report[f"{release.name}/{event_type}"] = ["the message type was removed"]
                continue
            problems = incompatibilities(json.loads(path.read_text()), message_schema(event_type))
            if problems:
                report[f"{release.name}/{event_type}"] = problems
    return report
