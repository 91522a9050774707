"""Console mode: `paramadapt run` without Slack tokens, driven through a pipe."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.conftest import on_sqlite
from tests.process import BIN, BotProcess, bot_environment

pytestmark = on_sqlite

ENGINE_TOKEN = "engine-token-aaaaaaaaaaaaaaaa"
CONFIG = """
[roles]
viewer = ["U0VIEWER"]

[[api_tokens]]
name = "engine"
token_env = "ENGINE_API_TOKEN"
scopes = ["engine"]
"""


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return bot_environment(
        tmp_path, database_url, CONFIG, ENGINE_API_TOKEN=ENGINE_TOKEN, LOG_LEVEL="WARNING"
    )


def console(env: dict[str, str], script: str, *args: str) -> str:
    """Run the console with `script` as its input; its output once it stopped at EOF."""
    done = subprocess.run(
        [str(BIN), "run", *args],
        input=script,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_script_of_commands_gets_the_same_answers_as_in_slack(env: dict[str, str]) -> None:
    script = "\n".join(
        [
            "/param show min_confidence",
            "/param set min_confidence 0.6 too many good BUYs blocked",
            "/param set min_confidence 2 oops",
            "/param frobnicate",
            "home",
        ]
    )

    out = console(env, script)

    assert out.startswith("paramadapt console: you are U0CONSOLE (admin in console mode).")
    assert "> /param show min_confidence\n\n#console (only you) │ paramadapt\n" in out
    assert "  min_confidence  0.65 fraction  default\n" in out
    assert (  # typed in #console, announced in #risk-blocked: #console sees it too
        "#console │ paramadapt\n"
        "  @U0CONSOLE set min_confidence in global\n"
        "  • min_confidence: 0.65 → 0.6\n"
        "  > too many good BUYs blocked\n"
    ) in out
    assert (  # and the channel hears of it once, from the outbox
        "#risk-blocked │ paramadapt\n"
        "  @U0CONSOLE changed global in Slack\n"
        "  • min_confidence: 0.65 → 0.6\n"
    ) in out
    assert "  ⚠ min_confidence must be a number from 0 to 1; got 2\n" in out
    assert "  ⚠ unknown command 'frobnicate'\n" in out
    assert "── App Home of U0CONSOLE ──" in out and "  none yet\n" in out


def test_as_picks_who_types_and_their_roles_apply(env: dict[str, str]) -> None:
    out = console(env, "/param show\n/param set min_confidence 0.6 why not\n", "--as", "U0VIEWER")

    assert "you are U0VIEWER." in out
    assert "PARAMETERS · GLOBAL · VERSION 0" in out
    assert "⚠ set needs the admin role; U0VIEWER has viewer" in out


def test_a_form_is_filled_field_by_field_and_asked_again_when_invalid(
    env: dict[str, str],
) -> None:
    answers = ["1000", "25", "", "", "", "explore", "30", "15", "", "", "", ""]

    out = console(env, "\n".join(["/param learning start", *answers, "/param learning status"]))

    assert "── Start learning session ──" in out
    assert "Duration (minutes) (5 to 240 minutes) [60]: 1000" in out
    # each problem named by the field's label, as the form shows it
    assert "  ⚠ Duration (minutes): a whole number of minutes from 5 to 240" in out
    assert "  ⚠ min_confidence: lower by (%): a percentage from 10 to 20" in out
    assert "Duration (minutes) (5 to 240 minutes) [1000]: 30" in out
    assert "@U0CONSOLE started learning session 1 until" in out
    assert "Learning session 1 by @U0CONSOLE: 30 min left" in out


def test_alerts_from_the_engine_show_up_and_buttons_are_pressed_by_number(
    env: dict[str, str],
) -> None:
    bot = BotProcess("run", env=env, stdin=True)
    try:
        bot.type("/param help")  # the prompt answers once the process is up
        bot.wait_for(r"/PARAM COMMANDS")
        report_blocked_trade(int(env["PORT"]))
        bot.wait_for(r"\[1\] Approve override   \[2\] Deny")

        bot.type("1", "y")

        bot.wait_for(r"Approved by @U0CONSOLE at \d\d:\d\d UTC")
        assert bot.end_input() == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
    transcript = "\n".join(bot.lines)
    assert "#risk-blocked │ paramadapt" in transcript
    assert "Signal: BUY   Reason: min_confidence" in transcript
    assert "Approve override? The engine may then take this BUY BTCUSDC trade" in transcript
    assert "#risk-blocked │ paramadapt (updated)" in transcript


def report_blocked_trade(port: int) -> None:
    event = {
        "event_id": "console-1",
        "timestamp": datetime.now(UTC).isoformat(),
        "symbol": "BTCUSDC",
        "signal": "BUY",
        "block_reason": "min_confidence",
        "price": 64250.5,
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/blocked-trades",
        data=json.dumps(event).encode(),
        headers={"Authorization": f"Bearer {ENGINE_TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
