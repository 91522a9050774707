"""Only finite numbers get in: NaN and Infinity are not JSON, and 1e400 (which reads as
infinity) fits no column. Each is a 422 naming where it is, on either database, and nothing
is stored, so no answer can ever carry `NaN` or `Infinity` (which is not JSON either)."""

from __future__ import annotations

import json
import math

import pytest
from aiohttp import web

from bot.runtime import Runtime
from bot.webhook.routing import Call, Route, json_response, wrap
from bot.webhook.server import build_http_app
from tests.api.conftest import Api, blocked, closed, serve_app

JSON = {"Content-Type": "application/json"}
LEARNING = {"duration_minutes": 30, "reason": "explore"}
SET = {"reason": "test"}


def raw(document: dict[str, object], **literals: str) -> str:
    """The document as JSON, with `field: literal` spliced in as sent (1e400, NaN, …)."""
    text = json.dumps(document)
    for name, literal in literals.items():
        text = text.replace(f'"{name}": "@"', f'"{name}": {literal}')
        text = text.replace(f'"{name}": ["@"]', f'"{name}": [{literal}]')
    return text


@pytest.mark.parametrize(
    ("path", "scope", "body", "field"),
    [
        ("/blocked-trades", "engine", raw(blocked(price="@"), price="1e400"), "price"),
        ("/blocked-trades", "engine", raw(blocked(data={"x": "@"}), x="1e400"), "data.x"),
        ("/blocked-trades", "engine", raw(blocked(data={"x": ["@"]}), x="-1e400"), "data.x"),
        ("/trades", "engine", raw(closed(pnl="@"), pnl="1e400"), "pnl"),
        (
            "/trades",
            "engine",
            raw({"events": [closed("a"), closed("b", pnl_pct="@")]}, pnl_pct="-1e999"),
            "events[1].pnl_pct",
        ),
        ("/parameters/min_confidence", "admin", raw({**SET, "value": "@"}, value="1e400"), "value"),
        (
            "/start-learning-session",
            "admin",
            raw({**LEARNING, "relax_pct": {"min_confidence": "@"}}, min_confidence="1e400"),
            "relax_pct.min_confidence",
        ),
    ],
    ids=["price", "data", "data-list", "pnl", "batch", "parameter", "relax_pct"],
)
async def test_a_number_too_large_for_a_float_is_422_naming_it(
    api: Api, path: str, scope: str, body: str, field: str
) -> None:
    status, answer, _ = await api.call("POST", path, scope, data=body, headers=JSON)
    assert status == 422, answer
    (problem,) = [p for p in answer["problems"] if p["field"].startswith(field)]
    assert "finite" in problem["problem"]
    await nothing_was_stored(api)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(
    ("path", "scope", "body"),
    [
        ("/blocked-trades", "engine", blocked(price="@")),
        ("/blocked-trades", "engine", blocked(data={"x": "@"})),
        ("/trades", "engine", closed(pnl="@")),
        ("/parameters/min_confidence", "admin", {**SET, "value": "@"}),
        ("/start-learning-session", "admin", {**LEARNING, "relax_pct": {"min_confidence": "@"}}),
    ],
    ids=["price", "data", "pnl", "parameter", "relax_pct"],
)
async def test_nan_and_infinity_are_not_json_and_are_422_naming_the_body(
    api: Api, path: str, scope: str, body: dict[str, object], literal: str
) -> None:
    sent = json.dumps(body).replace('"@"', literal)
    status, answer, _ = await api.call("POST", path, scope, data=sent, headers=JSON)
    assert status == 422, answer
    assert answer["problems"] == [
        {
            "field": "body",
            "problem": f"{literal} is not a JSON number (JSON has no NaN or Infinity)",
        }
    ]
    await nothing_was_stored(api)


async def nothing_was_stored(api: Api) -> None:
    """Every read still answers valid JSON, and shows nothing of the refused requests."""
    for path, empty in [
        ("/blocked-trades", lambda body: body["total"] == 0),
        ("/learning-session-status", lambda body: body["active"] is False),
        ("/parameter-changes", lambda body: body["changes"] == []),
        ("/api/learning/counters/", lambda body: all(c["count"] == 0 for c in body["counters"])),
    ]:
        async with api.session.get(api.base + path, headers=api.headers("viewer")) as response:
            text = await response.text()
        body = json.loads(text, parse_constant=pytest.fail)  # NaN/Infinity would fail here
        assert response.status == 200 and empty(body), (path, body)


async def test_an_answer_holding_nan_is_a_logged_500_never_invalid_json(
    sqlite_runtime: Runtime,
) -> None:
    """The last line of defence: a handler answering NaN is a bug, not a JSON document."""

    async def nan(_call: Call) -> web.Response:
        return json_response({"win_rate": math.nan})

    app = build_http_app(sqlite_runtime)
    route = Route("GET", "/nan", nan, "answers NaN", None, "test", {200: None})
    app.router.add_route(route.method, route.path, wrap(route))
    async with serve_app(app, sqlite_runtime) as client:
        status, body, _ = await client.call("GET", "/nan", None)
        assert (status, body["error"]) == (500, "internal error")
