"""``microhub kafka``: a Kafka for development and tests on one machine, without Docker:
the embedded librdkafka mock, or Apache Kafka itself from its Maven Central jars."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from services.runtime.cli_common import console, load_settings, wait_for_signal

kafka_app = typer.Typer(help="Kafka for development and tests.", no_args_is_help=True)


@kafka_app.command("embedded")
def kafka_embedded(
    brokers: int = typer.Option(3, min=1, max=9),
) -> None:
    """Run the embedded (librdkafka mock) cluster in its own process, with the platform's
    topics: prints the bootstrap list on stdout, runs until SIGINT/SIGTERM. For several
    `microhub serve` processes on one machine without a real Kafka."""
    import sys

    from services.runtime.kafka import KafkaCluster

    settings = load_settings().model_copy(
        update={"kafka_bootstrap_servers": "embedded", "kafka_embedded_brokers": brokers}
    )

    async def main() -> None:
        cluster = KafkaCluster(settings)
        await cluster.start()
        typer.echo(",".join(cluster.bootstrap))
        sys.stdout.flush()
        try:
            await wait_for_signal()
        finally:
            cluster.stop()

    asyncio.run(main())


@kafka_app.command("apache")
def kafka_apache(
    nodes: int = typer.Option(1, min=1, max=9, help="1, or 3 for replication 3."),
    directory: Path | None = typer.Option(
        None, "--dir", help="Keep the brokers' logs and data here (default: a temporary folder)."
    ),
    resolve_only: bool = typer.Option(
        False, "--resolve-only", help="Only fetch the broker's jars from Maven Central."
    ),
) -> None:
    """Run Apache Kafka itself (KRaft) from its Maven Central jars, as child processes on
    free loopback ports: needs Java 17+ and Maven, no Docker. Prints the bootstrap list on
    stdout, applies the platform's topics, runs until SIGINT/SIGTERM."""
    import sys
    import time

    from services.runtime.apache_kafka import (
        ApacheKafka,
        ApacheKafkaError,
        ApacheKafkaUnavailable,
        resolve_classpath,
    )
    from services.runtime.kafka import ensure_topics

    def say(line: str) -> None:
        console.print(line)

    try:
        if resolve_only:
            began = time.monotonic()
            lib = resolve_classpath(say=say)
            console.print(f"broker classpath: {lib} ({time.monotonic() - began:.1f} s)")
            return
        cluster = ApacheKafka(nodes=nodes, directory=directory, say=say).start()
    except (ApacheKafkaUnavailable, ApacheKafkaError) as exc:
        console.print(f"[red]cannot start Apache Kafka:[/] {exc}")
        raise typer.Exit(2) from exc
    settings = load_settings().model_copy(
        update={"kafka_bootstrap_servers": ",".join(cluster.bootstrap_servers)}
    )

    async def main() -> None:
        await ensure_topics(cluster.bootstrap_servers, settings)
        typer.echo(",".join(cluster.bootstrap_servers))
        sys.stdout.flush()
        where = cluster.directory if directory else "a temporary folder"
        console.print(
            f"{cluster.describe()} on {', '.join(cluster.bootstrap_servers)} "
            f"(logs and data in {where}); Ctrl-C stops it"
        )
        await wait_for_signal()

    try:
        asyncio.run(main())
    finally:
        console.print("stopping Apache Kafka…")
        cluster.stop()
