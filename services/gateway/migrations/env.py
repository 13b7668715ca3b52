from services.gateway.store import metadata
from services.runtime.migrations import run_migrations

run_migrations(metadata)
