"""A local engine token, so that `make run` and `paramadapt simulate` work together untouched.

Only for console mode (no Slack tokens) on a loopback address, and only when the
configuration names no engine token: `paramadapt run` then accepts a random token kept in
`var/engine-token` (created once, mode 600, beside the default database), and
`paramadapt simulate` reads it when no token variable is set. A deployment (Slack tokens, or
an address other hosts reach) never gets one.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from dataclasses import replace
from pathlib import Path

from bot.config import ApiToken, Settings
from core.authz import Role

log = logging.getLogger(__name__)

LOCAL_TOKEN_FILE = Path("var/engine-token")


def with_local_engine_token(settings: Settings, path: Path = LOCAL_TOKEN_FILE) -> Settings:
    if not _local_console(settings) or any(Role.ENGINE in t.roles for t in settings.api_tokens):
        return settings
    token = read_local_engine_token(path) or _create(path)
    log.info("console mode: the engine token for `paramadapt simulate` here is in %s", path)
    local = ApiToken("local-engine", str(path), (Role.ENGINE.value,), token)
    return replace(settings, api_tokens=(*settings.api_tokens, local))


def read_local_engine_token(path: Path = LOCAL_TOKEN_FILE) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _local_console(settings: Settings) -> bool:
    if settings.slack_mode != "console":
        return False
    if settings.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(settings.host).is_loopback
    except ValueError:
        return False


def _create(path: Path) -> str:
    """Written aside, then renamed into place: the file is whole or absent (an empty one,
    left by a crash or a `touch`, is replaced). Two first starts at once keep one token."""
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    try:
        os.link(aside, path)  # fails if another start got there first
    except FileExistsError:
        existing = read_local_engine_token(path)
        if existing:
            return existing
        os.replace(aside, path)  # the one there is empty
        return token
    finally:
        aside.unlink(missing_ok=True)
    return token
