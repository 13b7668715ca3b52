"""What every ``microhub`` command shares: the console, logging, settings with readable
errors, and waiting for SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import typer
from pydantic import ValidationError
from rich.console import Console

from services.runtime.settings import Settings

console = Console(stderr=True)


def configure_logging(verbose: bool, settings: Settings | None = None) -> None:
    """Logging of a ``microhub`` command: text or JSON lines (``MICROHUB_LOG_FORMAT``), to
    stderr or a file (``MICROHUB_LOG_FILE``)."""
    from services.runtime.logs import log_handler

    level = logging.DEBUG if verbose else logging.INFO
    fmt = settings.log_format if settings is not None else "text"
    path = settings.log_file if settings is not None else None
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(log_handler(fmt, path))
    root.setLevel(level)
    # aiokafka logs every reconnect attempt at ERROR; our own retry logs say enough
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL if not verbose else logging.INFO)
    # Alembic announces its plugins and every migration step at INFO
    logging.getLogger("alembic").setLevel(logging.INFO if verbose else logging.WARNING)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        console.print("[red]invalid configuration[/] (MICROHUB_… environment variables):")
        for error in exc.errors():
            name = "MICROHUB_" + "_".join(str(p) for p in error["loc"]).upper()
            console.print(f"  {name}: {error['msg']}")
        raise typer.Exit(2) from exc


class NoDatabase(RuntimeError):
    pass


def read_database_url(settings: Settings, service: str, explicit: str | None = None) -> str:
    """The database a read-only command of ``service`` reads: ``explicit``, else the
    configured one, else the default SQLite file or, when that does not exist, the
    running (or last) demo's. A SQLite file that does not exist is an error naming it:
    a read command creates no database."""
    from sqlalchemy.engine import make_url

    from services.runtime.demo_state import demo_data_dir

    url = explicit
    if url is None:
        configured = service in settings.database_urls or settings.__dict__.get(
            f"{service}_database_url"
        )
        url = settings.database_url(service)
        if not configured:
            default = settings.data_dir / f"{service}.db"
            demo = demo_data_dir(settings.data_dir) / f"{service}.db"
            if not default.exists() and demo.exists():
                console.print(f"reading the demo's {service} database {demo}")
                url = f"sqlite+aiosqlite:///{demo}"
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:" or not os.path.exists(path):
            raise NoDatabase(
                f"no {service} database at {path or url}: nothing to read (run `make demo`, "
                f"whose data is in {demo_data_dir(settings.data_dir)}, or name one with "
                f"--database-url or MICROHUB_DATABASE_URLS__{service.upper()})"
            )
    return url


def default_url(settings: Settings) -> str:
    """Where the public HTTP API answers: ``MICROHUB_URL``, else the running demo's
    (``microhub demo`` on this data dir), else ``http://MICROHUB_HTTP_HOST:MICROHUB_HTTP_PORT``."""
    from services.runtime.demo_state import running_demo

    if os.environ.get("MICROHUB_URL"):
        return os.environ["MICROHUB_URL"].rstrip("/")
    demo = running_demo(settings.data_dir)
    if demo is not None and demo.url:
        return demo.url
    host = settings.http_host if settings.http_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{settings.http_port}"


async def wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
