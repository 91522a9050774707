"""Every route: 401 without or with an unknown token, 403 with the wrong scope; signed
engine requests when ENGINE_WEBHOOK_SECRET is set; secrets never logged."""

from __future__ import annotations

import json
import logging
import time

import pytest

from bot.webhook.server import ROUTES
from bot.webhook.signing import signed_headers
from core import trades
from core.authz import ALLOWED, IMPLIES, Actor, Role
from core.models import Side
from tests.api.conftest import SECRET, TOKENS, Api, blocked

PROTECTED = [r for r in ROUTES if r.action is not None]
OPERATOR = Actor.having("U0OPS", "slack", Role.OPERATOR)
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


@pytest.mark.parametrize("body", [b"{}", b""], ids=["{}", "empty"])
async def test_a_consume_is_verified_over_the_body_as_sent(signed_api: Api, body: bytes) -> None:
    """The signature covers "<timestamp>.<raw body>" on every signed route, a route that
    reads nothing from the body included: an engine that sends `{}` signs `{}`."""
    override_id = await grant(signed_api)
    headers = signed_headers(SECRET, int(time.time()), body)
    status, answer, _ = await signed_api.call(
        "POST",
        f"/overrides/{override_id}/consume",
        "engine",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert status == 200, answer
    assert answer["status"] == "CONSUMED"


async def test_a_consume_signed_over_another_body_is_refused(signed_api: Api) -> None:
    override_id = await grant(signed_api)
    headers = signed_headers(SECRET, int(time.time()), b"")
    status, answer, _ = await signed_api.call(
        "POST", f"/overrides/{override_id}/consume", "engine", data=b"{}", headers=headers
    )
    assert (status, answer["error"]) == (401, "invalid request signature: signature does not match")


@pytest.mark.parametrize("timestamp", ["²", "１７００", "1" * 5000, "-1", "1e9"])
async def test_a_timestamp_that_is_not_unix_seconds_is_401_saying_so(
    signed_api: Api, timestamp: str
) -> None:
    raw = json.dumps(blocked()).encode()
    headers = {
        "X-Paramadapt-Timestamp": timestamp,
        "X-Paramadapt-Signature": "sha256=" + "0" * 64,
        "Content-Type": "application/json",
    }
    status, body, response = await signed_api.call(
        "POST", "/blocked-trades", "engine", data=raw, headers=headers
    )
    assert status == 401
    assert response.content_type == "application/json"
    assert body["error"] == (
        "invalid request signature: X-Paramadapt-Timestamp must be a Unix timestamp in "
        "seconds (1 to 12 ASCII digits)"
    )


async def test_a_signature_that_is_not_ascii_does_not_match(signed_api: Api) -> None:
    raw, headers = signed(blocked())
    headers["X-Paramadapt-Signature"] = "sha256=é"
    status, body, _ = await signed_api.call(
        "POST", "/blocked-trades", "engine", data=raw, headers=headers
    )
    assert (status, body["error"]) == (401, "invalid request signature: signature does not match")


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/parameters", {}),
        ("/parameters", {"Authorization": "Bearer not-a-token-of-ours"}),
        ("/parameters", {"Authorization": f"Basic {TOKENS['viewer']}"}),
    ],
    ids=["no token", "unknown token", "another scheme"],
)
async def test_a_401_says_how_to_authenticate(
    sqlite_api: Api, path: str, headers: dict[str, str]
) -> None:
    status, _, response = await sqlite_api.call("GET", path, None, headers=headers)
    assert status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="paramadapt"'


async def test_a_bad_signature_401_says_how_to_authenticate_too(signed_api: Api) -> None:
    status, _, response = await signed_api.call("GET", "/parameters", "engine")
    assert status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
async def test_the_bearer_scheme_is_case_insensitive(sqlite_api: Api, scheme: str) -> None:
    """RFC 7235: the authentication scheme's name is case-insensitive."""
    header = {"Authorization": f"{scheme} {TOKENS['viewer']}"}
    status, body, _ = await sqlite_api.call("GET", "/parameters", None, headers=header)
    assert (status, body["scope"]) == (200, "global")


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/start-learning-session"), ("POST", "/end-learning-session")],
)
async def test_a_403_names_the_token_scope_that_would_do(
    sqlite_api: Api, method: str, path: str
) -> None:
    """People hold an operator role in Slack; tokens have no such scope."""
    status, body, _ = await sqlite_api.call(method, path, "viewer", json={})
    assert status == 403
    assert body["error"] == (
        f"{method} {path} needs a token with the admin scope; token 'viewer' has viewer"
    )


async def grant(api: Api) -> int:
    override = await trades.grant_override(
        api.runtime.deps, OPERATOR, "BTCUSDC", Side.BUY, "FOMC dip"
    )
    return override.id
