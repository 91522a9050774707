"""GET /blocked-trades adds what the window's blocked trades would have done, on the real
ETH/BTC and LTC/BTC 5-minute candles of /work/shared/data (January 2018)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.optimizer_config import OptimizerSettings
from core.optimization_model import OptimizerPolicy
from core.params import Scope
from tests.api.conftest import Api, api_settings, blocked, serve
from tests.clock import MovableClock

DATA = Path("/work/shared/data")
WINDOW = {"since": "2018-01-10T00:00:00+00:00", "until": "2018-01-31T00:00:00+00:00"}


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    """ETH/BTC is a HIGH symbol; the clock starts on 2018-01-10 at 06:00."""
    optimizer = OptimizerSettings(OptimizerPolicy(symbols={"ETH/BTC": Scope.HIGH}), workers=1)
    changed = api_settings(settings, market_data_dir=DATA, optimizer=optimizer)
    async for client in serve(changed):
        clock = MovableClock(datetime(2018, 1, 10, 6, tzinfo=UTC))
        client.runtime.deps = dataclasses.replace(client.runtime.deps, clock=clock)
        yield client


async def set_value(api: Api, name: str, value: float, scope: str) -> None:
    body = {"value": value, "scope": scope, "reason": "test"}
    status, _, _ = await api.call("POST", f"/parameters/{name}", "admin", json=body)
    assert status == 200


async def report(api: Api) -> dict[str, Any]:
    api.runtime.deps.clock.at = datetime(2018, 2, 5, tzinfo=UTC)  # type: ignore[attr-defined]
    status, body, _ = await api.call("GET", "/blocked-trades", "viewer", params=WINDOW)
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def test_the_statistics_come_with_what_the_trades_would_have_done(api: Api) -> None:
    # ETH/BTC (HIGH): a target 0.1 % away and a stop 50 % away, blocks that would have won;
    # LTC/BTC (global) the other way round, blocks that would have lost.
    await set_value(api, "stop_loss_pct", 50.0, "HIGH")
    await set_value(api, "take_profit_pct", 0.1, "HIGH")
    await set_value(api, "stop_loss_pct", 0.1, "global")
    await set_value(api, "take_profit_pct", 100.0, "global")
    events = [
        blocked(f"{symbol}-{day}-{hour}", timestamp=f"2018-01-{day}T{hour}:00:00+00:00",
                symbol=symbol, block_reason=reason)
        for symbol, reason in (("ETH/BTC", "news"), ("LTC/BTC", "max_exposure"))
        for day in range(11, 26)
        for hour in (10, 22)
    ] + [blocked("xrp", timestamp="2018-01-12T00:00:00+00:00", symbol="XRP/BTC")]  # fmt: skip
    status, _, _ = await api.call("POST", "/blocked-trades", "engine", json={"events": events})
    assert status == 201

    body = await report(api)
    assert (body["total"], body["by_reason"]["news"]) == (61, 30)  # the counts, as before
    counterfactual = body["counterfactual"]
    assert (counterfactual["blocked"], counterfactual["evaluated"]) == (61, 60)
    by_reason = {group["key"]: group for group in counterfactual["statistics"]["by_reason"]}
    assert by_reason["news"] | {"cost_of_blocking_pct": 0} == {
        "key": "news",
        "n": 30,
        "won": 30,
        "lost": 0,
        "open": 0,
        "win_rate": 1.0,
        "win_rate_n": 30,
        "mean_return_pct": pytest.approx(0.1),
        "missed_gains_pct": pytest.approx(3.0),
        "avoided_losses_pct": 0.0,
        "cost_of_blocking_pct": 0,
    }
    assert by_reason["max_exposure"]["cost_of_blocking_pct"] < 0  # blocking them saved
    advice = {item["block_reason"]: item for item in counterfactual["recommendations"]}
    assert (advice["news"]["advice"], advice["max_exposure"]["advice"]) == ("review", "keep")
    assert advice["news"]["text"].startswith(
        "news blocks 49 % of blocked BUY signals; they would have won 100 % (95 % CI 89–100 %, "
        "n=30) against 50 % overall"
    )
    [missing] = counterfactual["not_evaluated"]
    assert (missing["event_id"], missing["symbol"]) == ("xrp", "XRP/BTC")
    assert missing["reason"].startswith("no market data for XRP/BTC 5m")


async def test_without_market_data_there_is_no_counterfactual_section(api: Api) -> None:
    api.runtime.deps = dataclasses.replace(api.runtime.deps, optimizer=None)
    await api.call("POST", "/blocked-trades", "engine", json=blocked())
    window = {"since": "2026-11-23T00:00:00+00:00", "until": "2026-11-24T00:00:00+00:00"}
    status, body, _ = await api.call("GET", "/blocked-trades", "viewer", params=window)
    assert (status, body["total"]) == (200, 1)
    assert body["counterfactual"] is None
