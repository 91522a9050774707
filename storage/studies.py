"""Where Optuna keeps the studies of Bayesian runs. Each run is one study, named by its run id.

On PostgreSQL, in the application's database, through Optuna's RDBStorage: worker processes
on any machine that reaches the database share a study. RDBStorage is synchronous
SQLAlchemy, so it connects through psycopg (asyncpg is async only). Its tables live in a
schema of their own, `optuna`: Optuna keeps its own Alembic `alembic_version` table, which
would clash with ours. The schema is created on first use, outside our migrations, which
neither know nor touch it.

On SQLite, in Optuna's journal file (next to the backups by default), shared by every process
on the host through file locks: SQLite serves one host anyway, and the journal keeps Optuna's
writes out of the single-writer application database.

`study_storage` picks one and returns a picklable factory: the worker process calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateSchema

from storage.db import normalize_url

OPTUNA_SCHEMA = "optuna"
# asyncpg's connection arguments that psycopg (libpq) also takes, by libpq's name; the others
# (statement caches, command_timeout, ...) concern asyncpg only.
_LIBPQ_NAMES = {
    "ssl": "sslmode",
    "timeout": "connect_timeout",
    "host": "host",
    "target_session_attrs": "target_session_attrs",
    "passfile": "passfile",
    "krbsrvname": "krbsrvname",
    "gsslib": "gsslib",
}
_FIRST_USE_LOCK = sqlalchemy.text("SELECT pg_advisory_lock(hashtext(:key))")


def study_storage(database_url: str, journal: Path) -> Callable[[], Any]:
    """The factory of the study storage for this database (see the module docstring)."""
    url = normalize_url(database_url)
    if url.get_backend_name() == "postgresql":
        return PostgresStudies(psycopg_url(url))
    return JournalStudies(journal)


def psycopg_url(url: URL) -> str:
    """The same PostgreSQL database, through psycopg instead of asyncpg."""
    query = {_LIBPQ_NAMES[name]: value for name, value in url.query.items() if name in _LIBPQ_NAMES}
    psycopg = url.set(drivername="postgresql+psycopg", query=query)
    return psycopg.render_as_string(hide_password=False)


@dataclass(frozen=True)
class JournalStudies:
    """Picklable: the worker process opens the journal itself."""

    path: Path

    def __call__(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(self.path)))


@dataclass(frozen=True)
class PostgresStudies:
    """Picklable: the worker process connects itself."""

    url: str = field(repr=False)  # holds the password

    def __call__(self) -> RDBStorage:
        return _rdb_storage(self.url)


@cache
def _rdb_storage(url: str) -> RDBStorage:
    """One storage per database and process, which each run reuses as it would an engine:
    Optuna checks its tables once, and a worker keeps a connection between runs."""
    setup = sqlalchemy.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with setup.connect() as connection:
            # Serializes first uses: concurrent CREATE SCHEMA IF NOT EXISTS, or Optuna's
            # table creation, can fail on a unique violation. Released when this closes.
            connection.execute(_FIRST_USE_LOCK, {"key": f"paramadapt.{OPTUNA_SCHEMA}"})
            # Looked up first: CREATE SCHEMA needs the CREATE privilege even when it exists.
            if not sqlalchemy.inspect(connection).has_schema(OPTUNA_SCHEMA):
                connection.execute(CreateSchema(OPTUNA_SCHEMA, if_not_exists=True))
            return RDBStorage(
                url,
                engine_kwargs={
                    "connect_args": {"options": f"-c search_path={OPTUNA_SCHEMA}"},
                    "pool_pre_ping": True,  # a worker may sit idle for days between runs
                },
            )
    finally:
        setup.dispose()
