"""What the database holds, to show that a refused input changed nothing."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# Everything a person or the engine can change; the audit log is left out on purpose:
# refused attempts are recorded there.
DOMAIN_TABLES = (
    "blocked_trades",
    "trades",
    "candles",
    "overrides",
    "config_versions",
    "parameter_changes",
    "config_backups",
    "learning_sessions",
    "optimization_runs",
    "outbox",
)


async def row_counts(
    engine: AsyncEngine, tables: tuple[str, ...] = DOMAIN_TABLES
) -> dict[str, int]:
    async with engine.connect() as connection:
        return {
            table: (await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in tables
        }
