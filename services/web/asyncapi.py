"""The AsyncAPI document (contracts/asyncapi.json) as an HTML page, rendered here.

Why not AsyncAPI's own React component: its browser bundle is 3 MB and its parser
compiles JSON Schemas with ``new Function`` (ajv), which the pages' CSP forbids (no
``unsafe-eval``). The document is ours, generated from the contracts' registry, and uses
a small part of AsyncAPI 3.0 (channels, operations, messages, JSON Schema payloads):
that part is rendered below, every ``$ref`` a link.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import contracts

SOURCE = Path(contracts.__file__).parent / "asyncapi.json"


def document() -> dict[str, Any]:
    return json.loads(SOURCE.read_text(encoding="utf-8"))


def _e(value: Any) -> str:
    return html.escape(str(value))


def _anchor(ref: str) -> str:
    """``#/components/schemas/X`` -> ``schema-X`` (an id usable in HTML)."""
    name = unquote(ref.rsplit("/", 1)[-1])
    kind = "schema" if "/schemas/" in ref else "message"
    return f"{kind}-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _ref_name(ref: str) -> str:
    return unquote(ref.rsplit("/", 1)[-1])


def _type(schema: dict[str, Any]) -> str:
    """A one-line description of a schema's type, with links to referenced schemas."""
    if "$ref" in schema:
        return f'<a href="#{_anchor(schema["$ref"])}">{_e(_ref_name(schema["$ref"]))}</a>'
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            joiner = " and " if key == "allOf" else " | "
            return joiner.join(_type(s) for s in schema[key])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return "one of " + ", ".join(f"<code>{_e(v)}</code>" for v in schema["enum"])
    if "const" in schema:
        return f"<code>{_e(schema['const'])}</code>"
    fmt = f" ({_e(schema['format'])})" if "format" in schema else ""
    return f"{_e(kind)}{fmt}"


CONSTRAINTS: tuple[str, ...] = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
CONSTRAINTS += ("minLength", "maxLength", "pattern", "minItems", "maxItems", "default")


def _schema(name: str, schema: dict[str, Any]) -> str:
    rows = []
    required = set(schema.get("required", []))
    for prop, spec in (schema.get("properties") or {}).items():
        limits = ", ".join(f"{k} {_e(spec[k])}" for k in CONSTRAINTS if k in spec)
        rows.append(
            f"<tr><td><code>{_e(prop)}</code>{' <b>*</b>' if prop in required else ''}</td>"
            f"<td>{_type(spec)}</td><td>{_e(spec.get('description', ''))}"
            f"{'<br><small>' + limits + '</small>' if limits else ''}</td></tr>"
        )
    table = (
        "<table><thead><tr><th>field</th><th>type</th><th>meaning</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else f"<p>{_type(schema)}</p>"
    )
    description = f"<p>{_e(schema['description'])}</p>" if schema.get("description") else ""
    return (
        f'<section class="schema" id="{_anchor("#/components/schemas/" + name)}">'
        f"<h3>{_e(name)}</h3>{description}{table}</section>"
    )


def render_body(doc: dict[str, Any]) -> str:
    info = doc.get("info", {})
    parts = [
        f"<p>{_e(info.get('description', ''))}</p>",
        f"<p>AsyncAPI {_e(doc.get('asyncapi'))} · {_e(info.get('title'))} "
        f"{_e(info.get('version'))} · default content type "
        f"<code>{_e(doc.get('defaultContentType', ''))}</code> · "
        '<a href="/ui/asyncapi.json">the document as JSON</a></p>',
    ]
    operations: dict[str, list[tuple[str, str]]] = {}
    for op_name, op in (doc.get("operations") or {}).items():
        channel = op.get("channel", {}).get("$ref", "").rsplit("/", 1)[-1]
        operations.setdefault(channel, []).append((op.get("action", ""), op_name.split(":")[0]))
    known = (doc.get("components") or {}).get("messages") or {}
    rows = []
    for name, channel in (doc.get("channels") or {}).items():
        who = "; ".join(f"{_e(a)}s: {_e(s)}" for a, s in operations.get(name, []))
        messages = ", ".join(
            _type(known.get(_ref_name(m["$ref"]), {}).get("payload", {}))
            for m in (channel.get("messages") or {}).values()
            if "$ref" in m
        )
        rows.append(
            f"<tr><td><code>{_e(channel.get('address', name))}</code></td><td>{who}</td>"
            f"<td>{_e(channel.get('description', ''))}</td><td>{messages}</td></tr>"
        )
    parts.append(
        "<h2>Channels (Kafka topics)</h2><table class='channels'><thead><tr><th>topic</th>"
        "<th>service</th><th>what</th><th>message</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    components = doc.get("components", {})
    parts.append("<h2>Messages</h2>")
    for name, message in (components.get("messages") or {}).items():
        payload = message.get("payload", {})
        parts.append(
            f'<section class="message" id="{_anchor("#/components/messages/" + name)}">'
            f"<h3>{_e(name)}</h3><p>payload: {_type(payload)}</p></section>"
        )
    parts.append("<h2>Schemas</h2>")
    for name, schema in sorted((components.get("schemas") or {}).items()):
        parts.append(_schema(name, schema))
    return "\n".join(parts)
