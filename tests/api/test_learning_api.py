"""The /api/learning/ endpoints and POST /candles over the real server, on SQLite and
PostgreSQL, with the specification's response shapes. Authentication and scopes of every
route are covered by test_security.py; the OpenAPI contract by test_openapi.py."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.optimizer_config import OptimizerSettings
from core import services
from core.authz import Actor, Role
from core.optimization_model import OptimizerPolicy
from core.params import Scope
from tests.api.conftest import Api
from tests.clock import MovableClock

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
NOW = datetime(2018, 1, 30, 4, 57, tzinfo=UTC)
BASELINE = {
    "long_rsi_entry": 40,
    "long_adx_min": 22,
    "sl_atr_multiplier": 1.0,
    "tp_atr_multiplier": 2.0,
}
RUN_KEYS = {
    "run_id",
    "trigger",
    "volatility_level",
    "improvement_found",
    "improvement_percentage",
    "baseline_score",
    "best_score",
    "candidates_tested",
    "duration_seconds",
    "started_at",
}


@pytest.fixture
def settings(database_url: str, backup_dir: Path) -> Settings:
    policy = OptimizerPolicy(
        lookback_days=19, symbols={"ETH_BTC": Scope.HIGH, "LTC_BTC": Scope.HIGH}, seed=11
    )
    return Settings(
        database_url=database_url,
        backup_dir=backup_dir,
        market_data_dir=DATA,
        optimizer=OptimizerSettings(policy, workers=1),
    )


@pytest.fixture
async def learning_api(api: Api) -> Api:
    """The server with its clock just after the last bar of the data, and a HIGH baseline."""
    clock = MovableClock(NOW)
    api.runtime.deps = dataclasses.replace(api.runtime.deps, clock=clock)
    admin = Actor.having("U0ADMIN", "slack", Role.ADMIN)
    for name, value in BASELINE.items():
        await services.set_parameter(api.runtime.deps, admin, Scope.HIGH, name, value, "baseline")
    return api


async def optimized(api: Api) -> dict[str, Any]:
    """Start a HIGH run over the API and wait for it; its details."""
    status, started, _ = await api.call(
        "POST", "/api/learning/optimize/", json={"volatility_level": "HIGH"}
    )
    assert status == 202, started
    await api.runtime.background.idle()
    status, run, _ = await api.call("GET", f"/api/learning/runs/{started['run_id']}/", "viewer")
    assert status == 200
    return run  # type: ignore[no-any-return]


async def test_optimize_starts_a_run_in_the_background_and_answers_at_once(
    learning_api: Api,
) -> None:
    body = {"volatility_level": "HIGH", "lookback_days": 19}
    status, started, _ = await learning_api.call("POST", "/api/learning/optimize/", json=body)
    assert status == 202
    assert started == {
        "status": "triggered",
        "task_id": started["run_id"],
        "run_id": started["run_id"],
        "volatility_level": "HIGH",
        "lookback_days": 19,
        "method": "grid",
        "message": "Optimization task started for HIGH volatility",
    }
    assert started["run_id"].startswith("opt_20180130_045700_")
    again, refused, _ = await learning_api.call("POST", "/api/learning/optimize/", json=body)
    assert again == 409 and "already running" in refused["error"]
    await learning_api.runtime.background.idle()


async def test_a_run_shows_its_outcome_inputs_and_every_candidate(learning_api: Api) -> None:
    run = await optimized(learning_api)
    assert set(run) >= RUN_KEYS
    assert (run["status"], run["trigger"], run["method"]) == ("APPLIED", "MANUAL", "grid")
    assert run["improvement_found"] and run["winner_version"] == 5
    assert run["data_range"] == {
        "start": "2018-01-11T04:55:00Z",
        "end": "2018-01-30T04:55:00Z",
        "timeframe": "5m",
        "symbols": ["ETH_BTC", "LTC_BTC"],
    }
    assert (run["seed"], run["requested_by"]) == (11, "token:admin")
    assert run["code_version"].startswith("paramadapt")
    candidates = run["candidates"]
    assert len(candidates) == 9 and candidates[0]["is_baseline"]
    assert sorted(c["status"] for c in candidates).count("ACTIVE") == 1
    assert run["results"]["decision"]["applies"] is True


async def test_history_lists_runs_with_the_specs_summary(learning_api: Api) -> None:
    await optimized(learning_api)
    status, history, _ = await learning_api.call(
        "GET", "/api/learning/history/?time_range=30d", "viewer"
    )
    assert status == 200
    (run,) = history["runs"]
    assert set(run) >= RUN_KEYS and run["candidates_tested"] == 8
    summary = history["summary"]
    assert (summary["total_runs"], summary["improvements_found"], summary["success_rate"]) == (
        1,
        1,
        100.0,
    )
    assert summary["avg_improvement_pct"] == pytest.approx(run["improvement_percentage"], abs=0.1)
    learning_api.runtime.deps.clock.advance(hours=2)  # type: ignore[attr-defined]
    _, recent, _ = await learning_api.call("GET", "/api/learning/history/?time_range=1h", "viewer")
    assert recent["runs"] == [] and recent["summary"]["total_runs"] == 0


async def test_configs_show_what_the_optimizer_measured(learning_api: Api) -> None:
    run = await optimized(learning_api)
    status, active, _ = await learning_api.call("GET", "/api/learning/configs/active/", "viewer")
    assert status == 200
    (high,) = active["active_configs"]
    assert high["config_name"] == "HIGH_optimized" and high["volatility_level"] == "HIGH"
    assert (high["version"], high["improved"], high["optimization_run_id"]) == (
        5,
        True,
        run["run_id"],
    )
    assert high["improvement_percentage"] == run["improvement_percentage"]
    assert high["fitness_score"] == run["best_score"]
    assert {"win_rate", "profit_factor", "sharpe_ratio", "roi", "max_drawdown"} <= set(
        high["metrics"]
    )
    _, listed, _ = await learning_api.call(
        "GET", "/api/learning/configs/?volatility_level=HIGH&limit=2", "viewer"
    )
    assert [c["version"] for c in listed["configs"]] == [5, 4]
    assert listed["configs"][1]["config_name"] == "HIGH_slack"
    assert listed["configs"][1]["metrics"] is None and not listed["configs"][1]["improved"]


async def test_compare_two_configs_by_fitness(learning_api: Api) -> None:
    await optimized(learning_api)
    _, listed, _ = await learning_api.call("GET", "/api/learning/configs/?limit=2", "viewer")
    winner, baseline = (c["id"] for c in listed["configs"])
    status, same, _ = await learning_api.call(
        "GET", f"/api/learning/compare/?config_a_id={winner}&config_b_id={winner}", "viewer"
    )
    assert status == 200
    assert (same["winner"], same["improvement_percentage"]) == ("tie", 0.0)
    assert same["config_a"]["name"] == "HIGH_optimized" and same["config_a"]["version"] == 5
    _, unknown, _ = await learning_api.call(
        "GET", f"/api/learning/compare/?config_a_id={baseline}&config_b_id={winner}", "viewer"
    )
    # Nobody measured the baseline version: its score is unknown, so is the winner.
    assert unknown["config_a"]["score"] is None and unknown["winner"] is None
    missing, body, _ = await learning_api.call(
        "GET", f"/api/learning/compare/?config_a_id=999999&config_b_id={winner}", "viewer"
    )
    assert missing == 404 and "999999" in body["error"]


async def test_counters_show_every_level_against_the_threshold(learning_api: Api) -> None:
    await optimized(learning_api)
    status, body, _ = await learning_api.call("GET", "/api/learning/counters/", "viewer")
    assert status == 200
    assert body["counters"] == [
        {
            "volatility_level": "HIGH",
            "count": 0,
            "threshold": 200,
            "percentage": 0.0,
            "last_optimization": "2018-01-30T04:57:00Z",
        },
        {
            "volatility_level": "MEDIUM",
            "count": 0,
            "threshold": 200,
            "percentage": 0.0,
            "last_optimization": None,
        },
        {
            "volatility_level": "LOW",
            "count": 0,
            "threshold": 200,
            "percentage": 0.0,
            "last_optimization": None,
        },
    ]


async def test_metrics_give_the_overall_learning_statistics(learning_api: Api) -> None:
    run = await optimized(learning_api)
    status, metrics, _ = await learning_api.call("GET", "/api/learning/metrics/", "viewer")
    assert status == 200
    assert metrics["overview"] == {
        "total_optimization_runs": 1,
        "successful_runs": 1,
        "improvements_found": 1,
        "success_rate": 100.0,
        "avg_improvement_pct": pytest.approx(run["improvement_percentage"], abs=0.1),
        "avg_candidates_tested": 8.0,
    }
    assert metrics["recent_activity"] == {"runs_last_30_days": 1, "improvements_last_30_days": 1}
    assert metrics["configurations"] == {"total_configs": 5, "active_configs": 1}
    assert [v["volatility"] for v in metrics["by_volatility"]] == ["HIGH", "MEDIUM", "LOW"]
    assert metrics["by_volatility"][0]["success_rate"] == 100.0


async def test_applying_a_stored_config_makes_its_values_active_again(learning_api: Api) -> None:
    await optimized(learning_api)
    _, listed, _ = await learning_api.call("GET", "/api/learning/configs/?limit=2", "viewer")
    baseline_id = listed["configs"][1]["id"]
    status, change, _ = await learning_api.call(
        "POST", f"/api/learning/configs/{baseline_id}/apply/", json={"reason": "back to v4"}
    )
    assert status == 200
    assert (change["scope"], change["outcome"], change["version"]) == ("HIGH", "applied", 6)
    assert change["backup_id"].startswith("HIGH-")
    params, _ = await services.effective_parameters(learning_api.runtime.deps, Scope.HIGH)
    assert {name: params[name] for name in BASELINE} == BASELINE
    stale, body, _ = await learning_api.call(
        "POST", f"/api/learning/configs/{baseline_id}/apply/", json={"based_on": 4}
    )
    assert stale == 409 and "active version is 6" in body["error"]
    missing, _, _ = await learning_api.call("POST", "/api/learning/configs/999999/apply/", json={})
    assert missing == 404


async def test_an_unknown_run_is_404(learning_api: Api) -> None:
    status, body, _ = await learning_api.call("GET", "/api/learning/runs/opt_nope/", "viewer")
    assert status == 404 and "opt_nope" in body["error"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/learning/optimize/", {"volatility_level": "EXTREME"}, "volatility_level"),
        (
            "POST",
            "/api/learning/optimize/",
            {"volatility_level": "HIGH", "lookback_days": 0},
            "lookback_days",
        ),
        (
            "POST",
            "/api/learning/optimize/",
            {"volatility_level": "HIGH", "method": "genetic"},
            "method",
        ),
        ("POST", "/api/learning/optimize/", {"volatility_level": "HIGH", "scope": "x"}, "scope"),
        ("POST", "/api/learning/optimize/", {}, "volatility_level"),
        ("GET", "/api/learning/history/?time_range=30x", None, "time_range"),
        ("GET", "/api/learning/configs/?status=LIVE", None, "status"),
        ("GET", "/api/learning/compare/?config_a_id=1", None, "config_b_id"),
        ("POST", "/api/learning/configs/1/apply/", {"based_on": "4"}, "based_on"),
    ],
)
async def test_invalid_input_is_422_naming_the_field(
    learning_api: Api, method: str, path: str, body: dict[str, Any] | None, field: str
) -> None:
    status, answer, _ = await learning_api.call(method, path, json=body)
    assert status == 422
    assert field in {problem["field"] for problem in answer["problems"]}


# --- POST /candles -----------------------------------------------------------------------


def candle(minute: int, **changes: float) -> dict[str, Any]:
    bar = {"open": 1.5, "high": 2.0, "low": 1.0, "close": 1.8, "volume": 3.0}
    return {"time": f"2026-03-02T10:{minute:02d}:00+00:00", **bar, **changes}


async def test_the_engine_reports_candles_once_each(learning_api: Api) -> None:
    body = {"symbol": "XRP/BTC", "timeframe": "5m", "candles": [candle(0), candle(5)]}
    status, stored, _ = await learning_api.call("POST", "/candles", "engine", json=body)
    assert (status, stored) == (
        201,
        {"symbol": "XRP/BTC", "timeframe": "5m", "created": 2, "duplicates": 0},
    )
    body["candles"].append(candle(10))
    status, again, _ = await learning_api.call("POST", "/candles", "engine", json=body)
    assert (status, again["created"], again["duplicates"]) == (201, 1, 2)
    status, _, _ = await learning_api.call("POST", "/candles", "engine", json=body)
    assert status == 200


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (candle(3), "not on the 5m grid"),
        (candle(5, low=1.9), "needs low <= open, close <= high"),
    ],
)
async def test_candles_that_contradict_themselves_are_refused(
    learning_api: Api, bad: dict[str, Any], problem: str
) -> None:
    body = {"symbol": "XRP/BTC", "timeframe": "5m", "candles": [candle(0), bad]}
    status, answer, _ = await learning_api.call("POST", "/candles", "engine", json=body)
    assert status == 422 and problem in answer["error"]


async def test_a_malformed_candle_is_422_naming_the_field(learning_api: Api) -> None:
    body = {"symbol": "XRP/BTC", "timeframe": "5x", "candles": [candle(0, open=-1)]}
    status, answer, _ = await learning_api.call("POST", "/candles", "engine", json=body)
    assert status == 422
    assert {"timeframe", "candles[0].open"} <= {p["field"] for p in answer["problems"]}
