"""Command line: ``microhub report`` and ``microhub reporting rebuild`` (the lead mounts
these typer commands; ``app`` is usable on its own too)."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from services.reporting.domain import parse_month
from services.reporting.factors import FactorError
from services.reporting.report import UnknownCity
from services.runtime.settings import Settings

app = typer.Typer(help="Emissions reports of the city micro-hubs.", no_args_is_help=True)
console = Console(stderr=True)

REPORT_STEPS = (
    "computing baseline tours",
    "aggregating",
    "counting",
    "hashing inputs",
    "applying factors",
    "publishing",
    "rendering",
)


class ReportFormat(StrEnum):
    json = "json"
    csv = "csv"
    html = "html"
    pdf = "pdf"


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _write(body: bytes, out: Path | None) -> None:
    if out is None:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(body)
        console.print(f"[green]wrote[/] {out} ({len(body):,} bytes)")


async def produce_report(
    settings: Settings,
    *,
    city: str,
    month: str,
    fmt: str,
    database_url: str | None = None,
    progress: Progress | None = None,
) -> bytes:
    """The report of ``city`` for ``month`` from the projection database."""
    from services.reporting.service import ReportingService

    service = ReportingService(settings, settings.bootstrap_list(), database_url=database_url)
    task = progress.add_task("report", total=len(REPORT_STEPS)) if progress else None

    def step(what: str) -> None:
        if progress is not None and task is not None:
            progress.update(task, description=what, completed=REPORT_STEPS.index(what))

    try:
        await service.migrate()
        months = [m["month"] for m in await service.months(city)]  # UnknownCity names them
        if month not in months:
            raise NoData(
                f"no data for {city} in {month}: no consignment went through its hubs that "
                f"month (months with data: {', '.join(months) or 'none'})"
            )
        report = await service.report(city, month, progress=step)
        step("rendering")
        # imported here: matplotlib and reportlab cost every `microhub` command ~0.5 s
        from services.reporting.render import render

        body = await asyncio.to_thread(render, report, fmt)
        if progress is not None and task is not None:
            progress.update(task, completed=len(REPORT_STEPS))
        return body
    finally:
        await service.engine.dispose()


class NoData(ValueError):
    """A month without any consignment: a report of zeros would read as "0 kg saved"."""


def _fail(message: str) -> None:
    console.print(f"[red]error:[/] {message}")
    raise typer.Exit(2)


@app.command("report")
def report(
    city: str = typer.Option(..., "--city", help="City id, e.g. berlin."),
    month: str = typer.Option(..., "--month", help="YYYY-MM, in the city's time zone."),
    format: ReportFormat = typer.Option(ReportFormat.json, "--format", "-f"),
    out: Path | None = typer.Option(None, "--out", "-o", help="File to write (default: stdout)."),
    database_url: str | None = typer.Option(None, "--database-url", help="Projection database."),
) -> None:
    """The monthly emissions-savings report of a city, from the reporting projection
    (default: the configured database, else the demo's)."""
    from services.runtime.cli_common import NoDatabase, load_settings, read_database_url

    try:
        parse_month(month)  # a mistyped month is said as such, before any database
    except ValueError as exc:
        _fail(str(exc))
    settings = load_settings()
    try:
        database_url = read_database_url(settings, "reporting", database_url)
    except NoDatabase as exc:
        _fail(str(exc))
    try:
        with _progress() as progress:
            body = asyncio.run(
                produce_report(
                    settings,
                    city=city,
                    month=month,
                    fmt=format.value,
                    database_url=database_url,
                    progress=progress,
                )
            )
    except (ValueError, UnknownCity, FactorError) as exc:
        _fail(f"{exc} (database {_shown(database_url)})")
    except OSError as exc:
        _fail(f"cannot read {_shown(database_url)}: {exc}")
    _write(body, out)


def _shown(url: str | None) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True) if url else "(none)"


async def rebuild_projection(
    settings: Settings,
    *,
    database_url: str,
    progress: Progress | None = None,
    carry_over_from: str | None = None,
) -> dict[str, Any]:
    """Re-read the booking and dispatch topics from the beginning into ``database_url`` (a
    fresh database) and return the replay counts. Meter readings and published report
    versions do not come from Kafka: they are copied from ``carry_over_from``."""
    from services.reporting.service import ReportingService

    service = ReportingService(settings, settings.bootstrap_list(), database_url=database_url)
    task = progress.add_task("replaying topics", total=None) if progress else None

    def tick(done: int, total: int) -> None:
        if progress is not None and task is not None:
            progress.update(task, completed=done, total=total)

    try:
        stats = await service.replay(progress=tick)
        carried = await service.carry_over(carry_over_from) if carry_over_from else {}
    finally:
        await service.engine.dispose()
    return {
        "records": stats.records,
        "applied": stats.applied,
        "duplicates": stats.duplicates,
        "skipped_poison": stats.skipped_poison,
        **{f"carried_{table}": n for table, n in carried.items()},
    }


@app.command("rebuild")
def rebuild(
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        help="Fresh database for the rebuilt projection "
        "(default: a new SQLite file in the data dir).",
    ),
    city: str | None = typer.Option(None, "--city", help="Also produce this city's report."),
    month: str | None = typer.Option(None, "--month", help="...for this month (YYYY-MM)."),
    format: ReportFormat = typer.Option(ReportFormat.json, "--format", "-f"),
    out: Path | None = typer.Option(None, "--out", "-o"),
    carry_over_from: str | None = typer.Option(
        None,
        "--carry-over-from",
        help="Reporting database to copy meter readings and published report versions from "
        "(they do not come from Kafka; default: the configured reporting database).",
    ),
) -> None:
    """Rebuild the projection from the Kafka topics alone (from the beginning), then
    optionally print a report from it: it must equal the live one."""
    settings = Settings()
    if settings.kafka_is_embedded:
        _fail(
            "rebuild reads the topics of a running Kafka cluster: "
            "set MICROHUB_KAFKA_BOOTSTRAP_SERVERS "
            "(the embedded cluster lives inside the process that started it)"
        )
    if (city is None) != (month is None):
        _fail("give both --city and --month, or neither")
    if database_url is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        database_url = f"sqlite:///{settings.data_dir / f'reporting-rebuild-{stamp}.db'}"
    try:
        source = carry_over_from or settings.database_url("reporting")
        with _progress() as progress:
            counts = asyncio.run(
                rebuild_projection(
                    settings,
                    database_url=database_url,
                    progress=progress,
                    carry_over_from=source if source != database_url else None,
                )
            )
        console.print(f"[green]rebuilt[/] {database_url}: {counts}")
        if city is not None and month is not None:
            body = asyncio.run(
                produce_report(
                    settings, city=city, month=month, fmt=format.value, database_url=database_url
                )
            )
            _write(body, out)
    except (ValueError, UnknownCity, FactorError, TimeoutError) as exc:
        _fail(str(exc))
