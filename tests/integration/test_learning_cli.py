"""`paramadapt learning ...` as an operator meets it, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_cli import run


@pytest.fixture
def env(database_url: str, backup_dir: Path) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "BACKUP_DIR": str(backup_dir)}


def shown_value(env: dict[str, str], capsys: pytest.CaptureFixture[str], name: str) -> object:
    capsys.readouterr()
    assert run(env, "params", "show", name, "--json") == 0
    return json.loads(capsys.readouterr().out)["parameters"][name]["value"]


def test_start_prints_each_relaxed_value_and_applies_it(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        env, "learning", "start", "30", "--reason", "explore", "--relax", "min_confidence=20"
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith("learning session 1 started by cli:")
    assert out[0].endswith("(30 min): explore")
    assert "  global min_confidence: 0.65 → 0.52" in out
    assert "  global max_position_size: 5 → 6" in out
    assert shown_value(env, capsys, "min_confidence") == 0.52


def test_status_shows_time_left_and_the_trades_so_far(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run(env, "learning", "start", "30", "--reason", "explore")
    capsys.readouterr()
    assert run(env, "learning", "status") == 0
    out = capsys.readouterr().out
    assert "30 min left" in out
    assert "so far: 0 trades, PnL +0.00, win rate n/a (no trades)" in out


def test_stop_restores_and_prints_the_analysis(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run(env, "learning", "start", "30", "--reason", "explore")
    capsys.readouterr()
    assert run(env, "learning", "stop", "--reason", "news ahead") == 0
    out = capsys.readouterr().out
    assert "learning session 1 stopped at" in out and "news ahead" in out
    assert "  global min_confidence: 0.5525 → 0.65" in out
    assert "no recommendations from 0 trades: at least 20 are needed" in out
    assert shown_value(env, capsys, "min_confidence") == 0.65


def test_history_lists_the_sessions(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run(env, "learning", "start", "30", "--reason", "explore")
    run(env, "learning", "stop")
    capsys.readouterr()
    assert run(env, "learning", "history") == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("1  STOPPED")
    assert line.endswith("explore  (0 trades, PnL +0.00, win rate n/a (no trades))")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["learning", "start", "30", "--reason", "r", "--relax", "min_confidence"], "NAME=PCT"),
        (["learning", "start", "30", "--reason", "r", "--relax", "min_confidence=30"], "10 to 20"),
        (["learning", "start", "2", "--reason", "r"], "lasts 5 to 240 minutes"),
        (["learning", "start", "30"], "the following arguments are required: --reason"),
        (["learning", "start", "30", "--reason", "again"], "is already running"),
        (["params", "set", "min_confidence", "0.6", "--reason", "r"], "relaxed by learning"),
    ],
)
def test_a_refused_command_exits_2_with_one_line(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    run(env, "learning", "start", "30", "--reason", "explore")
    capsys.readouterr()
    code = run(env, *argv)
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert len(captured.err.strip().splitlines()) == 1
    assert message in captured.err
