"""Alembic, one history per service, each with its own version table.

Migrations run programmatically on start (``microhub migrate`` runs them alone): the
async engine lends Alembic a sync connection, so no second (sync) driver is needed.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine


def version_table(service: str) -> str:
    return f"alembic_version_{service}"


def alembic_config(service: str, location: Path) -> Config:
    """``location``: the service's Alembic scripts (its ``ServiceSpec.migrations``)."""
    config = Config()
    config.set_main_option("script_location", str(location))
    config.set_main_option("version_table", version_table(service))
    config.attributes["service"] = service
    return config


async def upgrade(
    engine: AsyncEngine, service: str, location: Path, revision: str = "head"
) -> None:
    config = alembic_config(service, location)

    def run(sync_connection) -> None:
        config.attributes["connection"] = sync_connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together on a fresh database would race to create the
            # version table ("duplicate key … pg_type"): one migrates, the others wait
            # for its commit and then find nothing to do. (SQLite's write lock already
            # serialises them.)
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"),
                {"key": zlib.crc32(f"microhub-migrations-{service}".encode())},
            )
        await connection.run_sync(run)


def run_migrations(target_metadata: MetaData) -> None:
    """Body of every service's ``env.py`` (online mode only: we always have a connection)."""
    from alembic import context

    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "microhub migrations run through `microhub migrate` (or on service start), "
            "which hands Alembic a connection"
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=config.get_main_option("version_table"),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
