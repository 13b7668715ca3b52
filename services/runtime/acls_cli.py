"""``microhub acls``: ACLs and SCRAM users as code (``infra/acls.yaml``).

Its own module, mounted by ``services/runtime/cli.py``: the ACL commands change with the
ACL file, not with the rest of the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

acls_app = typer.Typer(help="ACLs and SCRAM users as code (infra/acls.yaml).", no_args_is_help=True)


@acls_app.command("apply")
def acls_apply(
    file: Path | None = typer.Option(
        None, "--file", "-f", help="ACL file (default: the repository's infra/acls.yaml)."
    ),
    passwords: Path | None = typer.Option(
        None,
        "--passwords",
        help="YAML mapping principal -> password: creates those SCRAM users that do not "
        "exist yet (an existing user's password is left alone).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would change."),
    delete_extra: bool = typer.Option(
        False,
        "--delete-extra",
        help="Delete the ACLs of the file's users and namespace that the file does not list "
        "(default: only report them).",
    ),
    scram_mechanism: str = typer.Option(
        "SCRAM-SHA-512", "--scram-mechanism", help="For new users: SCRAM-SHA-512 or SCRAM-SHA-256."
    ),
) -> None:
    """Create missing SCRAM users and ACLs (with MICROHUB_KAFKA_TOPIC_PREFIX), report ACLs
    the file does not list. Runs as a super user (MICROHUB_KAFKA_SASL_USERNAME/_PASSWORD)."""
    from services.runtime.acl_admin import apply_acls
    from services.runtime.acls import AclsError, load_acls, load_passwords
    from services.runtime.cli_common import load_settings

    settings = load_settings()
    if settings.kafka_is_embedded:
        _fail(
            "MICROHUB_KAFKA_BOOTSTRAP_SERVERS is 'embedded': the embedded mock cluster has "
            "no ACLs; point it at a real cluster",
            code=2,
        )
    try:
        principals = load_acls(file)
        secrets = load_passwords(passwords, principals) if passwords else None
        plan = apply_acls(
            settings,
            settings.bootstrap_list(),
            principals=principals,
            passwords=secrets,
            dry_run=dry_run,
            delete_extra=delete_extra,
            mechanism=scram_mechanism,
        )
    except (AclsError, ValueError) as exc:
        _fail(str(exc))
    out = Console(width=160)
    table = Table(title="ACLs and users" + (" (dry run)" if dry_run else ""))
    for column in ("principal", "change", "what", "done"):
        table.add_column(column)
    for user in plan.users:
        if user.state != "present":
            what = "SCRAM user" if user.state == "create" else "no such user, no password given"
            done = "yes" if user.done else ("no" if user.state == "create" else "-")
            table.add_row(user.user, f"user {user.state}", what, done)
    for grant in plan.missing:
        table.add_row(
            grant.principal, "create", str(grant).split(": ", 1)[1], _done(grant, plan.created)
        )
    for grant in plan.extra:
        change = "delete" if delete_extra else "extra (kept)"
        table.add_row(
            grant.principal, change, str(grant).split(": ", 1)[1], _done(grant, plan.deleted)
        )
    if table.rows:
        out.print(table)
    if dry_run:
        users = sum(1 for u in plan.users if u.state == "create")
        typer.echo(
            f"dry run: {users} users and {len(plan.missing)} ACLs to create, "
            f"{len(plan.present)} ACLs present, {len(plan.extra)} extra"
        )
        return
    users = sum(1 for u in plan.users if u.done)
    extra = (
        f"{len(plan.deleted)} extra deleted" if delete_extra else f"{len(plan.extra)} extra kept"
    )
    typer.echo(
        f"{users} users created, {len(plan.created)} ACLs created, "
        f"{len(plan.present)} present, {extra}"
    )


def _done(grant: object, done: list) -> str:
    return "yes" if grant in done else "no"


def _fail(message: str, *, code: int = 1) -> NoReturn:
    # typer.secho, not rich: one line however narrow the terminal (or a log) is
    typer.secho(message, err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


@acls_app.command("table")
def acls_table(
    file: Path | None = typer.Option(None, "--file", "-f", help="ACL file."),
) -> None:
    """Print the file as the Markdown table docs/deploy.md shows (a test compares them)."""
    from services.runtime.acls import AclsError, load_acls, markdown_table

    try:
        typer.echo(markdown_table(load_acls(file)), nl=False)
    except AclsError as exc:
        _fail(str(exc))
