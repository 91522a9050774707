"""The `paramadapt` CLI as an operator meets it, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from storage.db import create_engine
from storage.tables import ConfigBackupRow, ConfigVersionRow, ParameterChangeRow


@pytest.fixture
def env(database_url: str, backup_dir: Path) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "BACKUP_DIR": str(backup_dir)}


def run(env: dict[str, str], *argv: str) -> int:
    """The exit status, whether argparse exits or main returns it."""
    try:
        return main(list(argv), env)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def state(env: dict[str, str]) -> tuple[object, ...]:
    """Everything a change could touch, except the audit log (which records refusals)."""

    async def dump() -> tuple[object, ...]:
        engine = create_engine(env["DATABASE_URL"])
        async with engine.connect() as connection:
            rows = [
                (
                    await connection.execute(select(table).order_by(*table.__table__.primary_key))
                ).all()
                for table in (ConfigVersionRow, ParameterChangeRow, ConfigBackupRow)
            ]
        await engine.dispose()
        return tuple(map(tuple, rows))

    files = sorted(str(p) for p in Path(env["BACKUP_DIR"]).rglob("*"))
    return (asyncio.run(dump()), files)


def test_set_prints_the_change_and_the_backup(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(env, "params", "set", "min_confidence", "0.6", "--reason", "too strict") == 0
    out = capsys.readouterr().out
    assert "global: version 0 → 1" in out
    assert "min_confidence: 0.65 → 0.6" in out
    assert "backup of version 0: global-" in out


def test_show_json_marks_inherited_values(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run(env, "params", "set", "long_rsi_entry", "35", "--scope", "HIGH", "--reason", "r")
    capsys.readouterr()
    assert run(env, "params", "show", "--scope", "HIGH", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == 1
    assert shown["parameters"]["long_rsi_entry"] == {
        **shown["parameters"]["long_rsi_entry"],
        "value": 35,
        "inherited": False,
    }
    assert shown["parameters"]["min_confidence"]["inherited"] is True


def test_history_diff_and_restore_round_trip(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run(env, "params", "set", "min_confidence", "0.6", "--reason", "a")
    run(env, "params", "set", "long_adx_min", "20", "--reason", "b")
    capsys.readouterr()
    assert run(env, "params", "history") == 0
    history = capsys.readouterr().out.splitlines()
    assert history[0].startswith("v2 ") and "long_adx_min: 22 → 20" in history[0]
    assert run(env, "params", "diff", "1", "2") == 0
    assert "long_adx_min: 22 → 20" in capsys.readouterr().out
    assert run(env, "params", "restore", "1") == 0
    assert "long_adx_min: 20 → 22" in capsys.readouterr().out


def test_restore_from_a_backup_id(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    run(env, "params", "set", "min_confidence", "0.6", "--reason", "a")
    run(env, "params", "set", "min_confidence", "0.5", "--reason", "b")
    capsys.readouterr()
    run(env, "backup", "list")
    newest = capsys.readouterr().out.splitlines()[0].split()[0]
    assert run(env, "params", "restore", "--backup", newest) == 0
    assert "min_confidence: 0.5 → 0.6" in capsys.readouterr().out


def test_backup_create_and_list(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(env, "backup", "create", "--reason", "before the FOMC") == 0
    created = capsys.readouterr().out
    assert created.startswith("backed up global version 0 as global-")
    assert run(env, "backup", "list") == 0
    assert "before the FOMC" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["params", "set", "min_confidense", "0.6", "--reason", "r"],
            "did you mean 'min_confidence'",
        ),
        (
            ["params", "set", "min_confidence", "1.6", "--reason", "r"],
            "must be a number from 0 to 1",
        ),
        (["params", "set", "long_rsi_entry", "abc", "--reason", "r"], "must be a whole number"),
        (
            ["params", "set", "min_confidence", "0.5", "--reason", "r", "--based-on", "0"],
            "changed since version 0",
        ),
        (
            ["params", "set", "min_confidence", "0.5"],
            "the following arguments are required: --reason",
        ),
        (["params", "set", "min_confidence", "0.5", "--reason", "  "], "a reason is required"),
        (
            ["params", "set", "min_confidence", "0.5", "--reason", "r", "--scope", "X"],
            "unknown scope 'X'",
        ),
        (["params", "restore", "7"], "global has no version 7"),
        (["params", "restore", "--backup", "../../etc/passwd"], "no backup '../../etc/passwd'"),
        (["params", "restore", "--backup", "global-20200101T000000000000Z_v1"], "no backup"),
        (["params", "diff", "1", "9"], "global has no version 9"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    run(env, "params", "set", "min_confidence", "0.6", "--reason", "baseline")
    capsys.readouterr()
    before = state(env)
    code = run(env, *argv)
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert message in captured.err
    assert state(env) == before
