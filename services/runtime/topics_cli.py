"""``microhub topics``: topics as code (infra/topics.yaml) applied through the Kafka admin
API, and the Strimzi resources generated from it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from services.runtime.cli_common import console, load_settings

topics_app = typer.Typer(help="Topics as code (infra/topics.yaml).", no_args_is_help=True)


@topics_app.command("apply")
def topics_apply(
    file: Path | None = typer.Option(
        None, "--file", "-f", help="Topics file (default: MICROHUB_TOPICS_FILE, infra/topics.yaml)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would change."),
    fail_on_drift: bool = typer.Option(
        False, "--fail-on-drift", help="Exit 1 when a topic's configs differ from the file."
    ),
) -> None:
    """Create missing topics, grow partitions, report drift; never delete or shrink."""
    from services.runtime.carriers import CarriersError, file_topic_specs
    from services.runtime.topic_admin import apply_topics
    from services.runtime.topics import TopicsError, load_topics, topics_file

    settings = load_settings()
    if settings.kafka_is_embedded:
        console.print(
            "[red]MICROHUB_KAFKA_BOOTSTRAP_SERVERS is 'embedded'[/]: point it at a cluster "
            "(the embedded one applies the file itself on start)"
        )
        raise typer.Exit(2)
    try:
        specs = load_topics(file or topics_file(settings))
        if file is None:  # and the topics of the carrier registry file's carriers
            specs += file_topic_specs(settings)
        plan = asyncio.run(
            apply_topics(settings, settings.bootstrap_list(), specs=specs, dry_run=dry_run)
        )
    except (TopicsError, CarriersError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    out = Console(width=160)
    table = Table(title="topics" + (" (dry run)" if dry_run else ""))
    for column in ("topic", "change", "detail", "done"):
        table.add_column(column)
    notes: dict[str, set[str]] = {"capped": set(), "configs-unknown": set()}
    for change in plan.changes:
        if change.kind in notes:
            notes[change.kind].add(change.detail.split(":")[0])
            continue
        table.add_row(change.topic, change.kind, change.detail, "yes" if change.done else "no")
    if table.rows:
        out.print(table)
    for kind, details in notes.items():
        for detail in sorted(details):
            out.print(f"[yellow]note[/] ({kind}, every topic concerned): {detail}")
    typer.echo(
        f"{len(plan.created)} created, {len(plan.grown)} grown, {len(plan.drift)} drifted, "
        f"{plan.unchanged} unchanged"
    )
    if (plan.failed and not dry_run) or (fail_on_drift and plan.drift):
        raise typer.Exit(1)


@topics_app.command("strimzi")
def topics_strimzi(
    cluster: str = typer.Option("microhub", help="The Strimzi Kafka cluster's name."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here, not stdout."),
) -> None:
    """Strimzi KafkaTopic resources generated from the topics file."""
    from services.runtime.topics import load_topics, strimzi_manifest, topics_file

    text = strimzi_manifest(load_topics(topics_file(load_settings())), cluster=cluster)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        console.print(f"wrote {output}")
