"""Crash safety of learning sessions with the real `paramadapt run` process and SIGKILL.

A session lasts 5 minutes at least, so "past its end" is simulated by writing the stored
planned end into the past directly in the database, exactly what the process would find
after having been down beyond it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import update

from storage.db import create_engine
from storage.tables import LearningSessionRow
from tests.integration.test_cli import run
from tests.integration.test_learning_cli import shown_value
from tests.process import BotProcess, free_port

LISTENING = r"paramadapt listening on"
RELAXED, ORIGINAL = 0.5525, 0.65  # min_confidence during and outside the session


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "BACKUP_DIR": str(tmp_path / "backups")}


def start_bot(env: dict[str, str]) -> BotProcess:
    bot = BotProcess("run", env={**env, "PORT": str(free_port()), "LOG_LEVEL": "INFO"})
    bot.wait_for(LISTENING)
    return bot


def crash_during_a_session(env: dict[str, str]) -> None:
    bot = start_bot(env)
    try:
        assert run(env, "learning", "start", "30", "--reason", "explore") == 0
        bot.wait_for(r"learning session 1 runs until")  # the running bot armed its timer
    finally:
        bot.kill()  # SIGKILL: no clean shutdown


def pass_the_planned_end(database_url: str) -> None:
    async def rewrite() -> None:
        engine = create_engine(database_url)
        async with engine.begin() as connection:
            await connection.execute(
                update(LearningSessionRow).values(planned_end_at=LearningSessionRow.started_at)
            )
        await engine.dispose()

    asyncio.run(rewrite())


def test_a_session_overdue_after_a_crash_ends_at_restart_before_serving(
    env: dict[str, str], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    crash_during_a_session(env)
    pass_the_planned_end(database_url)
    assert shown_value(env, capsys, "min_confidence") == RELAXED  # nobody restored yet

    bot = start_bot(env)
    try:
        bot.wait_for(r"learning session 1 ended; original parameters restored")
        ended = next(i for i, line in enumerate(bot.lines) if "session 1 ended" in line)
        listening = next(i for i, line in enumerate(bot.lines) if "listening on" in line)
        assert ended < listening
        assert shown_value(env, capsys, "min_confidence") == ORIGINAL
        assert run(env, "learning", "history") == 0
        assert capsys.readouterr().out.startswith("1  COMPLETED")
    finally:
        bot.stop()


def test_a_session_still_running_after_a_crash_is_rearmed_and_ends_on_time(
    env: dict[str, str], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    crash_during_a_session(env)

    bot = start_bot(env)
    try:
        bot.wait_for(r"learning session 1 runs until")
        assert shown_value(env, capsys, "min_confidence") == RELAXED
        pass_the_planned_end(database_url)
        bot.wait_for(r"learning session 1 ended; original parameters restored")
        assert shown_value(env, capsys, "min_confidence") == ORIGINAL
        assert bot.stop() == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
