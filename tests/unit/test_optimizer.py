"""The optimization cycle as a pure function: candidates, walk-forward windows, the apply rule
and the statistics it rests on, on the real candles in ../shared/data."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from core.backtest import Candles
from core.errors import ValidationError
from core.metrics import Stats
from core.models import ClosedTradeEvent, Side
from core.optimizer import (
    CycleJob,
    CycleSettings,
    GridShape,
    Method,
    Score,
    WalkForwardMode,
    combine_stats,
    decide,
    full_grid,
    improvement_pct,
    live_stats,
    run_cycle,
    search_axes,
    spec_grid,
)
from core.params import load_schema
from storage.marketdata import load_candles

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SCHEMA = load_schema()
DEFAULTS = {
    "long_rsi_entry": 30,
    "long_adx_min": 22,
    "sl_atr_multiplier": 1.5,
    "tp_atr_multiplier": 2.5,
}


@cache
def eth() -> Candles:
    return load_candles(DATA / "ETH_BTC-5m.feather").candles


def job(settings: CycleSettings, seed: int = 1, baseline: dict[str, float] = DEFAULTS) -> CycleJob:
    return CycleJob("test", (eth(),), search_axes(SCHEMA, baseline), baseline, settings, seed)


# --- candidates ----------------------------------------------------------------------------


def test_the_spec_grid_is_the_eight_combinations_the_spec_lists() -> None:
    grid = spec_grid(search_axes(SCHEMA, DEFAULTS))
    corners = {tuple(point.values()) for point in grid}
    assert len(corners) == 8
    # The spec's examples: all up, all down, and the two mixed ones it names.
    for rsi, adx, stop, target in [(1, 1, 1, 1), (-1, -1, -1, -1), (1, -1, -1, 1), (-1, 1, 1, -1)]:
        assert (30 + 5 * rsi, 22 + 2 * adx, 1.5 + 0.2 * stop, 2.5 + 0.3 * target) in {
            tuple(round(v, 10) for v in corner) for corner in corners
        }
    for point in grid:  # every parameter moves by exactly one step
        steps = [
            (point[name] - DEFAULTS[name]) / SCHEMA.spec(name).step  # type: ignore[operator]
            for name in DEFAULTS
        ]
        assert [abs(round(step)) for step in steps] == [1, 1, 1, 1]
        assert math.prod(round(step) for step in steps) == 1


def test_the_full_grid_has_every_combination_of_one_step_down_none_and_up() -> None:
    grid = full_grid(search_axes(SCHEMA, DEFAULTS))
    assert len(grid) == 81
    assert len({tuple(p.values()) for p in grid}) == 81
    assert DEFAULTS in grid


def test_candidates_stay_within_bounds_and_have_their_parameters_types() -> None:
    at_bounds = {**DEFAULTS, "long_adx_min": 0, "long_rsi_entry": 95, "sl_atr_multiplier": 1.5}
    for point in full_grid(search_axes(SCHEMA, at_bounds)):
        assert 0 <= point["long_adx_min"] <= 2 and 85 <= point["long_rsi_entry"] <= 95
        assert isinstance(point["long_rsi_entry"], int)
        assert point["sl_atr_multiplier"] in (1.3, 1.5, 1.7)  # no float noise: 1.7, not 1.70..02


def test_a_grid_cycle_tries_each_candidate_once_and_never_the_baseline_as_a_candidate() -> None:
    result = run_cycle(job(CycleSettings(grid=GridShape.FULL)))
    tried = [score.parameters for score in result.candidates]
    assert len(tried) == 80 and DEFAULTS not in tried
    assert result.baseline.parameters == DEFAULTS


def test_bayesian_search_stays_within_its_steps_and_repeats_itself_with_the_same_seed() -> None:
    settings = CycleSettings(method=Method.BAYES, bayes_trials=24, bayes_batch=8, bayes_steps=3)
    first, again = run_cycle(job(settings, seed=5)), run_cycle(job(settings, seed=5))
    other = run_cycle(job(settings, seed=6))
    tried = [score.parameters for score in first.candidates]
    assert tried == [score.parameters for score in again.candidates]
    assert [s.out_of_sample_fitness for s in first.candidates] == [
        s.out_of_sample_fitness for s in again.candidates
    ]
    assert tried != [score.parameters for score in other.candidates]
    assert 0 < len(tried) <= 24 and DEFAULTS not in tried
    for point in tried:
        assert 15 <= point["long_rsi_entry"] <= 45 and isinstance(point["long_rsi_entry"], int)
        assert point["sl_atr_multiplier"] in {round(1.5 + 0.2 * k, 10) for k in range(-3, 4)}


# --- walk-forward ------------------------------------------------------------------------


def test_rolling_windows_slide_and_anchored_ones_start_at_the_first_bar() -> None:
    """5,760 bars in 2 + 3 segments of 1,152 bars (4 days): fold f is judged on segment 2 + f."""
    first_bar = datetime(2018, 1, 10, 4, 55, tzinfo=UTC)
    segment = timedelta(minutes=5 * 1152)
    rolling = run_cycle(job(CycleSettings())).folds
    anchored = run_cycle(job(CycleSettings(walk_forward=WalkForwardMode.ANCHORED))).folds
    for fold, (slid, grown) in enumerate(zip(rolling, anchored, strict=True)):
        assert slid.out_of_sample == grown.out_of_sample
        assert slid.out_of_sample.start == first_bar + (2 + fold) * segment
        assert slid.in_sample.end == grown.in_sample.end == slid.out_of_sample.start
        assert slid.in_sample.start == first_bar + fold * segment
        assert grown.in_sample.start == first_bar
    assert rolling[-1].out_of_sample.end == first_bar + 5760 * timedelta(minutes=5)


def test_too_few_bars_for_the_windows_are_refused() -> None:
    with pytest.raises(ValidationError, match="5760 bars are too few: 62 walk-forward segments"):
        run_cycle(job(CycleSettings(out_of_sample_windows=60)))


# --- the apply rule ----------------------------------------------------------------------


def stats(trades: int = 40) -> Stats:
    return Stats(trades, 50.0, 1.5, 0.1, 5.0, 20.0, 4.0, 1.0, 1.5, 10.0)


def score(out_of_sample: float, trades: int = 40, in_sample: float = 50.0) -> Score:
    return Score(DEFAULTS, in_sample, out_of_sample, stats(trades), stats(trades), ())


@pytest.mark.parametrize(
    ("baseline", "winner", "improvement", "applies"),
    [
        (40.0, 42.0, 5.0, True),  # exactly the required 5 %
        (40.0, 41.9, 4.75, False),
        (-10.0, -9.0, 10.0, True),  # less negative is better: relative to |baseline|
        (-10.0, -11.0, -10.0, False),
        (0.5, 0.6, 10.0, True),  # near 0 the denominator is 1 fitness point, not 0.5
        (0.0, 0.03, 3.0, False),
    ],
)
def test_improvement_is_relative_to_the_baselines_magnitude(
    baseline: float, winner: float, improvement: float, applies: bool
) -> None:
    decision = decide(score(baseline), score(winner), CycleSettings())
    assert decision.improvement_pct == pytest.approx(improvement)
    assert decision.applies is applies


def test_a_winner_needs_enough_out_of_sample_trades() -> None:
    decision = decide(score(40.0), score(60.0, trades=29), CycleSettings(min_trades=30))
    assert not decision.applies
    assert "29 out-of-sample trades, fewer than the minimum of 30" in decision.reasons


def test_any_trading_winner_beats_a_baseline_that_made_no_trade() -> None:
    decision = decide(score(-math.inf, trades=0), score(10.0), CycleSettings())
    assert decision.applies and decision.improvement_pct is None
    assert "baseline made no closed trade" in decision.reasons[-1]


def test_a_winner_without_out_of_sample_trades_never_applies() -> None:
    decision = decide(score(-math.inf, trades=0), score(-math.inf, trades=0), CycleSettings())
    assert not decision.applies


def test_the_in_to_out_of_sample_drop_is_reported() -> None:
    decision = decide(score(10.0), score(45.0, in_sample=60.0), CycleSettings())
    assert decision.drop_pct == pytest.approx(25.0)
    assert improvement_pct(60.0, 45.0) == pytest.approx(-25.0)


def test_only_the_best_in_sample_candidate_is_judged_out_of_sample() -> None:
    result = run_cycle(job(CycleSettings(grid=GridShape.FULL)))
    assert result.winner is not None
    best = result.candidates[result.winner]
    enough = [s for s in result.candidates if s.in_sample.trades >= 30]
    assert best.in_sample_fitness == max(s.in_sample_fitness for s in enough)
    assert result.decision == decide(result.baseline, best, CycleSettings(grid=GridShape.FULL))


def test_a_cycle_reports_overfitting_figures_and_equity_curves() -> None:
    result = run_cycle(job(CycleSettings()))
    assert 0 <= result.probability_of_backtest_overfitting <= 1  # type: ignore[operator]
    assert 0 <= result.deflated_sharpe_ratio <= 1  # type: ignore[operator]
    curves = result.equity
    assert len(curves.times) == len(curves.baseline) == len(curves.winner or ()) == 500
    assert curves.baseline[0] == pytest.approx(1.0)


# --- statistics of several backtests ---------------------------------------------------


def test_a_portfolio_adds_trades_weights_rates_by_trades_and_keeps_the_deepest_drawdown() -> None:
    busy = Stats(30, 60.0, 2.0, 0.5, 10.0, 50.0, 5.0, 2.0, 3.0, 40.0)
    quiet = Stats(10, 20.0, 1.0, -0.5, -2.0, -10.0, 9.0, 0.5, 0.5, 10.0)
    idle = Stats(0, math.nan, math.nan, math.nan, 0.0, 0.0, 0.0, math.nan, math.nan, 0.0)
    combined = combine_stats([busy, quiet, idle])
    assert combined.trades == 40
    assert combined.win_rate == pytest.approx(50.0)  # (30 × 60 + 10 × 20) / 40
    assert combined.roi == pytest.approx(8 / 3)  # equal capital: the mean ROI
    assert combined.sharpe == pytest.approx(1.25)  # a symbol without trades has none
    assert combined.max_drawdown == 9.0
    assert combine_stats([busy]) is busy


def trade(pnl_pct: float, day: int) -> ClosedTradeEvent:
    exit_time = datetime(2026, 3, 2, 12, tzinfo=UTC) + timedelta(days=day)
    return ClosedTradeEvent(
        f"t{day}", "ETHUSDC", Side.BUY, exit_time - timedelta(hours=1), exit_time,
        100.0, 100.0 + pnl_pct, 1.0, pnl_pct, pnl_pct,
    )  # fmt: skip


def test_live_trades_compound_as_the_backtester_sizes_them() -> None:
    live = live_stats([trade(10.0, 0), trade(-10.0, 1), trade(5.0, 2)])
    assert live.trades == 3
    assert live.win_rate == pytest.approx(200 / 3)
    assert live.roi == pytest.approx((1.1 * 0.9 * 1.05 - 1) * 100)
    assert live.max_drawdown == pytest.approx(10.0)
    assert live.profit_factor == pytest.approx(1.5)


def test_no_live_trade_scores_the_worst_fitness() -> None:
    assert live_stats([]).trades == 0


def test_settings_refuse_an_odd_number_of_pbo_blocks() -> None:
    with pytest.raises(ValueError, match="even"):
        dataclasses.replace(CycleSettings(), pbo_blocks=7)
