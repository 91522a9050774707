"""Database engines: SQLite (default, WAL) through aiosqlite, PostgreSQL through asyncpg."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 10_000


class DatabaseUrlError(ValueError):
    pass


def normalize_url(raw: str) -> URL:
    """Accept the common spellings (postgres://, postgresql://, sqlite:///) and pick our drivers."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise DatabaseUrlError(f"not a database URL: {mask_url(raw)!r}") from None
    backend = url.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return url.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise DatabaseUrlError("SQLite needs a file path, e.g. sqlite+aiosqlite:///./var/x.db")
        return url.set(drivername="sqlite+aiosqlite")
    raise DatabaseUrlError(f"unsupported database '{backend}'; use sqlite or postgresql")


def mask_url(raw: str | URL) -> str:
    """The URL with any password hidden: safe to log."""
    try:
        return make_url(raw).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def create_engine(raw_url: str | URL, **kwargs: Any) -> AsyncEngine:
    url = normalize_url(
        str(raw_url) if isinstance(raw_url, str) else raw_url.render_as_string(False)
    )
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    # No pre-ping (it costs a round trip per checkout): a connection found dead raises a
    # disconnect error, which invalidates the pool, so the next request reconnects.
    return create_async_engine(url, **kwargs)


def _sqlite_engine(url: URL, **kwargs: Any) -> AsyncEngine:
    assert url.database is not None
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # SQLite has one writer at a time. One connection per process makes in-process callers
    # queue fairly in asyncio, instead of sleeping in SQLite's busy handler (which backs off
    # up to 100 ms a try); other processes (the CLI) still wait through the busy timeout.
    kwargs.setdefault("pool_size", 1)
    kwargs.setdefault("max_overflow", 0)
    kwargs.setdefault("pool_timeout", 30)
    engine = create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control so every transaction can start IMMEDIATE: in WAL
        # mode a deferred reader that later writes fails at once with SQLITE_BUSY instead
        # of waiting for the busy timeout.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL spell it alike)."""
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)
