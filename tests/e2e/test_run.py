"""`paramadapt run`: migrate, serve /healthz, say where, stop cleanly on a signal."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

import pytest

from tests.process import BotProcess, free_port


def start(tmp_path: Path, database_url: str) -> tuple[BotProcess, int]:
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "BACKUP_DIR": str(tmp_path / "backups"),
        "PORT": str(port),
        "LOG_LEVEL": "INFO",
    }
    return BotProcess("run", env=env), port


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_healthz_and_stops_cleanly_on_a_signal(
    tmp_path: Path, database_url: str, signum: int
) -> None:
    bot, port = start(tmp_path, database_url)
    try:
        line = bot.wait_for(r"paramadapt listening on (http://\S+) \(database (\S+)\)")
        assert line[1] == f"http://127.0.0.1:{port}"
        assert line[2].split("://")[0] in ("sqlite+aiosqlite", "postgresql+asyncpg")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
            assert json.load(response) == {"status": "ok"}
        assert bot.stop(signum) == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
    assert any("paramadapt stopping" in line for line in bot.lines)


def test_run_never_logs_the_database_password(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://postgres:s3cretpassw0rd@127.0.0.1:1/none"
    bot, _ = start(tmp_path, url)
    code = bot.proc.wait(30)
    output = "\n".join(bot.lines)
    assert code == 1
    assert "s3cretpassw0rd" not in output
    assert "database unavailable (postgresql+asyncpg://postgres:***@127.0.0.1:1/none)" in output


def test_run_with_a_bad_setting_fails_at_start_with_one_line(tmp_path: Path) -> None:
    bot = BotProcess("run", env={"PORT": "eighty", "BACKUP_DIR": str(tmp_path)})
    assert bot.proc.wait(30) == 2
    assert bot.lines == [
        "paramadapt: error: configuration error: PORT: must be a whole number from 1 to 65535, "
        "got 'eighty'"
    ]
