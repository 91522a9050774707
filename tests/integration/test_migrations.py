"""Alembic migrations create exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bot.runtime import Runtime
from storage import migrate
from storage.tables import Base


async def test_the_migrated_schema_matches_the_models(runtime: Runtime) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with runtime.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_upgrading_an_up_to_date_database_is_a_no_op(runtime: Runtime) -> None:
    await migrate.upgrade(runtime.engine)
    async with runtime.engine.connect() as connection:
        revision = await connection.run_sync(
            lambda c: MigrationContext.configure(c).get_current_revision()
        )
    assert revision == ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
