"""Settings: environment variables (12-factor) plus an optional TOML file for structure.

Secrets only ever come from the environment; the TOML file names the variable that
holds each one. A misconfiguration raises ConfigError naming the setting and the problem.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from bot.jobs_config import JobsSettings, parse_jobs
from bot.notifications import (
    DigestSettings,
    NotificationSettings,
    parse_digest,
    parse_notifications,
)
from bot.optimizer_config import OptimizerSettings, parse_optimizer
from bot.optimizer_config import masked as masked_optimizer
from core.authz import Role
from core.counterfactual import CounterfactualPolicy
from core.errors import ValidationError
from core.learning_model import LearningPolicy
from core.models import Policy
from core.params import ParamSchema, did_you_mean, load_schema
from storage.db import DatabaseUrlError, mask_url, normalize_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/paramadapt.db"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ROLE_NAMES = ("admin", "operator", "viewer")
TOKEN_SCOPES = ("engine", "viewer", "admin")
SECTIONS = {
    "slack",
    "roles",
    "api_tokens",
    "parameters",
    "overrides",
    "http",
    "learning",
    "optimizer",
    "jobs",
    "notifications",
    "digest",
    "blocked_insights",
}
SECTION_KEYS: Mapping[str, tuple[str, ...]] = {
    "slack": ("risk_channel", "alert_expiry_minutes"),
    "overrides": ("ttl_minutes",),
    "http": ("max_body_bytes",),
    "learning": tuple(f.name for f in dataclasses.fields(LearningPolicy)),
}
_SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_HOST = re.compile(r"^[A-Za-z0-9._:%-]+$")
# No setting in the file is a secret (a key ending in _env names the variable holding one),
# so a key named like a secret is a secret put in the wrong place.
_SECRET_KEY = re.compile(r"token|secret|password|passwd|api_?key|private_?key|credential", re.I)
_SECRET_VARIABLES = {
    "bot_token": "SLACK_BOT_TOKEN",
    "app_token": "SLACK_APP_TOKEN",
    "signing_secret": "SLACK_SIGNING_SECRET",
    "webhook_secret": "ENGINE_WEBHOOK_SECRET",
}


Parsed = TypeVar("Parsed")

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """One clear line: which setting is wrong and how."""


@dataclass(frozen=True)
class ApiToken:
    name: str
    token_env: str
    scopes: tuple[str, ...]
    secret: str = field(repr=False)

    @property
    def roles(self) -> tuple[Role, ...]:
        return tuple(Role(scope) for scope in self.scopes)


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    backup_dir: Path = Path("./var/backups")
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    log_level_libraries: str = "INFO"  # the chatty libraries' (bot.cli.CHATTY_LIBRARIES)
    config_file: Path | None = None
    risk_channel: str = "#risk-blocked"
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    api_tokens: tuple[ApiToken, ...] = ()
    schema: ParamSchema = field(default_factory=load_schema, repr=False)
    slack_bot_token: str = field(default="", repr=False)
    slack_app_token: str = field(default="", repr=False)
    slack_signing_secret: str = field(default="", repr=False)
    slack_api_url: str = DEFAULT_SLACK_API_URL
    engine_webhook_secret: str = field(default="", repr=False)
    engine_callback_url: str = ""
    alert_expiry_minutes: float = 15  # fractions allowed (0.5: 30 seconds)
    override_ttl_minutes: int = 15
    max_body_bytes: int = 1_048_576
    learning: LearningPolicy = field(default_factory=LearningPolicy)
    market_data_dir: Path | None = None
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    jobs: JobsSettings = field(default_factory=JobsSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    blocked_insights: CounterfactualPolicy = field(default_factory=CounterfactualPolicy)

    @property
    def slack_mode(self) -> str:
        """socket (bot + app token), http (bot token + signing secret) or console (none)."""
        if self.slack_bot_token and self.slack_app_token:
            return "socket"
        if self.slack_bot_token and self.slack_signing_secret:
            return "http"
        return "console"

    @property
    def policy(self) -> Policy:
        return Policy(
            override_ttl=timedelta(minutes=self.override_ttl_minutes),
            alert_ttl=timedelta(minutes=self.alert_expiry_minutes),
        )

    def masked(self) -> dict[str, Any]:
        """The effective configuration, safe to print: secrets are never shown."""
        return {
            "DATABASE_URL": mask_url(self.database_url),
            "BACKUP_DIR": str(self.backup_dir),
            "HOST": self.host,
            "PORT": self.port,
            "LOG_LEVEL": self.log_level,
            "LOG_LEVEL_LIBRARIES": self.log_level_libraries,
            "PARAMADAPT_CONFIG": str(self.config_file) if self.config_file else None,
            "slack": {
                "mode": self.slack_mode,
                "risk_channel": self.risk_channel,
                "alert_expiry_minutes": self.alert_expiry_minutes,
                "SLACK_API_URL": self.slack_api_url,
                "SLACK_BOT_TOKEN": _shown(self.slack_bot_token),
                "SLACK_APP_TOKEN": _shown(self.slack_app_token),
                "SLACK_SIGNING_SECRET": _shown(self.slack_signing_secret),
            },
            "engine": {
                "ENGINE_WEBHOOK_SECRET": _shown(self.engine_webhook_secret),
                "ENGINE_CALLBACK_URL": self.engine_callback_url or None,
            },
            "overrides": {"ttl_minutes": self.override_ttl_minutes},
            "http": {"max_body_bytes": self.max_body_bytes},
            "learning": dataclasses.asdict(self.learning),
            "MARKET_DATA_DIR": str(self.market_data_dir) if self.market_data_dir else None,
            "optimizer": masked_optimizer(self.optimizer, self.backup_dir),
            "jobs": dataclasses.asdict(self.jobs),
            "notifications": {
                event.value: dataclasses.asdict(chosen)
                for event, chosen in self.notifications.events.items()
            },
            "digest": dataclasses.asdict(self.digest),
            "roles": {name: list(ids) for name, ids in self.roles.items()},
            "api_tokens": [
                {"name": t.name, "token_env": t.token_env, "scopes": list(t.scopes), "token": "***"}
                for t in self.api_tokens
            ],
            "parameters": self.schema.names,
        }


def _shown(secret: str) -> str | None:
    return "***" if secret else None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    config_file = Path(env["PARAMADAPT_CONFIG"]) if env.get("PARAMADAPT_CONFIG") else None
    document = _read_toml(config_file) if config_file else {}
    where = f"PARAMADAPT_CONFIG ({config_file})"
    slack = _section(document, "slack", where)
    return Settings(
        database_url=_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL),
        backup_dir=Path(env.get("BACKUP_DIR") or "./var/backups"),
        host=_host(env.get("HOST")),
        port=_port(env.get("PORT")),
        log_level=_log_level(env.get("LOG_LEVEL")),
        log_level_libraries=_log_level(env.get("LOG_LEVEL_LIBRARIES"), "LOG_LEVEL_LIBRARIES"),
        config_file=config_file,
        risk_channel=_risk_channel(env, slack, where),
        roles=_roles(_table(document, "roles", where), where),
        api_tokens=_api_tokens(document.get("api_tokens", []), env, where),
        schema=_schema(document.get("parameters", {}), where),
        **_slack_secrets(env),
        slack_api_url=_http_url("SLACK_API_URL", env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL),
        engine_webhook_secret=env.get("ENGINE_WEBHOOK_SECRET", ""),
        engine_callback_url=_http_url("ENGINE_CALLBACK_URL", env.get("ENGINE_CALLBACK_URL", "")),
        alert_expiry_minutes=_minutes(slack, "alert_expiry_minutes", 15, f"{where}: slack"),
        override_ttl_minutes=_whole(
            _section(document, "overrides", where), "ttl_minutes", 15, f"{where}: overrides"
        ),
        max_body_bytes=_whole(
            _section(document, "http", where), "max_body_bytes", 1_048_576, f"{where}: http"
        ),
        learning=_learning(_section(document, "learning", where), f"{where}: learning"),
        market_data_dir=Path(env["MARKET_DATA_DIR"]) if env.get("MARKET_DATA_DIR") else None,
        optimizer=_optimizer(_table(document, "optimizer", where), f"{where}: optimizer"),
        jobs=_jobs(_table(document, "jobs", where), f"{where}: jobs"),
        notifications=_parsed(parse_notifications, document, "notifications", where),
        digest=_parsed(parse_digest, document, "digest", where),
        blocked_insights=_parsed(parse_blocked_insights, document, "blocked_insights", where),
    )


def parse_blocked_insights(table: Mapping[str, Any]) -> CounterfactualPolicy:
    """`[blocked_insights]`: how blocked trades are replayed (see core/counterfactual.py)."""
    defaults = CounterfactualPolicy()
    known = {"horizon_hours", "min_trades", "max_trades", "confidence_z"}
    for key in sorted(set(table) - known):
        raise ValueError(f"{key}: unknown key; known: {', '.join(sorted(known))}")
    for key in known & set(table):
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"{key}: must be a positive number, got {value!r}")
        if key != "confidence_z" and not isinstance(value, int):
            raise ValueError(f"{key}: must be a whole number, got {value!r}")
    hours = table.get("horizon_hours", defaults.horizon.total_seconds() / 3600)
    return CounterfactualPolicy(
        horizon=timedelta(hours=hours),
        min_trades=table.get("min_trades", defaults.min_trades),
        max_trades=table.get("max_trades", defaults.max_trades),
        z=float(table.get("confidence_z", defaults.z)),
    )


def _jobs(table: Mapping[str, Any], where: str) -> JobsSettings:
    try:
        return parse_jobs(table)
    except ValueError as error:
        raise ConfigError(f"{where}.{error}") from None


def _parsed(
    parse: Callable[[Mapping[str, Any]], Parsed], document: Mapping[str, Any], name: str, where: str
) -> Parsed:
    """A section its parser reads, a ValueError("KEY: problem") named as name.KEY."""
    try:
        return parse(_table(document, name, where))
    except ValueError as error:
        raise ConfigError(f"{where}: {name}.{error}") from None


def _optimizer(table: Mapping[str, Any], where: str) -> OptimizerSettings:
    try:
        return parse_optimizer(table)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None


def _table(document: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    table = document.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [{name}] must be a table")
    _refuse_secrets(table, where, name)
    return table


def _section(document: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    """A section bot.config reads itself: only the keys SECTION_KEYS lists."""
    table = _table(document, name, where)
    _check_keys(table, SECTION_KEYS[name], where, name)
    return table


def _check_keys(table: Mapping[str, Any], known: Iterable[str], where: str, section: str) -> None:
    """Refuse, in one line, a key `section` does not take: a secret is sent to the
    environment, a typo is shown the closest known key."""
    known = list(known)
    unknown = sorted(set(table) - set(known))
    typos = {key for key in unknown if difflib.get_close_matches(key, known, n=1, cutoff=0.85)}
    _refuse_secrets([key for key in unknown if key not in typos], where, section)
    if unknown:
        raise ConfigError(
            f"{where}: {section}: unknown key(s) {', '.join(unknown)}; "
            f"{did_you_mean(unknown[0], known)}known: {', '.join(known)}"
        )


def _refuse_secrets(keys: Iterable[str], where: str, section: str = "") -> None:
    for key in keys:
        if _SECRET_KEY.search(key) and not key.endswith("_env"):
            name = f"{section}.{key}" if section else key
            raise ConfigError(f"{where}: {name}: {_secret_advice(section, key)}")


def _secret_advice(section: str, key: str) -> str:
    short = key.lower().removeprefix("slack_").removeprefix("engine_")
    if short in _SECRET_VARIABLES:
        return f"secrets come from the environment; set {_SECRET_VARIABLES[short]} instead"
    if section.startswith("api_tokens"):
        return "secrets come from the environment; name the variable that holds it in token_env"
    return "secrets come from the environment, never from this file"


def _whole(table: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}.{key}: must be a whole number of at least 1, got {value!r}")
    return value


def _minutes(table: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 525_600:
        raise ConfigError(
            f"{where}.{key}: must be a number of minutes above 0 and at most a year "
            f"(such as 15 or 0.5), got {value!r}"
        )
    return value


def _learning(table: Mapping[str, Any], where: str) -> LearningPolicy:
    defaults = dataclasses.asdict(LearningPolicy())
    policy = LearningPolicy(
        **{key: _whole(table, key, value, where) for key, value in defaults.items()}
    )
    if policy.min_duration_minutes > policy.max_duration_minutes:
        raise ConfigError(f"{where}: min_duration_minutes is greater than max_duration_minutes")
    return policy


def _http_url(name: str, raw: str) -> str:
    if raw and not raw.startswith(("http://", "https://")):
        raise ConfigError(f"{name}: must be an http:// or https:// URL, got {raw!r}")
    return raw


def _slack_secrets(env: Mapping[str, str]) -> dict[str, str]:
    bot, app = env.get("SLACK_BOT_TOKEN", ""), env.get("SLACK_APP_TOKEN", "")
    signing = env.get("SLACK_SIGNING_SECRET", "")
    # Slack's own tokens say what they are; refuse only the clear mix-ups. A stand-in for
    # Slack may issue tokens of any form: those are taken, with a warning (never the value).
    if bot.startswith("xapp-"):
        raise ConfigError(
            "SLACK_BOT_TOKEN: holds an app-level token (xapp-); it takes the bot token (xoxb-), "
            "and SLACK_APP_TOKEN the app-level one: are the two swapped?"
        )
    if app.startswith(("xoxb-", "xoxp-")):
        raise ConfigError(
            "SLACK_APP_TOKEN: holds a bot or user token (xoxb-/xoxp-); it takes the app-level "
            "token (xapp-), and SLACK_BOT_TOKEN the bot token: are the two swapped?"
        )
    for name, value, prefix in (
        ("SLACK_BOT_TOKEN", bot, "xoxb-"),
        ("SLACK_APP_TOKEN", app, "xapp-"),
    ):
        if value and not value.startswith(prefix):
            log.warning(
                "%s does not start with %s as Slack's tokens do; using it as given", name, prefix
            )
    if bot and not (app or signing):
        raise ConfigError(
            "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) "
            "nor SLACK_SIGNING_SECRET (HTTP mode) is"
        )
    if (app or signing) and not bot:
        raise ConfigError(
            "SLACK_BOT_TOKEN: required when SLACK_APP_TOKEN or SLACK_SIGNING_SECRET is set"
        )
    return {"slack_bot_token": bot, "slack_app_token": app, "slack_signing_secret": signing}


def _read_toml(path: Path) -> dict[str, Any]:
    where = f"PARAMADAPT_CONFIG ({path})"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: file not found") from None
    except OSError as error:
        raise ConfigError(f"{where}: cannot be read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{where}: not valid TOML: {error}") from None
    unknown = sorted(set(document) - SECTIONS)
    _refuse_secrets(unknown, where)
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) {', '.join(unknown)}; "
            f"{did_you_mean(unknown[0], SECTIONS)}known: {', '.join(sorted(SECTIONS))}"
        )
    return document


def _database_url(raw: str) -> str:
    try:
        return normalize_url(raw).render_as_string(hide_password=False)
    except DatabaseUrlError as error:
        raise ConfigError(f"DATABASE_URL: {error}") from None


def _host(raw: str | None) -> str:
    if raw is None or raw == "":
        return "127.0.0.1"
    if not _HOST.match(raw):
        raise ConfigError(
            f"HOST: must be a host name or IP address such as 127.0.0.1 or 0.0.0.0, got {raw!r}"
        )
    return raw


def _port(raw: str | None) -> int:
    if raw is None or raw == "":
        return 8080
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"PORT: must be a whole number from 1 to 65535, got {raw!r}")
    return int(raw)


def _log_level(raw: str | None, name: str = "LOG_LEVEL") -> str:
    level = (raw or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{name}: must be one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return level


def _risk_channel(env: Mapping[str, str], slack: Mapping[str, Any], where: str) -> str:
    channel = env.get("RISK_CHANNEL") or slack.get("risk_channel", "#risk-blocked")
    if not isinstance(channel, str) or not channel.strip():
        raise ConfigError(
            f"{where}: slack.risk_channel must be a channel name (#name, such as "
            "#risk-blocked) or a channel id (C…)"
        )
    return channel


def _roles(raw: Mapping[str, Any], where: str) -> dict[str, tuple[str, ...]]:
    unknown = set(raw) - set(ROLE_NAMES)
    if unknown:
        raise ConfigError(
            f"{where}: roles.{sorted(unknown)[0]} is not a role; roles are {', '.join(ROLE_NAMES)}"
        )
    roles: dict[str, tuple[str, ...]] = {}
    for name, ids in raw.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ConfigError(f"{where}: roles.{name} must be a list of Slack ids")
        for member in ids:
            if member != "*" and not _SLACK_ID.match(member):
                raise ConfigError(
                    f"{where}: roles.{name}: {member!r} is not a Slack user id (U…), "
                    'user-group id (S…) or "*"'
                )
        roles[name] = tuple(ids)
    return roles


def _api_tokens(raw: Any, env: Mapping[str, str], where: str) -> tuple[ApiToken, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: api_tokens must be an array of tables ([[api_tokens]])")
    tokens: list[ApiToken] = []
    for index, entry in enumerate(raw):
        label = f"{where}: api_tokens[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{label}: must be a table of name, token_env and scopes")
        _check_keys(entry, ("name", "token_env", "scopes"), where, f"api_tokens[{index}]")
        name, token_env, scopes = entry.get("name"), entry.get("token_env"), entry.get("scopes")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{label}: name is required")
        if not isinstance(token_env, str) or not token_env:
            raise ConfigError(f"{label} ({name}): token_env must name an environment variable")
        if not isinstance(scopes, list) or not scopes or set(scopes) - set(TOKEN_SCOPES):
            raise ConfigError(
                f"{label} ({name}): scopes must be a non-empty list of {', '.join(TOKEN_SCOPES)}"
            )
        secret = env.get(token_env, "")
        if len(secret) < 16:
            raise ConfigError(
                f"{token_env}: the token for api_tokens '{name}' must be set "
                "and at least 16 characters long"
            )
        tokens.append(ApiToken(name, token_env, tuple(scopes), secret))
    return tuple(tokens)


def _schema(raw: Any, where: str) -> ParamSchema:
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError(f"{where}: [parameters.NAME] entries must be tables")
    try:
        return load_schema(raw)
    except ValidationError as error:
        raise ConfigError(f"{where}: {error}") from None
