"""The ``microhub`` command line."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import date
from pathlib import Path

import typer

from services.app.purge_cli import purge
from services.dispatch.cli import queue
from services.gateway.cli import carriers_app
from services.reporting import cli as reporting_cli
from services.runtime import gc_tuning
from services.runtime.acls_cli import acls_app
from services.runtime.cli_common import (
    configure_logging,
    console,
    default_url,
    load_settings,
    wait_for_signal,
)
from services.runtime.kafka_cli import kafka_app
from services.runtime.topics_cli import topics_app

app = typer.Typer(
    help="microhub: event-driven booking platform for urban micro-hubs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
contracts_app = typer.Typer(
    help="Message contracts: JSON Schema and AsyncAPI files.", no_args_is_help=True
)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")
app.add_typer(keys_app, name="keys")
app.add_typer(topics_app, name="topics")
app.add_typer(kafka_app, name="kafka")
app.add_typer(acls_app, name="acls")
app.add_typer(carriers_app, name="carriers")


# besides the registry's services (importing those costs a second: only `serve` does)
PROCESS_TARGETS = ("api", "all")


def serve_targets() -> list[str]:
    from services.app.registry import service_names

    return [*service_names(), *PROCESS_TARGETS]


@app.command()
def serve(
    target: str = typer.Argument(
        ...,
        help="A service: booking, dispatch or reporting (consumes; answers only /healthz "
        "and /readyz on its health port), 'api' (the public HTTP API of every service, no "
        "consumers), or 'all' (everything in one process, with the public API).",
    ),
    health_port: int | None = typer.Option(
        None,
        "--health-port",
        min=0,
        max=65535,
        help="Health port of a service (default: MICROHUB_HEALTH_PORT, else booking 8081, "
        "dispatch 8082, reporting 8083); 0 picks a free one. Not for 'api' and 'all', which "
        "answer /healthz and /readyz on MICROHUB_HTTP_PORT.",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Log warnings and errors only."),
) -> None:
    """Run one service (or all) until SIGINT/SIGTERM; the stop is graceful: stop
    consuming, finish the record in flight, flush the outbox, commit, exit 0."""
    settings = load_settings()
    configure_logging(verbose, settings)
    if quiet and not verbose:
        logging.getLogger().setLevel(logging.WARNING)
    from services.app.platform import Platform, PortUnavailable, health_port_for
    from services.app.registry import service_names
    from services.runtime.auth import KeyFileError

    if target not in serve_targets():
        console.print(
            f"[red]nothing to serve called {target!r}[/]: choose from {', '.join(serve_targets())}"
        )
        raise typer.Exit(2)
    public = target in PROCESS_TARGETS
    if public and health_port is not None:
        console.print(
            f"[red]--health-port is for a single service[/]: '{target}' answers "
            "/healthz and /readyz on MICROHUB_HTTP_PORT with the API"
        )
        raise typer.Exit(2)
    names = service_names() if public else [target]
    if health_port is None and not public:
        health_port = health_port_for(settings, target)

    async def main() -> int:
        platform = Platform(
            settings,
            services=names,
            consuming=target != "api",
            http=public,
            health_port=None if public else health_port,
        )
        try:
            try:
                await platform.start()
            except (PortUnavailable, KeyFileError) as exc:
                console.print(f"[red]{exc}[/]")
                return 2
            assert platform.cluster is not None  # start() starts one when it was given none
            # what starting made lives as long as the process: out of the collector's way
            gc_tuning.settle(settings.gc_gen0_threshold)
            kafka = ",".join(platform.cluster.bootstrap)
            kind = "embedded Kafka" if platform.cluster.embedded else "Kafka"
            if not settings.kafka_security_protocol.startswith("SASL"):
                kind += " (no authentication, no ACLs: any client reads and writes any topic)"
            if settings.demo_mode and public:
                console.print(
                    "[bold yellow]DEMO MODE[/]: the API accepts the public demo keys "
                    "(demo-admin included); never expose it"
                )
            served = (
                f"HTTP at {platform.base_url}"
                if public
                else f"health at {platform.health_url} (/healthz, /readyz)"
            )
            console.print(f"[green]{target}[/] running: {kind} at {kafka}, {served}")
            await wait_for_signal()
        finally:
            console.print("stopping…")
            await platform.stop()
        return 0

    code = asyncio.run(main())
    if code:
        raise typer.Exit(code)


@app.command()
def migrate(
    service: list[str] = typer.Argument(None, help="Services to migrate (default: all)."),
) -> None:
    """Apply the database migrations of each service to its own database."""
    settings = load_settings()
    from services.app.registry import service_class, service_names
    from services.runtime.db import make_engine

    names = service or service_names()
    unknown = sorted(set(names) - set(service_names()))
    if unknown:
        console.print(f"[red]unknown service(s): {', '.join(unknown)}[/]")
        raise typer.Exit(2)

    async def main() -> None:
        for name in names:
            engine = make_engine(settings.database_url(name))
            try:
                await service_class(name).spec.migrate(engine)
            finally:
                await engine.dispose()
            console.print(
                f"[green]{name}[/] migrated ({engine.url.render_as_string(hide_password=True)})"
            )

    asyncio.run(main())


@contracts_app.command("export")
def contracts_export() -> None:
    """Regenerate contracts/schemas/*.json, contracts/asyncapi.json and the other files
    derived from the services' declarations (infra/k8s/scaledobjects.yaml)."""
    from services.app.generated import write_generated

    written = write_generated()
    for path in written:
        console.print(f"wrote {path}")
    console.print(f"{len(written)} file(s) changed")


@contracts_app.command("check")
def contracts_check() -> None:
    """Fail when a released contract was changed incompatibly."""
    from contracts.export import compatibility_report

    report = compatibility_report()
    for name, problems in report.items():
        console.print(f"[red]{name}[/]: {'; '.join(problems)}")
    if report:
        raise typer.Exit(1)
    console.print("[green]all released contracts are intact[/]")


@keys_app.command("hash")
def keys_hash(
    key: str = typer.Argument(..., help="The API key to store only as a digest."),
) -> None:
    """Print the sha256 entry for an API keys file (so the file holds no secret)."""
    if len(key) < 16:
        console.print("[yellow]warning: keys shorter than 16 characters are easy to guess[/]")
    typer.echo(f"sha256: {hashlib.sha256(key.encode()).hexdigest()}")


def _start_date(value: str | None) -> date:
    from services.simulation.driver import DEFAULT_START

    if value is None:
        return DEFAULT_START
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@app.command()
def demo(
    days: int | None = typer.Option(
        None, min=1, max=62, help="Simulated days (default: to the end of --start's month)."
    ),
    seed: int = typer.Option(7, help="Same seed, same results."),
    start: str | None = typer.Option(
        None,
        "--start",
        help="First simulated day, YYYY-MM-DD (default 2026-09-01: a complete past month, "
        "so that a run gives the same results on any day).",
    ),
    serve: bool = typer.Option(
        True,
        "--serve/--no-serve",
        help="After the run, keep the hubs moving (live dashboards) and serve until Ctrl-C.",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the whole platform on this machine (embedded Kafka, SQLite) and drive it with
    the city simulation; then keep the hubs moving and serve the pages until Ctrl-C."""
    settings = load_settings()
    configure_logging(verbose, settings)
    if not verbose:
        logging.getLogger().setLevel(logging.WARNING)
    from services.app.demo import run_demo

    code = asyncio.run(
        run_demo(
            settings,
            days=days,
            seed=seed,
            serve=serve,
            console=console,
            start=_start_date(start),
        )
    )
    raise typer.Exit(code)


@app.command()
def simulate(
    bootstrap_servers: str = typer.Option(
        None,
        "--bootstrap-servers",
        help="Kafka of the running deployment (default: MICROHUB_KAFKA_BOOTSTRAP_SERVERS).",
    ),
    api_url: str = typer.Option(
        None,
        help="Where the reporting service's HTTP API answers (default: "
        "http://MICROHUB_HTTP_HOST:MICROHUB_HTTP_PORT).",
    ),
    api_key: str = typer.Option("demo-admin", help="A key that may read every city's report."),
    days: int = typer.Option(3, min=1, max=62, help="Simulated days."),
    seed: int = typer.Option(7, help="Same seed, same results."),
    start: str | None = typer.Option(
        None, "--start", help="First simulated day, YYYY-MM-DD (default: the demo's, 2026-09-01)."
    ),
    pace: float = typer.Option(
        0.0, min=0, help="Wall seconds per simulated 2-hour tick (0: as fast as it settles)."
    ),
    report: bool = typer.Option(
        True, "--report/--no-report", help="Fetch the reports and write the summary at the end."
    ),
    out: Path = typer.Option(Path(".microhub/simulate/reports"), help="Reports go here."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Drive an already running deployment (booking, dispatch, reporting) over Kafka with
    the city simulation; the services must run with the demo's timers off (see
    services/app/demo.py: DEMO_OVERRIDES)."""
    settings = load_settings()
    configure_logging(verbose, settings)
    if not verbose:
        logging.getLogger().setLevel(logging.WARNING)
    bootstrap = bootstrap_servers or settings.kafka_bootstrap_servers
    if bootstrap == "embedded":
        console.print("[red]--bootstrap-servers (or MICROHUB_KAFKA_BOOTSTRAP_SERVERS) is needed[/]")
        raise typer.Exit(2)
    from services.app.simulate import simulate_and_report

    servers = [s.strip() for s in bootstrap.split(",") if s.strip()]
    asyncio.run(
        simulate_and_report(
            settings,
            servers,
            api_url=api_url or default_url(settings),
            api_key=api_key,
            days=days,
            seed=seed,
            out_dir=out,
            console=console,
            start=_start_date(start),
            pace=pace,
            report=report,
        )
    )


app.command("queue", help="Follow a hub's dispatch queue live in the terminal.")(queue)
app.command("purge", help="Anonymise personal data older than the retention, now.")(purge)
app.command("report", help="Write a city's monthly emissions report.")(reporting_cli.report)
app.add_typer(reporting_cli.app, name="reporting")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover - `python -m services.app.cli`
    main()
