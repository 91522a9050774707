"""Every route: 401 without or with an unknown token, 403 with the wrong scope; signed
engine requests when ENGINE_WEBHOOK_SECRET is set; secrets never logged."""

from __future__ import annotations

import json
import logging
import time

import pytest

from bot.webhook.server import ROUTES
from bot.webhook.signing import signed_headers
from core.authz import ALLOWED, IMPLIES, Role
from tests.api.conftest import SECRET, TOKENS, Api, blocked

PROTECTED = [r for r in ROUTES if r.action is not None]
SCOPES = ["engine", "viewer", "admin"]


def concrete(path: str) -> str:
    return path.replace("{id}", "1").replace("{name}", "min_confidence")


def allowed(route_action: object, scope: str) -> bool:
    roles = IMPLIES[Role(scope)]
    needed = ALLOWED[route_action]  # type: ignore[index]
    return bool(needed & roles)


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: f"{r.method} {r.path}")
async def test_no_token_is_401(sqlite_api: Api, route: object) -> None:
    status, body, _ = await sqlite_api.call(route.method, concrete(route.path), None, json={})  # type: ignore[attr-defined]
    assert status == 401
    assert "bearer token" in body["error"]


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: f"{r.method} {r.path}")
async def test_an_unknown_token_is_401(sqlite_api: Api, route: object) -> None:
    status, _, _ = await sqlite_api.call(
        route.method,  # type: ignore[attr-defined]
        concrete(route.path),  # type: ignore[attr-defined]
        None,
        headers={"Authorization": "Bearer not-a-token-of-ours"},
        json={},
    )
    assert status == 401


@pytest.mark.parametrize(
    ("route", "scope"),
    [(r, s) for r in PROTECTED for s in SCOPES],
    ids=lambda v: v if isinstance(v, str) else f"{v.method} {v.path}",
)
async def test_each_scope_is_allowed_or_refused_as_documented(
    sqlite_api: Api, route: object, scope: str
) -> None:
    status, body, _ = await sqlite_api.call(route.method, concrete(route.path), scope, json={})  # type: ignore[attr-defined]
    if allowed(route.action, scope):  # type: ignore[attr-defined]
        assert status not in (401, 403), body
    else:
        assert status == 403
        assert "scope" in body["error"]


async def test_a_refused_request_is_audited(api: Api) -> None:
    await api.call("POST", "/backup-configuration", "viewer", json={})
    (entry,) = await api.runtime.store.audit_entries()
    assert entry.outcome.value == "refused"
    assert "admin scope" in entry.detail["error"]


def signed(
    body: dict[str, object], secret: str = SECRET, at: float | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    headers = signed_headers(secret, int(at if at is not None else time.time()), raw)
    return raw, {**headers, "Content-Type": "application/json"}


async def test_a_correctly_signed_engine_request_is_accepted(signed_api: Api) -> None:
    raw, headers = signed(blocked())
    status, _, _ = await signed_api.call(
        "POST", "/blocked-trades", "engine", data=raw, headers=headers
    )
    assert status == 201


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: (json.dumps(blocked()).encode(), {"Content-Type": "application/json"}), "missing"),
        (lambda: signed(blocked(), secret="wrong-secret-wrong-secret"), "does not match"),
        (lambda: signed(blocked(), at=time.time() - 301), "more than 5 minutes off"),
        (lambda: signed(blocked(), at=time.time() + 301), "more than 5 minutes off"),
    ],
    ids=["unsigned", "bad signature", "too old", "from the future"],
)
async def test_a_badly_signed_engine_request_is_401_and_stores_nothing(
    signed_api: Api, make: object, problem: str
) -> None:
    raw, headers = make()  # type: ignore[operator]
    status, body, _ = await signed_api.call(
        "POST", "/blocked-trades", "engine", data=raw, headers=headers
    )
    assert status == 401
    assert problem in body["error"]
    _, stats, _ = await signed_api.call("GET", "/blocked-trades", "admin")
    assert stats["total"] == 0


async def test_a_body_altered_after_signing_is_refused(signed_api: Api) -> None:
    raw, headers = signed(blocked())
    tampered = raw.replace(b"97000.0", b"1.0")
    status, _, _ = await signed_api.call(
        "POST", "/blocked-trades", "engine", data=tampered, headers=headers
    )
    assert status == 401


async def test_a_retried_signed_ingest_answers_200_with_the_original_id(signed_api: Api) -> None:
    """The engine lost the answer and sends the very same signed request again."""
    raw, headers = signed(blocked("e1"))
    first, stored, _ = await signed_api.call(
        "POST", "/blocked-trades", "engine", data=raw, headers=headers
    )
    again, retried, _ = await signed_api.call(
        "POST", "/blocked-trades", "engine", data=raw, headers=headers
    )
    assert (first, again) == (201, 200)
    assert retried["results"] == [{"key": "e1", "id": stored["results"][0]["id"], "created": False}]
    _, stats, _ = await signed_api.call("GET", "/blocked-trades", "admin")
    assert stats["total"] == 1


async def test_two_signed_gets_with_the_same_timestamp_both_succeed(signed_api: Api) -> None:
    """Body-less requests signed in the same second carry the same signature."""
    headers = signed_headers(SECRET, int(time.time()), b"")
    answers = [
        await signed_api.call("GET", path, "engine", headers=headers)
        for path in ("/parameters?scope=global", "/parameters?scope=HIGH", "/overrides")
    ]
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert [answers[0][1]["scope"], answers[1][1]["scope"]] == ["global", "HIGH"]


async def test_the_engine_token_signs_its_reads_too(signed_api: Api) -> None:
    status, body, _ = await signed_api.call("GET", "/parameters", "engine")
    assert status == 401
    assert "missing X-Paramadapt-Timestamp" in body["error"]


@pytest.mark.parametrize("scope", ["viewer", "admin"])
async def test_a_viewer_or_admin_token_reads_the_engine_routes_unsigned(
    signed_api: Api, scope: str
) -> None:
    status, body, _ = await signed_api.call("GET", "/parameters", scope)
    assert status == 200
    assert body["scope"] == "global"


async def test_an_admin_token_reports_an_event_unsigned(signed_api: Api) -> None:
    """Only a token holding the engine scope signs, even where admin may act as the engine."""
    status, body, _ = await signed_api.call("POST", "/blocked-trades", "admin", json=blocked())
    assert status == 201
    assert body["created"] == 1


async def test_tokens_and_secrets_never_reach_the_logs(
    signed_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raw, headers = signed(blocked())
    await signed_api.call("POST", "/blocked-trades", "engine", data=raw, headers=headers)
    await signed_api.call("GET", "/blocked-trades", "engine")
    await signed_api.call("GET", "/parameters", None, headers={"Authorization": "Bearer guess"})
    logged = caplog.text
    for secret in [*TOKENS.values(), SECRET]:
        assert secret not in logged
