"""What every ``microhub`` command shares: the console, logging, settings with readable
errors, and waiting for SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

import typer
from pydantic import ValidationError
from rich.console import Console

from services.runtime.settings import Settings

console = Console(stderr=True)


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiokafka logs every reconnect attempt at ERROR; our own retry logs say enough
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL if not verbose else logging.INFO)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        console.print("[red]invalid configuration[/] (MICROHUB_… environment variables):")
        for error in exc.errors():
            name = "MICROHUB_" + "_".join(str(p) for p in error["loc"]).upper()
            console.print(f"  {name}: {error['msg']}")
        raise typer.Exit(2) from exc


async def wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
