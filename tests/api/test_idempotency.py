"""The Idempotency-Key header: a POST retried with the same key runs once and gets the first
answer again; without the header every request runs as before."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bot.config import Settings
from bot.runtime import open_runtime
from core import trades
from core.authz import Actor, Role
from core.models import Side
from core.ports import RequestFingerprint
from tests.api.conftest import Api, Shifted, api_settings, blocked, serve_runtime
from tests.e2e.conftest import APP_TOKEN, BOT_TOKEN, RISK, running_bot
from tests.fakeslack import FakeSlack

KEY = {"Idempotency-Key": "7f3c2b9e-retry-me"}
OPERATOR = Actor.having("U0OPS", "slack", Role.OPERATOR)


@pytest.fixture
async def api(settings: Settings, slack: FakeSlack) -> AsyncIterator[Api]:
    """The API with the bot running against the fake Slack, as `paramadapt run` serves it."""
    slack_settings = api_settings(
        settings,
        slack_bot_token=BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_api_url=slack.api_url,
        risk_channel=RISK,
    )
    async with open_runtime(slack_settings) as runtime, running_bot(runtime) as bot:
        async for client in serve_runtime(runtime, bot):
            yield client


@dataclass
class Case:
    """A POST, another request to reuse its key with, and how many times it took effect."""

    scope: str
    path: str
    body: dict[str, Any] | None
    other: tuple[str, dict[str, Any] | None]
    effects: Callable[[], Awaitable[int]]
    answer: int  # the status of the first request
    repeated_without_key: int  # the status of a second identical request without a key


async def backup_case(api: Api, _slack: FakeSlack) -> Case:
    async def backups() -> int:
        _, listing, _ = await api.call("GET", "/configuration-backups", "viewer")
        return len(listing["backups"])

    body = {"reason": "before FOMC"}
    other = ("/backup-configuration", {"reason": "after FOMC"})
    return Case("admin", "/backup-configuration", body, other, backups, 201, 201)


async def message_case(api: Api, slack: FakeSlack) -> Case:
    async def posted() -> int:
        return sum(m.get("text") == "Engine restarting" for m in slack.messages(RISK))

    body = {"channel": RISK, "text": "Engine restarting"}
    other = ("/send-message", {"channel": RISK, "text": "Engine stopping"})
    return Case("admin", "/send-message", body, other, posted, 201, 201)


async def consume_case(api: Api, _slack: FakeSlack) -> Case:
    deps = api.runtime.deps
    first = await trades.grant_override(deps, OPERATOR, "BTCUSDC", Side.BUY, "FOMC dip")
    second = await trades.grant_override(deps, OPERATOR, "ETHUSDC", Side.BUY, "FOMC dip")

    async def consumed() -> int:
        _, listed, _ = await api.call("GET", "/overrides", "engine")
        return 2 - len(listed["overrides"])

    other = (f"/overrides/{second.id}/consume", None)
    return Case("engine", f"/overrides/{first.id}/consume", None, other, consumed, 200, 409)


async def learning_case(api: Api, _slack: FakeSlack) -> Case:
    async def sessions() -> int:
        _, listing, _ = await api.call("GET", "/learning-sessions", "viewer")
        return len(listing["sessions"])

    body = {"duration_minutes": 30, "reason": "explore"}
    other = ("/start-learning-session", {"duration_minutes": 60, "reason": "explore"})
    return Case("admin", "/start-learning-session", body, other, sessions, 201, 409)


@pytest.fixture(params=[backup_case, message_case, consume_case, learning_case])
async def case(request: pytest.FixtureRequest, api: Api, slack: FakeSlack) -> Case:
    made: Case = await request.param(api, slack)
    return made


async def post(
    api: Api, case: Case, headers: dict[str, str] | None = None
) -> tuple[int, Any, aiohttp.ClientResponse]:
    body = {} if case.body is None else {"json": case.body}
    return await api.call("POST", case.path, case.scope, headers=headers or {}, **body)


async def test_a_retry_with_the_same_key_gets_the_first_answer_and_runs_once(
    api: Api, case: Case
) -> None:
    status, first, response = await post(api, case, KEY)
    assert status == case.answer and "Idempotent-Replayed" not in response.headers
    again, replayed, response = await post(api, case, KEY)
    assert (again, replayed) == (status, first)
    assert response.headers["Idempotent-Replayed"] == "true"
    assert await case.effects() == 1


async def test_the_same_key_with_another_request_is_refused_with_422(api: Api, case: Case) -> None:
    await post(api, case, KEY)
    path, body = case.other
    status, refused, _ = await api.call("POST", path, case.scope, headers=KEY, json=body)
    assert status == 422
    assert refused["problems"][0]["field"] == "Idempotency-Key"
    assert "already used" in refused["problems"][0]["problem"]
    assert await case.effects() == 1


async def test_without_a_key_a_repeated_request_runs_again(api: Api, case: Case) -> None:
    await post(api, case)
    status, _, response = await post(api, case)
    assert status == case.repeated_without_key
    assert "Idempotent-Replayed" not in response.headers
    assert await case.effects() == (2 if status < 300 else 1)


async def test_concurrent_requests_with_one_key_take_effect_once(api: Api, case: Case) -> None:
    answers = await asyncio.gather(*(post(api, case, KEY) for _ in range(5)))
    assert {status for status, _, _ in answers} <= {case.answer, 409}  # 409: first still runs
    done = [body for status, body, _ in answers if status == case.answer]
    assert done and all(body == done[0] for body in done)
    assert await case.effects() == 1


async def test_an_answer_of_500_or_more_frees_the_key_for_the_retry(sqlite_api: Api) -> None:
    broken = sqlite_api.runtime.settings.backup_dir / "global"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text("a file where the backups' folder should be")
    status, _, _ = await sqlite_api.call("POST", "/backup-configuration", headers=KEY)
    assert status == 503
    broken.unlink()
    status, _, response = await sqlite_api.call("POST", "/backup-configuration", headers=KEY)
    assert status == 201 and "Idempotent-Replayed" not in response.headers


async def test_a_key_runs_again_once_it_expired_a_day_later(sqlite_api: Api) -> None:
    first = await sqlite_api.call("POST", "/backup-configuration", headers=KEY)
    runtime = sqlite_api.runtime
    runtime.deps = dataclasses.replace(runtime.deps, clock=Shifted(runtime.deps.clock, 24 * 61))
    second = await sqlite_api.call("POST", "/backup-configuration", headers=KEY)
    assert (first[0], second[0]) == (201, 201)
    assert first[1]["id"] != second[1]["id"]


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "must be 1 to 255 characters long, not 0"),
        ("k" * 256, "must be 1 to 255 characters long, not 256"),
        ("tab\there", "must be printable ASCII characters only"),
    ],
)
async def test_an_invalid_key_is_refused_with_422_and_nothing_runs(
    sqlite_api: Api, key: str, problem: str
) -> None:
    headers = {"Idempotency-Key": key}
    status, body, _ = await sqlite_api.call("POST", "/backup-configuration", headers=headers)
    assert (status, body["problems"]) == (422, [{"field": "Idempotency-Key", "problem": problem}])
    _, listing, _ = await sqlite_api.call("GET", "/configuration-backups", "viewer")
    assert listing["backups"] == []


async def test_engine_event_reports_ignore_the_header(sqlite_api: Api) -> None:
    """They are idempotent by their own event_id: one key may carry several reports."""
    for event_id in ("e1", "e2"):
        status, _, response = await sqlite_api.call(
            "POST", "/blocked-trades", "engine", json=blocked(event_id), headers=KEY
        )
        assert status == 201 and "Idempotent-Replayed" not in response.headers


async def test_a_retry_while_the_first_request_runs_is_refused_with_409(sqlite_api: Api) -> None:
    """The first request, still running (here, on another replica), holds the key."""
    first = RequestFingerprint("POST", "/backup-configuration", hashlib.sha256(b"").hexdigest())
    now = sqlite_api.runtime.deps.clock.now()
    await sqlite_api.runtime.idempotency.claim("token:admin", KEY["Idempotency-Key"], first, now)
    status, body, _ = await sqlite_api.call("POST", "/backup-configuration", headers=KEY)
    assert status == 409
    assert "still in progress" in body["error"]
