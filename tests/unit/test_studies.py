"""Which study storage a DATABASE_URL gets, and how its PostgreSQL URL reaches psycopg."""

from __future__ import annotations

import pickle
from pathlib import Path

from storage.studies import JournalStudies, PostgresStudies, study_storage

JOURNAL = Path("/var/lib/paramadapt/optuna-studies.log")


def test_postgresql_gets_the_same_database_through_psycopg_with_the_options_libpq_knows() -> None:
    studies = study_storage(
        "postgresql+asyncpg://bot:s3cret@db.internal:6432/paramadapt"
        "?ssl=verify-full&timeout=7&command_timeout=30&prepared_statement_cache_size=0",
        JOURNAL,
    )
    assert studies == PostgresStudies(
        "postgresql+psycopg://bot:s3cret@db.internal:6432/paramadapt"
        "?connect_timeout=7&sslmode=verify-full"
    )


def test_the_factory_crosses_to_a_worker_by_pickle_and_never_shows_the_password() -> None:
    studies = study_storage("postgres://bot:s3cret@db.internal/paramadapt", JOURNAL)
    assert pickle.loads(pickle.dumps(studies)) == studies
    assert "s3cret" not in repr(studies)


def test_sqlite_keeps_the_journal_file() -> None:
    assert study_storage("sqlite:///./var/paramadapt.db", JOURNAL) == JournalStudies(JOURNAL)
