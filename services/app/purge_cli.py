"""``microhub purge``: the personal data purge of every service, now (each service also
runs it on its own timer: MICROHUB_RETENTION_INTERVAL_SECONDS; docs/privacy.md)."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime

import typer
from sqlalchemy.engine import make_url

from services.runtime.cli_common import configure_logging, console, load_settings
from services.runtime.settings import Settings


def _sqlite_missing(url: str) -> str | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    path = parsed.database
    return path or url if not path or path == ":memory:" or not os.path.exists(path) else None


async def purge_services(
    settings: Settings, names: list[str], *, dry_run: bool, now: datetime | None = None
) -> dict[str, dict[str, int] | str]:
    """Per service: rows changed (or, with ``dry_run``, that would be) per table and
    column, or why it was not purged."""
    from services.app.registry import service_class
    from services.runtime import migrations

    out: dict[str, dict[str, int] | str] = {}
    for name in names:
        url = settings.database_url(name)
        missing = _sqlite_missing(url)
        if missing is not None:
            out[name] = f"no database at {missing}: nothing to purge"
            continue
        cls = service_class(name)
        service = cls(settings, settings.bootstrap_list(), database_url=url, consuming=False)
        try:
            if not await migrations.at_head(service.engine, name, cls.spec.migrations):
                out[name] = "not migrated to the newest revision: run `microhub migrate` first"
                continue
            out[name] = await service.purge_personal_data(now, dry_run=dry_run)
        finally:
            await service.engine.dispose()
    return out


def purge(
    service: list[str] = typer.Option(
        None, "--service", "-s", help="Only this service (repeatable; default: all)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Count what would change, change nothing (rolled back)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Anonymise the personal data older than MICROHUB_PERSONAL_DATA_RETENTION_DAYS in
    each service's database: stops' coordinates rounded to ~1 km, free text dropped,
    sent outbox rows deleted, reporting's stops of closed months deleted (docs/privacy.md)."""
    settings = load_settings()
    configure_logging(verbose, settings)
    from services.app.registry import service_names

    names = service or service_names()
    unknown = sorted(set(names) - set(service_names()))
    if unknown:
        console.print(f"[red]unknown service(s): {', '.join(unknown)}[/]")
        raise typer.Exit(2)
    results = asyncio.run(purge_services(settings, names, dry_run=dry_run))
    verb = "rows that would change" if dry_run else "rows changed"
    failed = False
    for name, result in results.items():
        if isinstance(result, str):
            failed = failed or "migrate" in result
            console.print(f"[yellow]{name}[/]: {result}")
            continue
        console.print(
            f"[green]{name}[/] ({verb}, retention {settings.personal_data_retention_days} "
            "days): " + ", ".join(f"{what}: {n}" for what, n in result.items())
        )
    if failed:
        raise typer.Exit(2)
