"""Where a run's candles come from: a file in MARKET_DATA_DIR first, else the bars the engine
reported; the same checks either way. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from bot.config import Settings
from bot.optimizer_config import OptimizerSettings
from bot.runtime import Runtime
from core import optimization
from core.authz import Actor, Role
from core.errors import PermissionDeniedError, ValidationError
from core.market import Bar, Gap, MarketDataNotFoundError
from core.optimization import OptimizationRequest
from core.optimization_model import OptimizerPolicy
from core.params import Scope
from core.ports import Deps, MarketData
from storage.marketdata import DataGapError, MissingRangeError, load_candles
from tests.clock import MovableClock

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
FILE_END = datetime(2018, 1, 30, 4, 55, tzinfo=UTC)
ENGINE = Actor.having("token:engine", "api", Role.ENGINE)
ADMIN = Actor.having("U0ADMIN", "slack", Role.ADMIN)


@pytest.fixture
def settings(database_url: str, backup_dir: Path) -> Settings:
    policy = OptimizerPolicy(lookback_days=19, symbols={"ETH/BTC": Scope.HIGH}, seed=3)
    return Settings(
        database_url=database_url,
        backup_dir=backup_dir,
        market_data_dir=DATA,
        optimizer=OptimizerSettings(policy, workers=1),
    )


@pytest.fixture
def deps(runtime: Runtime) -> Deps:
    return dataclasses.replace(runtime.deps, clock=MovableClock(FILE_END + timedelta(minutes=1)))


def market(deps: Deps) -> MarketData:
    assert deps.optimizer is not None
    return deps.optimizer.market


def file_bars(name: str = "ETH_BTC-5m.feather") -> list[Bar]:
    c = load_candles(DATA / name).candles
    times = c.times.astype("datetime64[us]").astype(datetime)
    return [
        Bar(t.replace(tzinfo=UTC), c.open[i], c.high[i], c.low[i], c.close[i], c.volume[i])
        for i, t in enumerate(times)
    ]


def doubled(bar: Bar) -> Bar:
    return Bar(bar.time, bar.open * 2, bar.high * 2, bar.low * 2, bar.close * 2, bar.volume)


async def test_reported_bars_are_stored_once_each(deps: Deps) -> None:
    bars = file_bars()[:100]
    assert await optimization.ingest_candles(deps, ENGINE, "XRP/BTC", "5m", bars) == 100
    changed = [doubled(bar) for bar in bars[:10]]
    assert await optimization.ingest_candles(deps, ENGINE, "XRP_BTC", "5m", changed) == 0
    loaded, gaps = await market(deps).candles("XRP/BTC", "5m", bars[0].time, bars[-1].time)
    assert gaps == () and len(loaded) == 99
    assert loaded.close[0] == bars[0].close  # the first report of a bar stands


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (lambda bar: dataclasses.replace(bar, time=bar.time + timedelta(minutes=1)), "grid"),
        (lambda bar: dataclasses.replace(bar, low=bar.high * 2), "low <= open"),
    ],
    ids=["off the grid", "low above high"],
)
async def test_a_bad_bar_refuses_the_whole_report(deps: Deps, bad: object, problem: str) -> None:
    bars = file_bars()[:3]
    with pytest.raises(ValidationError, match=problem):
        await optimization.ingest_candles(deps, ENGINE, "XRP/BTC", "5m", [*bars[:2], bad(bars[2])])  # type: ignore[operator]
    with pytest.raises(MarketDataNotFoundError, match="no candles reported by the engine"):
        await market(deps).candles("XRP/BTC", "5m", bars[0].time, bars[1].time)


async def test_a_viewer_cannot_report_bars(deps: Deps) -> None:
    viewer = Actor.having("U0VIEW", "slack", Role.VIEWER)
    with pytest.raises(PermissionDeniedError):
        await optimization.ingest_candles(deps, viewer, "XRP/BTC", "5m", file_bars()[:1])


async def test_a_file_comes_before_reported_bars(deps: Deps) -> None:
    reported = [doubled(bar) for bar in file_bars()[:50]]
    await optimization.ingest_candles(deps, ENGINE, "ETH_BTC", "5m", reported)
    from_file, _ = await market(deps).candles("ETH_BTC", "5m", reported[0].time, reported[-1].time)
    assert from_file.close[0] == reported[0].close / 2


async def test_gaps_in_reported_bars_are_filled_or_refused_as_in_files(deps: Deps) -> None:
    bars = file_bars()[:200]
    kept = bars[:50] + bars[53:120] + bars[140:]  # 3 bars missing, then 20
    await optimization.ingest_candles(deps, ENGINE, "XRP/BTC", "5m", kept)
    start = bars[0].time
    loaded, gaps = await market(deps).candles("XRP/BTC", "5m", start, bars[110].time)
    assert len(loaded) == 110 and gaps == (Gap(bars[50].time, bars[52].time, 3),)
    assert loaded.close[50] == loaded.close[49] and loaded.volume[50] == 0
    with pytest.raises(DataGapError, match=r"XRP/BTC 5m: 1 gap\(s\) longer than 12 bars"):
        await market(deps).candles("XRP/BTC", "5m", start, bars[199].time)
    with pytest.raises(MissingRangeError, match="XRP/BTC: requested"):
        await market(deps).candles("XRP/BTC", "5m", start - timedelta(hours=2), bars[40].time)


async def test_a_run_on_reported_bars_matches_the_run_on_the_file_they_came_from(
    deps: Deps, settings: Settings
) -> None:
    await optimization.ingest_candles(deps, ENGINE, "XRP/BTC", "5m", file_bars())
    assert deps.optimizer is not None
    from_engine = dataclasses.replace(
        deps.optimizer,
        policy=dataclasses.replace(deps.optimizer.policy, symbols={"XRP/BTC": Scope.HIGH}),
    )
    request = OptimizationRequest(Scope.HIGH)
    on_file = await optimization.optimize(deps, ADMIN, request, dry_run=True)
    reported = dataclasses.replace(deps, optimizer=from_engine)
    on_bars = await optimization.optimize(reported, ADMIN, request, dry_run=True)
    assert [s.parameters for s in on_bars.result.candidates] == [
        s.parameters for s in on_file.result.candidates
    ]
    assert np.allclose(
        [s.out_of_sample_fitness for s in on_bars.result.candidates],
        [s.out_of_sample_fitness for s in on_file.result.candidates],
    )
