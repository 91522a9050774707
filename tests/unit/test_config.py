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
        ({"HOST": "bad host!"}, None, "HOST: must be a host name or IP address"),
        ({"HOST": " "}, None, "HOST: must be a host name or IP address"),
        (
            {},
            '[slack]\nrisk_chanel = "#x"',
            "slack: unknown key(s) risk_chanel; did you mean 'risk_channel'?",
        ),
        ({}, "[http]\nmax_body = 10", "http: unknown key(s) max_body; did you mean 'max_body_b"),
        ({}, "[overrides]\nttl = 5", "overrides: unknown key(s) ttl; known: ttl_minutes"),
        ({}, "[learning]\ncooldown = 5", "learning: unknown key(s) cooldown; did you mean 'cool"),
        (
            {},
            "[[api_tokens]]\nname='e'\ntoken_evn='T'\nscopes=['engine']",
            "api_tokens[0]: unknown key(s) token_evn; did you mean 'token_env'?",
        ),
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


SECRETS_LIVE_IN = "secrets come from the environment"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[slack]\nbot_token", f"slack.bot_token: {SECRETS_LIVE_IN}; set SLACK_BOT_TOKEN instead"),
        ("[slack]\napp_token", f"slack.app_token: {SECRETS_LIVE_IN}; set SLACK_APP_TOKEN instead"),
        (
            "[slack]\nsigning_secret",
            f"slack.signing_secret: {SECRETS_LIVE_IN}; set SLACK_SIGNING_SECRET instead",
        ),
        ("slack_bot_token", f": slack_bot_token: {SECRETS_LIVE_IN}; set SLACK_BOT_TOKEN instead"),
        (
            "[http]\nwebhook_secret",
            f"http.webhook_secret: {SECRETS_LIVE_IN}; set ENGINE_WEBHOOK_SECRET instead",
        ),
        ("[overrides]\npassword", f"overrides.password: {SECRETS_LIVE_IN}, never from this file"),
        ("[jobs]\napi_key", f"jobs.api_key: {SECRETS_LIVE_IN}, never from this file"),
        (
            "[digest]\nbot_token",
            f"digest.bot_token: {SECRETS_LIVE_IN}; set SLACK_BOT_TOKEN instead",
        ),
        ("[roles]\nbot_token", f"roles.bot_token: {SECRETS_LIVE_IN}; set SLACK_BOT_TOKEN instead"),
        (
            "[[api_tokens]]\nname = 'engine'\nscopes = ['engine']\ntoken",
            f"api_tokens[0].token: {SECRETS_LIVE_IN}; name the variable that holds it in token_env",
        ),
    ],
)
def test_a_secret_in_the_file_is_refused_and_sent_to_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    secret = "xoxb-1234-not-for-files"
    path = write(tmp_path, f'{text} = "{secret}"\n')

    assert main(["config", "check", str(path)], {}) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert message in captured.err
    assert secret not in captured.err
    assert "configuration OK" not in captured.err


@pytest.mark.parametrize("host", ["0.0.0.0", "::1", "localhost", "bot-1.internal"])
def test_host_takes_names_and_addresses(host: str) -> None:
    assert load_settings({"HOST": host}).host == host


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


SLACK_TOKENS = {"SLACK_BOT_TOKEN": "xoxb-bot", "SLACK_APP_TOKEN": "xapp-app"}


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (
            {"SLACK_BOT_TOKEN": "xapp-app", "SLACK_APP_TOKEN": "xoxb-bot"},
            "SLACK_BOT_TOKEN: holds an app-level token (xapp-)",
        ),
        (
            {"SLACK_BOT_TOKEN": "standin-bot", "SLACK_APP_TOKEN": "xoxp-user"},
            "SLACK_APP_TOKEN: holds a bot or user token (xoxb-/xoxp-)",
        ),
    ],
)
def test_swapped_slack_tokens_are_refused_in_one_line(tokens: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(tokens)

    assert message in str(raised.value) and "swapped" in str(raised.value)
    assert "\n" not in str(raised.value)
    assert not any(token in str(raised.value) for token in ("xapp-app", "xoxb-bot", "xoxp-user"))


def test_slack_tokens_of_another_form_are_taken_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tokens = {"SLACK_BOT_TOKEN": "standin-bot-secret", "SLACK_APP_TOKEN": "standin-app-secret"}

    settings = load_settings(tokens)

    assert (settings.slack_mode, settings.slack_bot_token) == ("socket", "standin-bot-secret")
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [
        "SLACK_BOT_TOKEN does not start with xoxb- as Slack's tokens do; using it as given",
        "SLACK_APP_TOKEN does not start with xapp- as Slack's tokens do; using it as given",
    ]


def test_slack_tokens_of_slacks_own_form_raise_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    load_settings(SLACK_TOKENS)

    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_the_alert_expiry_may_be_a_fraction_of_a_minute(tmp_path: Path) -> None:
    env = {"PARAMADAPT_CONFIG": str(write(tmp_path, "[slack]\nalert_expiry_minutes = 0.5"))}

    assert load_settings(env).policy.alert_ttl == timedelta(seconds=30)


@pytest.mark.parametrize("value", ["0", "-1", "'soon'", "true", "nan", "inf"])
def test_an_alert_expiry_that_is_not_a_positive_number_is_refused(
    tmp_path: Path, value: str
) -> None:
    env = {"PARAMADAPT_CONFIG": str(write(tmp_path, f"[slack]\nalert_expiry_minutes = {value}"))}

    with pytest.raises(ConfigError) as raised:
        load_settings(env)

    assert "slack.alert_expiry_minutes: must be a number of minutes above 0" in str(raised.value)


def test_the_risk_channel_error_says_a_name_or_an_id_is_taken(tmp_path: Path) -> None:
    env = {"PARAMADAPT_CONFIG": str(write(tmp_path, '[slack]\nrisk_channel = ""'))}

    with pytest.raises(ConfigError) as raised:
        load_settings(env)

    assert "channel name (#name, such as #risk-blocked) or a channel id (C…)" in str(raised.value)


def test_a_mistyped_key_of_a_parameter_is_shown_the_closest_one(tmp_path: Path) -> None:
    path = write(tmp_path, "[parameters.min_confidence]\nmaxx = 0.9\n")
    with pytest.raises(ConfigError) as refused:
        load_settings({"PARAMADAPT_CONFIG": str(path)})
    assert "parameter min_confidence: unknown key(s) maxx; did you mean 'max'? allowed: " in str(
        refused.value
    )


def test_the_libraries_log_level_is_checked_like_log_level() -> None:
    with pytest.raises(ConfigError, match=r"^LOG_LEVEL_LIBRARIES: must be one of DEBUG, "):
        load_settings({"LOG_LEVEL_LIBRARIES": "chatty"})
