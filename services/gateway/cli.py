"""``microhub carriers``: the carrier registry on a Kafka cluster (users, topics, ACLs) and
as Strimzi resources.

``carriers apply`` works like ``topics apply`` and ``acls apply`` together, for carriers:
it creates what is missing, reports what the registry no longer names, and deletes only
with ``--delete-extra`` (ACLs and SCRAM users; a carrier's topics, which hold its data,
never). Running it twice changes nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

from services.runtime.carriers import Carrier

carriers_app = typer.Typer(
    help="Carriers as Kafka principals: users, topics, ACLs (the carrier registry).",
    no_args_is_help=True,
)


def _fail(message: str, *, code: int = 1) -> NoReturn:
    typer.secho(message, err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def registry(file: Path | None, *, file_only: bool) -> list[Carrier]:
    """The registry: the file (MICROHUB_CARRIERS_FILE or ``file``), and unless
    ``file_only`` the gateway's database after the file was loaded into it, as `serve
    gateway` does on start (so carriers the admin API added are there too)."""
    from services.runtime.carriers import carriers_file, load_carriers
    from services.runtime.cli_common import load_settings

    settings = load_settings()
    path = file or carriers_file(settings)
    carriers = load_carriers(path)
    if file_only:
        return carriers

    async def from_database() -> list[Carrier]:
        from services.gateway.registry import all_carriers, upsert_carriers
        from services.gateway.service import SPEC
        from services.runtime.db import make_engine, make_sessionmaker, writing

        engine = make_engine(settings.database_url("gateway"))
        try:
            await SPEC.migrate(engine)
            sessions = make_sessionmaker(engine)
            async with writing(engine), sessions() as session, session.begin():
                await upsert_carriers(session, carriers, origin="file")
            async with sessions() as session:
                return await all_carriers(session)
        finally:
            await engine.dispose()

    return asyncio.run(from_database())


@carriers_app.command("apply")
def carriers_apply(
    file: Path | None = typer.Option(
        None, "--file", "-f", help="Carrier registry file (default: MICROHUB_CARRIERS_FILE)."
    ),
    file_only: bool = typer.Option(
        False,
        "--file-only",
        help="Only the file's carriers (default: also those in the gateway's database, "
        "which the admin API manages).",
    ),
    passwords: Path | None = typer.Option(
        None,
        "--passwords",
        help="YAML mapping carrier id -> password: creates those carriers' SCRAM users that "
        "do not exist yet (an existing user's password is left alone).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would change."),
    delete_extra: bool = typer.Option(
        False,
        "--delete-extra",
        help="Delete the ACLs and SCRAM users of carriers the registry no longer names, or "
        "names inactive (default: only report them). Topics are never deleted.",
    ),
    scram_mechanism: str = typer.Option("SCRAM-SHA-512", "--scram-mechanism"),
) -> None:
    """Each active carrier: its SCRAM user, its topics and its ACLs, with
    MICROHUB_KAFKA_TOPIC_PREFIX. Runs as a super user (MICROHUB_KAFKA_SASL_USERNAME)."""
    import yaml

    from services.runtime.acl_admin import apply_acls
    from services.runtime.acls import AclsError
    from services.runtime.carriers import (
        PRINCIPAL_PREFIX,
        CarriersError,
        is_carrier_grant,
        principals,
        topic_specs,
    )
    from services.runtime.cli_common import load_settings
    from services.runtime.topic_admin import apply_topics
    from services.runtime.topics import TopicsError

    settings = load_settings()
    if settings.kafka_is_embedded:
        _fail(
            "MICROHUB_KAFKA_BOOTSTRAP_SERVERS is 'embedded': the embedded mock cluster has no "
            "users or ACLs (it creates the carriers file's topics itself)",
            code=2,
        )
    prefix = settings.kafka_topic_prefix
    try:
        carriers = registry(file, file_only=file_only)
        active = [c.id for c in carriers if c.active]
        secrets = None
        if passwords is not None:
            raw = yaml.safe_load(passwords.read_text())
            if not isinstance(raw, dict) or not all(isinstance(v, str) and v for v in raw.values()):
                raise CarriersError(f"{passwords}: expected a mapping carrier id -> password")
            unknown = sorted(set(raw) - set(active))
            if unknown:
                raise CarriersError(f"{passwords}: no active carrier {', '.join(unknown)}")
            secrets = {PRINCIPAL_PREFIX + k: v for k, v in raw.items()}
        topics = asyncio.run(
            apply_topics(
                settings,
                settings.bootstrap_list(),
                specs=topic_specs(settings, active),
                dry_run=dry_run,
            )
        )
        acls = apply_acls(
            settings,
            settings.bootstrap_list(),
            principals=principals(carriers),
            passwords=secrets,
            dry_run=dry_run,
            delete_extra=delete_extra,
            delete_users=delete_extra,
            mechanism=scram_mechanism,
            scope=lambda grant: is_carrier_grant(grant, prefix),
        )
    except (AclsError, CarriersError, TopicsError, OSError, ValueError) as exc:
        _fail(str(exc))
    out = Console(width=160)
    table = Table(title="carriers" + (" (dry run)" if dry_run else ""))
    for column in ("carrier / principal", "change", "what", "done"):
        table.add_column(column)
    for change in topics.changes:
        if change.kind in ("create", "grow", "drift", "shrink-refused"):
            table.add_row(change.topic, change.kind, change.detail, "yes" if change.done else "-")
    for user in acls.users:
        if user.state != "present":
            what = "SCRAM user" if user.state == "create" else "no such user, no password given"
            table.add_row(user.user, f"user {user.state}", what, "yes" if user.done else "-")
    for grant in acls.missing:
        done = "yes" if grant in acls.created else "-"
        table.add_row(grant.principal, "create", str(grant).split(": ", 1)[1], done)
    for grant in acls.extra:
        done = "yes" if grant in acls.deleted else "-"
        verb = "delete" if delete_extra else "extra (kept)"
        table.add_row(grant.principal, verb, str(grant).split(": ", 1)[1], done)
    if table.rows:
        out.print(table)
    users = sum(1 for u in acls.users if u.done)
    typer.echo(
        f"{len(active)} active carriers: {len(topics.created)} topics created, {users} users "
        f"created, {len(acls.created)} ACLs created, {len(acls.present)} present, "
        + (
            f"{len(acls.deleted)} extra deleted ({len(acls.deleted_users)} users)"
            if delete_extra
            else f"{len(acls.extra)} extra kept"
        )
        + (" (dry run)" if dry_run else "")
    )
    if topics.failed and not dry_run:
        raise typer.Exit(1)


@carriers_app.command("strimzi")
def carriers_strimzi(
    file: Path | None = typer.Option(None, "--file", "-f", help="Carrier registry file."),
    cluster: str = typer.Option("microhub", help="The Strimzi Kafka cluster's name."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here, not stdout."),
) -> None:
    """Strimzi KafkaUser (SCRAM-SHA-512, the carrier's ACLs) and KafkaTopic resources of
    the registry file's active carriers."""
    from services.runtime.carriers import carriers_file, load_carriers, strimzi_manifest
    from services.runtime.cli_common import console, load_settings

    settings = load_settings()
    carriers = load_carriers(file or carriers_file(settings))
    text = strimzi_manifest(settings, carriers, cluster=cluster)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        console.print(f"wrote {output}")


@carriers_app.command("list")
def carriers_list(
    file: Path | None = typer.Option(None, "--file", "-f", help="Carrier registry file."),
    file_only: bool = typer.Option(False, "--file-only", help="Only the file's carriers."),
) -> None:
    """The registry: each carrier's topics, SASL user and consumer group prefix."""
    from services.gateway.registry import describe
    from services.runtime.carriers import CarriersError
    from services.runtime.cli_common import load_settings

    prefix = load_settings().kafka_topic_prefix
    try:
        carriers = registry(file, file_only=file_only)
    except CarriersError as exc:
        _fail(str(exc))
    table = Table(title="carriers")
    for column in ("id", "name", "active", "commands topic", "events topic", "SASL user"):
        table.add_column(column)
    for carrier in carriers:
        d = describe(carrier, prefix)
        table.add_row(
            d["id"],
            d["name"],
            "yes" if d["active"] else "no",
            d["commands_topic"],
            d["events_topic"],
            d["sasl_user"],
        )
    Console(width=200).print(table)
