"""The `paramadapt` CLI as an operator meets it, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest
from sqlalchemy import make_url, select

from bot.cli import main
from storage.db import create_engine
from storage.tables import AuditLogRow, ConfigBackupRow, ConfigVersionRow, ParameterChangeRow
from tests.conftest import POSTGRES_URL
from tests.process import BIN, BotProcess, free_port


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


def rows(env: dict[str, str], *columns: Any) -> list[Any]:
    """`columns` of every row of their table, in insertion order."""

    async def read() -> list[Any]:
        engine = create_engine(env["DATABASE_URL"])
        async with engine.connect() as connection:
            found = (await connection.execute(select(*columns).order_by(columns[0]))).all()
        await engine.dispose()
        return list(found)

    return asyncio.run(read())


def audit_log(env: dict[str, str]) -> list[Any]:
    return rows(env, AuditLogRow.id, AuditLogRow.action, AuditLogRow.outcome, AuditLogRow.detail)


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


def changes_refused(*cases: tuple[list[str], str]) -> Any:
    return pytest.mark.parametrize(
        ("argv", "message"), [pytest.param(*c, id=" ".join(c[0])) for c in cases]
    )


# what each change command's refusals are audited as
AUDITED_AS = {
    ("params", "set"): "set",
    ("params", "reset"): "reset",
    ("params", "restore"): "restore",
    ("backup", "create"): "backup",
    ("learning", "start"): "learning.start",
    ("learning", "stop"): "learning.stop",
}


@changes_refused(
    (["params", "set", "min_confidense", "0.6", "--reason", "r"], "did you mean 'min_confidence'"),
    (["params", "set", "min_confidence", "1.6", "--reason", "r"], "must be a number from 0 to 1"),
    (["params", "set", "long_rsi_entry", "abc", "--reason", "r"], "must be a whole number"),
    (
        ["params", "set", "min_confidence", "0.5", "--reason", "r", "--based-on", "0"],
        "global changed since version 0: the active version is 1",
    ),
    (["params", "set", "min_confidence", "0.5"], "a reason is required: say why the value changes"),
    (["params", "set", "min_confidence", "0.5", "--reason", "  "], "a reason is required"),
    (
        ["params", "set", "min_confidence", "0.5", "--reason", "r", "--scope", "X"],
        "unknown scope 'X'; use one of: global, HIGH, MEDIUM, LOW",
    ),
    (["params", "reset", "min_confidence", "--scope", "X"], "unknown scope 'X'"),
    (["params", "restore", "1", "--scope", "X"], "unknown scope 'X'"),
    (["params", "restore", "7"], "global has no version 7"),
    (["params", "restore", "--backup", "../../etc/passwd"], "no backup '../../etc/passwd'"),
    (["params", "restore", "--backup", "global-20200101T000000000000Z_v1"], "no backup"),
    (
        ["params", "set", "min_confidence", "0.5", "--reason", "r", "--based-on", "99"],
        "global has no version 99; the active version is 1",
    ),
    (
        ["params", "set", "min_confidence", "0.5", "--reason", "r", "--based-on", "-1"],
        "global has no version -1; the active version is 1",
    ),
    # refused by the command line's grammar, before any use case: audited all the same
    (["params", "set", "min_confidence"], "the following arguments are required: value"),
    (
        ["params", "set", "min_confidence", "0.5", "--reason", "r", "--based-on", "abc"],
        "argument --based-on: invalid int value: 'abc'",
    ),
    (["params", "set", "min_confidence", "0.5", "--reason", "r", "--bogus"], "--bogus"),
    (["params", "reset", "min_confidence", "--based-on"], "expected one argument"),
    (["params", "restore", "--reason", "r"], "one of the arguments VERSION --backup"),
    (["backup", "create", "--scope", "FOO"], "unknown scope 'FOO'"),
    (["learning", "start", "--reason", "r"], "required: DURATION_MINUTES"),
    (["learning", "stop", "--bogus"], "unrecognized arguments: --bogus"),
)
def test_a_refused_change_exits_2_with_one_line_is_audited_and_changes_nothing(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    run(env, "params", "set", "min_confidence", "0.6", "--reason", "baseline")
    capsys.readouterr()
    before, audited = state(env), len(audit_log(env))

    code = run(env, *argv)

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(("paramadapt: error: ", f"paramadapt {argv[0]} {argv[1]}: error: "))
    assert message in line
    assert state(env) == before
    [(_, action, outcome, detail)] = audit_log(env)[audited:]
    assert (action, outcome) == (AUDITED_AS[argv[0], argv[1]], "refused")
    assert line.partition(": error: ")[2].startswith(detail["error"])


def test_a_malformed_change_without_a_database_to_audit_it_still_says_only_what_is_wrong(
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/x"}

    code = run(env, "params", "set", "min_confidence", "--reason", "r")

    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "paramadapt params set: error: the following arguments are required: value "
        "(see 'paramadapt params set --help')"
    ]


def test_a_backup_file_missing_a_field_is_refused_in_one_line_and_changes_nothing(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run(env, "params", "set", "min_confidence", "0.6", "--reason", "baseline")
    made_by_hand = Path(env["BACKUP_DIR"]) / "global" / "20200101T000000000000Z_v1.json"
    document = {"format": "paramadapt-backup/1", "scope": "global", "version": 1}
    made_by_hand.write_text(json.dumps({**document, "parameters": {"min_confidence": 0.5}}))
    capsys.readouterr()
    before = state(env)

    code = run(env, "params", "restore", "--backup", "global-20200101T000000000000Z_v1")

    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "paramadapt: error: backup 'global-20200101T000000000000Z_v1' is not a complete "
        "paramadapt backup: missing created_at"
    ]
    assert state(env) == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["params", "diff", "1", "9"], "global has no version 9"),
        (["params", "history", "--limit", "0"], "limit must be between 1 and 1000"),
        (["params", "show", "--scope", "X"], "unknown scope 'X'"),
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


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (a database server that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "argv",
    [
        ["params", "set", "min_confidence", "0.66", "--reason", "piped"],
        ["params", "show"],
    ],
    ids=["set", "show"],
)
def test_output_into_a_pipe_closed_early_ends_quietly_and_a_change_is_kept(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """`paramadapt … | head -c0`: the reader is gone before anything is written."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run(
            [str(BIN), *argv],
            env={**os.environ, **env},
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(writer)

    assert done.stderr == ""
    assert done.returncode == 141  # as for a process ended by SIGPIPE
    assert run(env, "params", "show", "min_confidence") == 0
    shown = capsys.readouterr().out
    assert ("0.66" in shown) == (argv[1] == "set")


def test_run_with_the_database_down_says_so_in_one_line_naming_the_setting(
    tmp_path: Path,
) -> None:
    url = f"postgresql+asyncpg://postgres:s3cretpassw0rd@127.0.0.1:{closed_port()}/x"
    env = {"DATABASE_URL": url, "PORT": str(closed_port()), "LOG_LEVEL": "INFO"}

    done = subprocess.run(
        [str(BIN), "run"],
        env={**os.environ, **env},
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    masked = url.replace("s3cretpassw0rd", "***")
    assert line.startswith(f"paramadapt: error: DATABASE_URL: database unavailable ({masked}): ")
    assert not (tmp_path / "var" / "engine-token").exists()


@pytest.mark.parametrize(
    ("libraries", "shown"),
    [({}, False), ({"LOG_LEVEL_LIBRARIES": "DEBUG"}, True)],
    ids=["default", "LOG_LEVEL_LIBRARIES=DEBUG"],
)
def test_debug_logging_leaves_out_the_chatty_libraries_unless_they_are_asked_for(
    tmp_path: Path, libraries: dict[str, str], shown: bool
) -> None:
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'paramadapt.db'}",
        "BACKUP_DIR": str(tmp_path / "backups"),
        "PORT": str(free_port()),
        "LOG_LEVEL": "DEBUG",
        **libraries,
    }
    bot = BotProcess("run", env=env, cwd=tmp_path)
    try:
        bot.wait_for(r"paramadapt listening on ", timeout=60)  # migrated, the lease taken
        assert bot.stop() == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
    assert any(" DEBUG aiosqlite: " in line for line in bot.lines) == shown


RACERS = 6


def racer(env: dict[str, str], value: str) -> subprocess.Popen[str]:
    """A separate `paramadapt` process setting min_confidence on top of version 1."""
    argv = ["params", "set", "min_confidence", value, "--reason", "race", "--based-on", "1"]
    return subprocess.Popen(
        [str(BIN), *argv],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.contextmanager
def commits_held(env: dict[str, str], until: Callable[[], bool]) -> Iterator[None]:
    """On PostgreSQL, hold back every commit of a version (reads go on) until `until()`, so
    racers all read the same version and race at the commit itself. SQLite runs every
    transaction BEGIN IMMEDIATE, reads too: there the racers simply run side by side."""
    url = make_url(env["DATABASE_URL"])
    if url.get_backend_name() != "postgresql":
        yield
        return
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as connection:
        connection.execute("LOCK TABLE config_versions IN EXCLUSIVE MODE")
        yield
        deadline = time.monotonic() + 90
        while not until():
            assert time.monotonic() < deadline, "the racers never all reached the commit"
            time.sleep(0.1)


def backup_files(env: dict[str, str]) -> list[Path]:
    return list(Path(env["BACKUP_DIR"]).rglob("*.json"))


def test_parallel_processes_changing_the_same_version_one_wins_the_others_are_told_it_is_stale(
    env: dict[str, str],
) -> None:
    assert run(env, "params", "set", "min_confidence", "0.6", "--reason", "baseline") == 0
    values = [f"0.{50 + n}" for n in range(RACERS)]
    # each racer backs up version 1 just before it commits
    with commits_held(env, until=lambda: len(backup_files(env)) == 1 + RACERS):
        racers = [racer(env, value) for value in values]
    ended = [(r.wait(120), *r.communicate(timeout=15)) for r in racers]

    assert sorted(code for code, _, _ in ended) == [0] + [2] * (RACERS - 1), ended
    for code, out, err in ended:  # stale when read, or when committing after the winner
        if code == 2:
            [line] = err.splitlines()
            assert out == ""
            assert line.startswith("paramadapt: error: global changed since version 1: ")
            assert line.endswith("Review the current values and try again.")
    winner = next(value for value, (code, _, _) in zip(values, ended, strict=True) if code == 0)
    versions = rows(
        env,
        ConfigVersionRow.id,
        ConfigVersionRow.scope,
        ConfigVersionRow.version,
        ConfigVersionRow.status,
        ConfigVersionRow.parameters,
    )
    active = [
        (scope, version, p) for _, scope, version, status, p in versions if status == "ACTIVE"
    ]
    assert [(scope, version) for scope, version, _ in active] == [("global", 2)]
    assert active[0][2]["min_confidence"] == float(winner)
    assert len(backup_files(env)) == len(rows(env, ConfigBackupRow.id)) == 2


def test_run_on_a_busy_port_says_it_cannot_listen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "paramadapt.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"DATABASE_URL": f"sqlite+aiosqlite:///{database}", "PORT": str(port)}

        code = run(env, "run")

    assert code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"paramadapt: error: HOST/PORT: cannot listen on 127.0.0.1:{port}: address already in use"
    ]
    assert not database.exists()


def test_run_on_a_host_that_does_not_resolve_says_it_cannot_listen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'paramadapt.db'}"}

    code = run({**env, "HOST": "no-such-host.invalid", "PORT": "18931"}, "run")

    assert code == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "paramadapt: error: HOST/PORT: cannot listen on no-such-host.invalid:18931: "
    )


def lose_the_database(database_url: str) -> None:
    """The database is gone and replaced by an empty one; BACKUP_DIR is all that is left."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        for suffix in ("", "-wal", "-shm"):
            Path(url.database + suffix).unlink(missing_ok=True)
        return

    async def recreate() -> None:
        admin = make_url(POSTGRES_URL).set(drivername="postgresql")
        connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            await connection.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')
            await connection.execute(f'CREATE DATABASE "{url.database}"')
        finally:
            await connection.close()

    asyncio.run(recreate())


def test_backup_list_shows_the_backup_files_of_a_lost_database_and_restore_takes_their_ids(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run(env, "params", "set", "min_confidence", "0.6", "--reason", "a")
    run(env, "params", "set", "min_confidence", "0.5", "--reason", "b")  # backs up version 1
    lose_the_database(env["DATABASE_URL"])
    capsys.readouterr()

    assert run(env, "backup", "list") == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2
    assert all(line.endswith("[file only]") for line in listed)
    newest = listed[0].split()[0]
    assert " global v1 " in listed[0] and " global v0 " in listed[1]

    assert run(env, "params", "restore", "--backup", newest) == 0
    assert "min_confidence: 0.65 → 0.6" in capsys.readouterr().out
    assert run(env, "params", "show", "min_confidence") == 0
    assert "0.6" in capsys.readouterr().out


def test_backup_list_marks_only_the_backups_the_database_does_not_know(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run(env, "params", "set", "min_confidence", "0.6", "--reason", "a")
    lose_the_database(env["DATABASE_URL"])
    run(env, "backup", "create", "--reason", "after the loss")
    capsys.readouterr()

    assert run(env, "backup", "list") == 0
    recorded, lost = capsys.readouterr().out.splitlines()
    assert "after the loss" in recorded and not recorded.endswith("[file only]")
    assert lost.endswith("[file only]")
