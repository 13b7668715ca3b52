"""The ``microhub`` command line."""

from __future__ import annotations

import asyncio
import logging
import signal
from enum import StrEnum

import typer
from rich.console import Console

from services.runtime.settings import Settings

app = typer.Typer(
    help="microhub: event-driven booking platform for urban micro-hubs.", no_args_is_help=True
)
console = Console(stderr=True)


class ServiceName(StrEnum):
    booking = "booking"


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


@app.command()
def serve(
    service: ServiceName = typer.Argument(..., help="Which service to run in this process."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run one service until SIGINT/SIGTERM (graceful stop: finish, flush, commit)."""
    _configure_logging(verbose)
    settings = Settings()

    async def main() -> None:
        from services.runtime.kafka import KafkaCluster

        cluster = await KafkaCluster(settings).start()
        if cluster.embedded is not None:
            console.print(f"[bold]embedded Kafka[/] at {','.join(cluster.bootstrap)}")
        from services.booking.service import BookingService

        instance = BookingService(settings, cluster.bootstrap)
        await instance.start()
        console.print(f"[green]{service.value} service running[/] (Ctrl-C to stop)")
        try:
            await _wait_for_signal()
        finally:
            await instance.stop()
            cluster.stop()

    asyncio.run(main())


def main() -> None:  # pragma: no cover
    app()
