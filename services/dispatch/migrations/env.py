from services.dispatch.tables import metadata
from services.runtime.migrations import run_migrations

run_migrations(metadata)
