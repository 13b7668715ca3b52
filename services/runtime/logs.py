"""Log lines as text (people at a terminal) or JSON (a log collector), with the ids of
the OpenTelemetry span they were written in, so that a log line leads to its trace."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from opentelemetry import trace

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TraceIds(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex, empty outside a span) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        valid = context.is_valid
        record.trace_id = format(context.trace_id, "032x") if valid else ""
        record.span_id = format(context.span_id, "016x") if valid else ""
        return True


def log_handler(fmt: str = "text", path: Path | None = None) -> logging.Handler:
    """A handler writing ``fmt`` ("text" or "json") lines to ``path`` (else stderr)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(TraceIds())
    return handler
