"""The real `paramadapt run`, every secret set and DEBUG logging on, driven through good
and bad traffic on Slack and on the HTTP API: no secret appears in anything it prints."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from bot.webhook.signing import signed_headers
from tests.api.conftest import blocked
from tests.e2e.conftest import ADMIN, RISK, STRANGER, VIEWER, alert_for, on_sqlite, param
from tests.fakeslack import FakeSlack
from tests.process import BIN, BotProcess, bot_environment

pytestmark = [on_sqlite, pytest.mark.slow]


def secret(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


SECRETS = {
    "SLACK_BOT_TOKEN": secret("xoxb-"),
    "SLACK_APP_TOKEN": secret("xapp-1-"),
    "ENGINE_WEBHOOK_SECRET": secret("whsec-"),
    "ENGINE_TOKEN": secret("engine-"),
    "VIEWER_TOKEN": secret("viewer-"),
    "ADMIN_TOKEN": secret("admin-"),
}
TOKEN_TABLE = '[[api_tokens]]\nname = "{0}"\ntoken_env = "{1}_TOKEN"\nscopes = ["{0}"]\n'
CONFIG = f'[roles]\nadmin = ["{ADMIN}"]\nviewer = ["{VIEWER}"]\n' + "".join(
    TOKEN_TABLE.format(scope, scope.upper()) for scope in ("engine", "viewer", "admin")
)


def signed(body: dict[str, object], secret: str, at: float | None = None) -> dict[str, object]:
    raw = json.dumps(body).encode()
    headers = signed_headers(secret, int(time.time() if at is None else at), raw)
    return {"data": raw, "headers": {**headers, "Content-Type": "application/json"}}


async def engine_traffic(base: str) -> None:
    """Accepted, replayed, badly signed, unauthenticated and under-scoped requests."""
    engine = {"Authorization": f"Bearer {SECRETS['ENGINE_TOKEN']}"}
    viewer = {"Authorization": f"Bearer {SECRETS['VIEWER_TOKEN']}"}
    good = signed(blocked("leak-1"), SECRETS["ENGINE_WEBHOOK_SECRET"])
    requests: list[tuple[str, str, dict[str, str], dict[str, object]]] = [
        ("POST", "/blocked-trades", engine, good),
        ("POST", "/blocked-trades", engine, good),  # a replay
        ("POST", "/blocked-trades", engine, signed(blocked("leak-2"), "wrong-secret")),
        (
            "POST",
            "/blocked-trades",
            engine,
            signed(blocked("x"), SECRETS["ENGINE_WEBHOOK_SECRET"], 1),
        ),
        ("GET", "/parameters", {"Authorization": f"Bearer {SECRETS['ENGINE_TOKEN']}x"}, {}),
        ("POST", "/backup-configuration", viewer, {"json": {}}),
        ("GET", "/metrics", viewer, {}),
        ("POST", "/trades", engine, {"json": {"trade_id": "t1"}}),
    ]
    async with aiohttp.ClientSession() as http:
        for method, path, auth, extra in requests:
            headers = {**auth, **extra.pop("headers", {})}  # type: ignore[dict-item]
            async with http.request(method, base + path, headers=headers, **extra) as response:
                assert response.status < 500, (path, await response.text())


async def slack_traffic(slack: FakeSlack) -> None:
    """Commands good and bad, a refused click, and Slack failing for a while."""
    await param(slack, "help", VIEWER)
    await param(slack, "set min_confidence", ADMIN)
    await param(slack, "set min_confidence 0.6 leak test", ADMIN)
    await slack.click_button(await alert_for(slack), "override_approve", STRANGER)
    slack.fail_next("chat.postMessage", status=500, times=3)
    slack.fail_next("users.info", status=200, error="invalid_auth")
    await param(slack, "override BTCUSDC BUY leak test", ADMIN)


async def test_no_secret_reaches_the_output(
    tmp_path: Path, database_url: str, slack: FakeSlack
) -> None:
    env = bot_environment(
        tmp_path,
        database_url,
        CONFIG,
        **SECRETS,
        SLACK_API_URL=slack.api_url,
        RISK_CHANNEL=RISK,
        LOG_LEVEL="DEBUG",
    )
    bot = BotProcess("run", env=env)
    try:
        await asyncio.to_thread(bot.wait_for, "Slack: connected in Socket Mode")
        await engine_traffic(f"http://127.0.0.1:{env['PORT']}")
        await slack_traffic(slack)
    finally:
        await asyncio.to_thread(bot.stop)
    checked = subprocess.run(
        [str(BIN), "config", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    output = "\n".join([*bot.lines, checked.stdout, checked.stderr])
    assert "DEBUG" in output and "refused" in output  # the traffic was logged, verbosely
    for name, value in SECRETS.items():
        assert value not in output, f"{name} appears in the output"
        assert value.split("-")[-1] not in output, f"the random part of {name} appears"
