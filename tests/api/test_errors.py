"""Whatever a client sends, the answer is JSON saying what was wrong: every 422 names the
field at fault, odd input is never a 500 or a database error, an unexpected failure is a
logged JSON 500 counted in /metrics, and nothing a client sends can forge a log line."""

from __future__ import annotations

import logging
import re

import pytest
from aiohttp import web

from bot.runtime import Runtime
from bot.webhook.routing import Call, Route, wrap
from bot.webhook.server import build_http_app
from tests.api.conftest import Api, closed, serve_app

SET = {"reason": "test"}


# --- every 422 names the field at fault --------------------------------------------------


@pytest.mark.parametrize(
    ("path", "scope", "body", "field", "problem"),
    [
        (
            "/trades",
            "engine",
            closed("rev", exit_time="2026-11-23T00:00:00+00:00"),
            "exit_time",
            "is before entry_time",
        ),
        (
            "/trades",
            "engine",
            {"events": [closed("a"), closed("rev", exit_time="2026-11-23T00:00:00+00:00")]},
            "events[1].exit_time",
            "is before entry_time",
        ),
        (
            "/parameters/min_confidence",
            "admin",
            {**SET, "value": 5},
            "value",
            "min_confidence must be a number from 0 to 1; got 5",
        ),
        (
            "/parameters/long_rsi_entry",
            "admin",
            {**SET, "value": 10**400},
            "value",
            "long_rsi_entry must be a whole number from 5 to 95; got 1000000000",
        ),
        (
            "/parameters/long_rsi_entry",
            "admin",
            {**SET, "value": "31"},
            "value",
            "must be a JSON number",
        ),
        (
            "/start-learning-session",
            "admin",
            {"duration_minutes": 500, "reason": "explore"},
            "duration_minutes",
            "a learning session lasts 5 to 240 minutes",
        ),
        (
            "/start-learning-session",
            "admin",
            {"duration_minutes": 30, "reason": "explore", "relax_pct": {"min_confidence": 50}},
            "relax_pct.min_confidence",
            "min_confidence can be lowered by",
        ),
        (
            "/start-learning-session",
            "admin",
            {"duration_minutes": 30, "reason": "explore", "relax_pct": {"long_adx_min": 10}},
            "relax_pct.long_adx_min",
            "long_adx_min is not relaxed by learning sessions",
        ),
    ],
    ids=[
        "exit before entry",
        "exit before entry in a batch",
        "value out of bounds",
        "value of 400 digits",
        "value as text",
        "duration",
        "relax_pct out of range",
        "relax_pct not relaxable",
    ],
)
async def test_a_refused_value_is_422_naming_its_field(
    api: Api, path: str, scope: str, body: dict[str, object], field: str, problem: str
) -> None:
    status, answer, _ = await api.call("POST", path, scope, json=body)
    assert status == 422, answer
    assert [p["field"] for p in answer["problems"]] == [field]
    assert problem in answer["problems"][0]["problem"]
    assert (await api.call("GET", "/parameter-changes", "viewer"))[1]["changes"] == []
    assert (await api.call("GET", "/learning-session-status", "viewer"))[1]["active"] is False


async def test_a_use_case_refusal_without_one_field_at_fault_names_the_body(api: Api) -> None:
    """A bar off its timeframe's grid: a rule between fields (and the timeframe)."""
    bar = {"time": "2026-03-02T10:03:00+00:00", "open": 1, "high": 2, "low": 1, "close": 1.5}
    body = {"symbol": "XRP/BTC", "timeframe": "5m", "candles": [{**bar, "volume": 3}]}
    status, answer, _ = await api.call("POST", "/candles", "engine", json=body)
    assert status == 422
    assert answer["problems"] == [{"field": "body", "problem": answer["error"]}]


# --- odd input is a 422, not a 500 or a database error -------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "scope", "body", "field"),
    [
        ("POST", "/configuration-backups/%00/restore", "admin", {}, "id"),
        ("POST", "/configuration-backups/a%0Ab/restore", "admin", {}, "id"),
        ("GET", "/api/learning/runs/a%00b/", "viewer", None, "id"),
        ("POST", "/parameters/a%00b", "admin", {**SET, "value": 1}, "name"),
        ("POST", "/parameters/a%1Bb", "admin", {**SET, "value": 1}, "name"),
    ],
    ids=["restore NUL", "restore newline", "run NUL", "parameter NUL", "parameter ESC"],
)
async def test_a_control_character_in_the_path_is_422_naming_the_path_parameter(
    api: Api, method: str, path: str, scope: str, body: dict[str, object] | None, field: str
) -> None:
    status, answer, _ = await api.call(method, path, scope, json=body)
    assert status == 422, answer
    assert answer["problems"] == [
        {"field": field, "problem": "must not contain control characters (such as %00 or %0A)"}
    ]


async def test_a_control_character_in_a_query_value_is_422_naming_it(api: Api) -> None:
    status, answer, _ = await api.call("GET", "/parameter-changes?parameter=a%00b", "viewer")
    assert status == 422
    assert [p["field"] for p in answer["problems"]] == ["parameter"]


async def test_a_window_reaching_before_the_year_1_is_422_naming_until_and_window(
    api: Api,
) -> None:
    status, answer, _ = await api.call(
        "GET", "/blocked-trades?until=0001-01-01T12:00:00%2B00:00&window=2d", "viewer"
    )
    assert status == 422
    (problem,) = answer["problems"]
    assert problem["field"] == "until"
    assert "window (2d)" in problem["problem"] and "before the year 1" in problem["problem"]


async def test_since_later_than_until_is_422(api: Api) -> None:
    status, answer, _ = await api.call(
        "GET",
        "/blocked-trades?since=2026-11-24T00:00:00%2B00:00&until=2026-11-23T00:00:00%2B00:00",
        "viewer",
    )
    assert status == 422
    assert answer["problems"] == [
        {"field": "since", "problem": "must not be later than until (2026-11-23T00:00:00+00:00)"}
    ]


@pytest.mark.parametrize(
    ("path", "field", "problem"),
    [
        (
            "/blocked-trades?windw=7d",
            "windw",
            "unknown query parameter; known: window, since, until, limit, offset",
        ),
        ("/parameters?scope=global&scope=HIGH", "scope", "must be given once"),
        ("/api/learning/history/?limit=5&limit=6", "limit", "must be given once"),
    ],
    ids=["unknown", "repeated", "repeated number"],
)
async def test_an_unknown_or_repeated_query_parameter_is_422_naming_it(
    sqlite_api: Api, path: str, field: str, problem: str
) -> None:
    status, answer, _ = await sqlite_api.call("GET", path, "viewer")
    assert status == 422
    assert answer["problems"] == [{"field": field, "problem": problem}]


# --- an unexpected failure is a JSON 500, logged and counted --------------------------------


async def test_an_unexpected_exception_is_a_logged_json_500_counted_in_metrics(
    sqlite_runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """A route of this test's own, added to the real application, fails as a bug would."""

    async def fails(_call: Call) -> web.Response:
        raise KeyError("a secret internal detail")

    app = build_http_app(sqlite_runtime)
    route = Route("GET", "/fails", fails, "fails", None, "test", {200: None})
    app.router.add_route(route.method, route.path, wrap(route))
    async with serve_app(app, sqlite_runtime) as client:
        status, body, response = await client.call("GET", "/fails", None)
        _, metrics, _ = await client.call("GET", "/metrics", "viewer")

    assert (status, response.content_type) == (500, "application/json")
    assert body == {"error": "internal error", "reference": body["reference"]}
    (logged,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert body["reference"] in logged.getMessage() and "GET /fails" in logged.getMessage()
    assert logged.exc_info is not None and "a secret internal detail" in caplog.text
    counted = 'paramadapt_http_requests_total{method="GET",route="/fails",status="500"} '
    assert re.search(re.escape(counted) + r"[1-9]", metrics)


async def test_a_request_cannot_forge_a_log_line(
    sqlite_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    forged = "/nothing%0A2026-11-23 09:00:00,000 WARNING core.services FORGED"
    status, _, _ = await sqlite_api.call("GET", forged, "viewer")
    assert status == 404
    logged = [r.getMessage() for r in caplog.records if "FORGED" in r.getMessage()]
    assert logged, "the refused request is logged"
    assert all("\n" not in line and "\r" not in line for line in logged)
