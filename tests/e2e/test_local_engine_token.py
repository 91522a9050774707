"""`make run` and `paramadapt simulate` work together with no set-up: a local engine token."""

from __future__ import annotations

import json
import stat
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import cli
from bot.config import ApiToken, Settings
from bot.local_token import with_local_engine_token
from tests.process import BotProcess, free_port


def report_blocked_trade(port: int, token: str) -> int:
    event = {
        "event_id": "local-1",
        "timestamp": datetime.now(UTC).isoformat(),
        "symbol": "BTC-SIM",
        "signal": "BUY",
        "block_reason": "min_confidence",
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/blocked-trades",
        data=json.dumps(event).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_a_console_bot_accepts_the_token_it_keeps_in_var(tmp_path: Path) -> None:
    port = free_port()
    bot = BotProcess("run", env={"PORT": str(port), "LOG_LEVEL": "INFO"}, cwd=tmp_path)
    try:
        bot.wait_for(r"paramadapt listening on")
        token_file = tmp_path / "var" / "engine-token"
        token = token_file.read_text().strip()

        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert report_blocked_trade(port, "not-the-token") == 401
        assert report_blocked_trade(port, token) == 201
    finally:
        bot.stop()
    assert token not in "\n".join(bot.lines)  # its path is logged, never the token


def test_simulate_reads_the_local_token_when_no_variable_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "engine-token").write_text("local-token\n")
    args = cli.build_parser().parse_args(["simulate"])

    assert cli.simulate.options_from(args, env={}).token == "local-token"


def test_an_empty_token_file_is_replaced_and_a_kept_one_reused(tmp_path: Path) -> None:
    path = tmp_path / "var" / "engine-token"
    path.parent.mkdir()
    path.touch()  # left empty by a crash, or by hand

    first = with_local_engine_token(Settings(), path).api_tokens[-1].secret
    again = with_local_engine_token(Settings(), path).api_tokens[-1].secret

    assert first and first == again == path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["engine-token"]  # nothing left aside


@pytest.mark.parametrize(
    "settings",
    [
        Settings(slack_bot_token="xoxb-1", slack_app_token="xapp-1"),  # Slack: a deployment
        Settings(host="0.0.0.0"),  # other hosts reach it
        Settings(api_tokens=(ApiToken("engine", "ENGINE_API_TOKEN", ("engine",), "s3cret"),)),
    ],
    ids=["slack", "public-address", "engine-token-configured"],
)
def test_no_local_token_outside_a_local_console_without_an_engine_token(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "engine-token"

    assert with_local_engine_token(settings, path) is settings
    assert not path.exists()
