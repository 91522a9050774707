"""Where Bayesian runs keep their Optuna studies: on PostgreSQL, in the application's database,
in a schema of Optuna's own (shared by every process that reaches it, beside our migrations);
on SQLite, in the journal file.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from bot.config import Settings
from bot.optimizer_config import OptimizerSettings
from bot.runtime import Runtime
from core import optimization
from core.optimization_model import OptimizationRun
from core.optimizer import Method
from core.ports import Deps
from storage import migrate
from storage.studies import OPTUNA_SCHEMA, study_storage
from storage.tables import Base
from tests.clock import MovableClock
from tests.integration.test_optimization import ADMIN, DATA, HIGH, NOW, POLICY

on_postgres = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
on_sqlite = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
TRIALS = 16
BAYES = dataclasses.replace(
    POLICY,
    cycle=dataclasses.replace(
        POLICY.cycle, method=Method.BAYES, bayes_trials=TRIALS, bayes_batch=8
    ),
)
X = optuna.distributions.IntDistribution(-4, 4)


@pytest.fixture
def settings(database_url: str, backup_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        backup_dir=backup_dir,
        market_data_dir=DATA,
        optimizer=OptimizerSettings(BAYES, workers=1),
    )


@pytest.fixture
def studies(settings: Settings) -> Callable[[], Any]:
    """A storage factory as the runtime builds it, for this test's database."""
    return study_storage(
        settings.database_url, settings.optimizer.journal_path(settings.backup_dir)
    )


async def bayesian_run(runtime: Runtime) -> OptimizationRun:
    deps: Deps = dataclasses.replace(runtime.deps, clock=MovableClock(NOW))
    run = (await optimization.optimize(deps, ADMIN, HIGH)).run
    assert run is not None
    return run


def add_trials(studies: Callable[[], Any], name: str, count: int) -> None:
    """In a process of its own: join the study by name and add trials to it."""
    study = optuna.load_study(study_name=name, storage=studies())
    for _ in range(count):
        trial = study.ask({"x": X})
        study.tell(trial, float(trial.params["x"]))


@on_postgres
async def test_a_bayesian_run_keeps_its_study_in_the_optuna_schema(runtime: Runtime) -> None:
    run = await bayesian_run(runtime)
    async with runtime.engine.connect() as connection:
        trials = await connection.scalar(
            text(
                f"SELECT count(*) FROM {OPTUNA_SCHEMA}.trials"
                f" JOIN {OPTUNA_SCHEMA}.studies USING (study_id) WHERE study_name = :run"
            ),
            {"run": run.run_id},
        )
        where = await connection.execute(
            text(
                "SELECT table_schema, table_name FROM information_schema.tables"
                " WHERE table_name IN ('studies', 'alembic_version')"
            )
        )
    assert trials == TRIALS + 1  # the baseline, told first, and every trial asked
    assert {tuple(row) for row in where} == {
        (OPTUNA_SCHEMA, "studies"),
        (OPTUNA_SCHEMA, "alembic_version"),  # Optuna's own, apart from ours
        ("public", "alembic_version"),
    }


@on_sqlite
async def test_on_sqlite_a_bayesian_run_keeps_its_study_in_the_journal_file(
    runtime: Runtime, settings: Settings
) -> None:
    run = await bayesian_run(runtime)
    journal = settings.optimizer.journal_path(settings.backup_dir)
    assert journal.exists()
    study = optuna.load_study(
        study_name=run.run_id, storage=study_storage(settings.database_url, journal)()
    )
    assert len(study.trials) == TRIALS + 1


@on_postgres
def test_processes_holding_the_same_factory_add_trials_to_one_study(
    studies: Callable[[], Any],
) -> None:
    study = optuna.create_study(study_name="shared", storage=studies(), direction="maximize")
    study.add_trial(optuna.trial.create_trial(params={"x": 0}, distributions={"x": X}, value=0.0))
    spawn = multiprocessing.get_context("spawn")  # the factory crosses by pickle, as to a worker
    workers = [spawn.Process(target=add_trials, args=(studies, "shared", 10)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    trials = optuna.load_study(study_name="shared", storage=studies()).trials
    assert sorted(t.number for t in trials) == list(range(21))
    assert {t.state for t in trials} == {optuna.trial.TrialState.COMPLETE}


@on_postgres
async def test_our_migrations_go_down_and_up_beside_the_optuna_schema(
    runtime: Runtime, studies: Callable[[], Any]
) -> None:
    optuna.create_study(study_name="kept", storage=studies())

    def downgrade(connection: Connection) -> None:
        config = migrate.alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    async with runtime.engine.begin() as connection:
        await connection.run_sync(downgrade)
    await migrate.upgrade(runtime.engine)

    async with runtime.engine.connect() as connection:
        differences = await connection.run_sync(
            lambda c: list(compare_metadata(MigrationContext.configure(c), Base.metadata))
        )
    assert differences == []
    assert optuna.load_study(study_name="kept", storage=studies()).study_name == "kept"
