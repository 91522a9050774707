"""Settings: defaults, one clear line per misconfiguration, secrets never shown."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, load_settings
from core.counterfactual import CounterfactualPolicy

TOKEN = "engine-token-0123456789abcdef"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "paramadapt.toml"
    path.write_text(text)
    return path


GOOD = """
[slack]
risk_channel = "#risk-blocked"
[roles]
admin = ["U0ADMIN"]
operator = ["U0OPS", "S0TRADERS"]
viewer = ["*"]
[[api_tokens]]
name = "engine"
token_env = "ENGINE_API_TOKEN"
scopes = ["engine"]
"""


def test_defaults_need_no_configuration() -> None:
    settings = load_settings({})
    assert settings.database_url == "sqlite+aiosqlite:///./var/paramadapt.db"
    assert (settings.host, settings.port, str(settings.backup_dir)) == (
        "127.0.0.1",
        8080,
        "var/backups",
    )


def test_postgres_urls_in_the_common_spellings_select_asyncpg() -> None:
    settings = load_settings({"DATABASE_URL": "postgres://u:pw@db:5432/pa"})
    assert settings.database_url == "postgresql+asyncpg://u:pw@db:5432/pa"


def test_the_documented_file_shape_loads(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    settings = load_settings({"PARAMADAPT_CONFIG": str(path), "ENGINE_API_TOKEN": TOKEN})
    assert settings.roles["operator"] == ("U0OPS", "S0TRADERS")
    assert settings.api_tokens[0].scopes == ("engine",)
    assert settings.api_tokens[0].secret == TOKEN


@pytest.mark.parametrize(
    ("env", "text", "message"),
    [
        ({"PORT": "http"}, None, "PORT: must be a whole number from 1 to 65535, got 'http'"),
        ({"PORT": "70000"}, None, "PORT: must be a whole number"),
        ({"LOG_LEVEL": "loud"}, None, "LOG_LEVEL: must be one of"),
        ({"DATABASE_URL": "mysql://x/y"}, None, "DATABASE_URL: unsupported database 'mysql'"),
        ({"DATABASE_URL": "not a url"}, None, "DATABASE_URL: not a database URL"),
        ({}, "[rols]\nadmin=[]", "unknown section(s) rols"),
        ({}, "[roles]\nboss = ['U1AAA']", "roles.boss is not a role"),
        ({}, "[roles]\nadmin = ['alice']", "'alice' is not a Slack user id"),
        (
            {},
            "[[api_tokens]]\nname='e'\ntoken_env='MISSING'\nscopes=['engine']",
            "MISSING: the token",
        ),
        (
            {},
            "[[api_tokens]]\nname='e'\ntoken_env='T'\nscopes=['root']",
            "scopes must be a non-empty list",
        ),
        ({}, "[parameters.min_confidence]\ndefault = 3", "parameter min_confidence: default"),
        ({}, "this is = not toml =", "not valid TOML"),
        ({}, "[blocked_insights]\nhorizon = 3", "blocked_insights.horizon: unknown key"),
        ({}, "[blocked_insights]\nmin_trades = 0", "blocked_insights.min_trades: must be a"),
        ({}, "[blocked_insights]\nmax_trades = 2.5", "blocked_insights.max_trades: must be a w"),
    ],
)
def test_a_misconfiguration_names_the_setting(
    tmp_path: Path, env: dict[str, str], text: str | None, message: str
) -> None:
    if text is not None:
        env = {**env, "PARAMADAPT_CONFIG": str(write(tmp_path, text))}
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_blocked_trade_replays_are_configured_in_their_section(tmp_path: Path) -> None:
    text = "[blocked_insights]\nhorizon_hours = 12\nmin_trades = 50\nconfidence_z = 2.58"
    settings = load_settings({"PARAMADAPT_CONFIG": str(write(tmp_path, text))})

    policy = settings.blocked_insights
    assert (policy.horizon, policy.min_trades, policy.z) == (timedelta(hours=12), 50, 2.58)
    assert policy.max_trades == CounterfactualPolicy().max_trades


def test_a_missing_config_file_is_named() -> None:
    with pytest.raises(ConfigError, match=r"PARAMADAPT_CONFIG \(/nope.toml\): file not found"):
        load_settings({"PARAMADAPT_CONFIG": "/nope.toml"})


def test_config_check_prints_the_effective_configuration_with_secrets_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD)
    env = {"ENGINE_API_TOKEN": TOKEN, "DATABASE_URL": "postgresql://pa:hunter2secret@db/pa"}
    assert main(["config", "check", str(path)], env) == 0
    captured = capsys.readouterr()
    shown = json.loads(captured.out)
    assert shown["roles"]["admin"] == ["U0ADMIN"]
    assert shown["api_tokens"][0]["token"] == "***"
    assert TOKEN not in captured.out + captured.err
    assert "hunter2secret" not in captured.out + captured.err
    assert "configuration OK" in captured.err


def test_a_command_with_a_bad_setting_fails_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["params", "show"], {"PORT": "abc"}) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "paramadapt: error: configuration error: "
        "PORT: must be a whole number from 1 to 65535, got 'abc'"
    ]
