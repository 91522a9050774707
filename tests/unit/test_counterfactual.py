"""What a blocked trade would have done, on real ETH/BTC 5-minute candles (2018-01-10 to
2018-01-30, no gaps): entries, the backtester's fill rules on both sides, the horizon, the
statistics and the recommendation rule."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.backtest import BacktestSettings, Candles, utc_datetime
from core.counterfactual import (
    Advice,
    Counterfactual,
    CounterfactualPolicy,
    GroupStats,
    Order,
    TradeOutcome,
    bucket_span,
    confidence_bucket,
    recommendations,
    simulate,
    statistics,
    wilson_interval,
)
from core.models import BlockedTrade, Side
from core.params import Scope
from storage.marketdata import load_candles

DATA = Path("/work/shared/data/ETH_BTC-5m.feather")
FREE = BacktestSettings()  # no spread, no commission
DAY = 288  # 5-minute bars


@pytest.fixture(scope="module")
def candles() -> Candles:
    return load_candles(DATA, "ETH/BTC", "5m").candles


def blocked_at(
    candles: Candles,
    bar: int,
    signal: Side = Side.BUY,
    after_open: timedelta = timedelta(0),
    **fields: object,
) -> BlockedTrade:
    values: dict[str, object] = {
        "event_id": f"e{bar}",
        "timestamp": utc_datetime(candles.times[bar]) + after_open,
        "symbol": "ETH/BTC",
        "signal": signal,
        "block_reason": "min_confidence",
        "confidence": 0.62,
        "id": bar,
        **fields,
    }
    return BlockedTrade(**values)  # type: ignore[arg-type]


def one(
    candles: Candles,
    trade: BlockedTrade,
    stop_loss_pct: float,
    take_profit_pct: float,
    horizon_bars: int = DAY,
    costs: BacktestSettings = FREE,
) -> Counterfactual:
    order = Order(trade, Scope.GLOBAL, stop_loss_pct, take_profit_pct)
    [counterfactual] = simulate(candles, [order], horizon_bars, costs)
    return counterfactual


def reference(
    candles: Candles, entry_bar: int, side: int, stop: float, target: float, horizon: int
) -> tuple[int, TradeOutcome, float]:
    """The fill rules, one bar at a time: exit bar, outcome, exit price."""
    last = min(entry_bar + horizon, len(candles)) - 1
    for bar in range(entry_bar, last + 1):
        low, high, open_ = candles.low[bar], candles.high[bar], candles.open[bar]
        if (side > 0 and low <= stop) or (side < 0 and high >= stop):
            return bar, TradeOutcome.LOST, min(open_, stop) if side > 0 else max(open_, stop)
        if (side > 0 and high >= target) or (side < 0 and low <= target):
            return bar, TradeOutcome.WON, max(open_, target) if side > 0 else min(open_, target)
    return last, TradeOutcome.OPEN, float(candles.close[last])


# --- entries ---------------------------------------------------------------------------


def test_a_block_at_a_bar_open_enters_at_that_open(candles: Candles) -> None:
    result = one(candles, blocked_at(candles, 1000), 2.0, 1.0)
    assert result.entry_time == datetime(2018, 1, 13, 16, 15, tzinfo=UTC)
    assert result.entry_price == candles.open[1000]


def test_a_block_within_a_bar_enters_at_the_next_bar_open(candles: Candles) -> None:
    result = one(candles, blocked_at(candles, 1000, after_open=timedelta(minutes=2)), 2.0, 1.0)
    assert result.entry_time == datetime(2018, 1, 13, 16, 20, tzinfo=UTC)
    assert result.entry_price == candles.open[1001]


def test_the_spread_is_paid_on_entry_and_the_commission_on_both_sides(candles: Candles) -> None:
    costs = BacktestSettings(spread=0.001, commission=0.002)
    buy = one(candles, blocked_at(candles, 1000), 2.0, 1.0, costs=costs)
    sell = one(candles, blocked_at(candles, 1000, Side.SELL), 1.0, 1.0, costs=costs)
    assert buy.entry_price == pytest.approx(candles.open[1000] * 1.001)
    assert sell.entry_price == pytest.approx(candles.open[1000] * 0.999)
    assert buy.exit_price == pytest.approx(buy.entry_price * 1.01)  # the target, from the entry
    growth = buy.exit_price / buy.entry_price
    assert buy.return_pct == pytest.approx(((growth - 1) - 0.002 * (1 + growth)) * 100)


# --- exits -----------------------------------------------------------------------------


def test_a_buy_reaching_its_take_profit_first_is_won_at_the_target(candles: Candles) -> None:
    result = one(candles, blocked_at(candles, 1000), stop_loss_pct=2.0, take_profit_pct=1.0)
    assert result.outcome is TradeOutcome.WON
    assert result.exit_time == datetime(2018, 1, 13, 16, 50, tzinfo=UTC)  # bar 1007
    assert result.exit_price == pytest.approx(candles.open[1000] * 1.01)
    assert result.return_pct == pytest.approx(1.0)
    assert result.bars_held == 8


def test_a_buy_reaching_its_stop_loss_first_is_lost_at_the_stop(candles: Candles) -> None:
    result = one(candles, blocked_at(candles, 1500), stop_loss_pct=1.0, take_profit_pct=3.0)
    assert result.outcome is TradeOutcome.LOST
    assert result.exit_time == utc_datetime(candles.times[1520])
    assert result.return_pct == pytest.approx(-1.0)
    assert result.bars_held == 21


def test_a_bar_reaching_both_is_a_loss_even_the_entry_bar(candles: Candles) -> None:
    # Bar 1940 (2018-01-16 22:35) ranges from 0.58 % below its open to 4.39 % above it.
    result = one(candles, blocked_at(candles, 1940), stop_loss_pct=0.5, take_profit_pct=4.0)
    assert (result.outcome, result.bars_held) == (TradeOutcome.LOST, 1)
    assert result.return_pct == pytest.approx(-0.5)


def test_a_gap_through_the_stop_fills_at_the_open(candles: Candles) -> None:
    # Bar 2457 (17:40) dips 0.22 % below its open; bar 2458 opens 0.30 % below it.
    result = one(candles, blocked_at(candles, 2457), stop_loss_pct=0.25, take_profit_pct=5.0)
    assert result.outcome is TradeOutcome.LOST
    assert result.exit_price == candles.open[2458]
    assert result.return_pct == pytest.approx(-0.29995, abs=1e-5)  # worse than the 0.25 stop


def test_a_sell_is_a_short_with_the_stop_above_and_the_target_below(candles: Candles) -> None:
    # From bar 1500 the price falls 1 % before it rises 1 %: the short wins.
    won = one(candles, blocked_at(candles, 1500, Side.SELL), 1.0, 1.0)
    assert won.outcome is TradeOutcome.WON
    assert won.exit_price == pytest.approx(candles.open[1500] * 0.99)
    assert won.return_pct == pytest.approx(1.0)
    # Bar 514 never trades above its open; bar 515 opens 0.41 % higher: through the stop.
    lost = one(candles, blocked_at(candles, 514, Side.SELL), 0.3, 0.5)
    assert lost.outcome is TradeOutcome.LOST
    assert lost.exit_price == candles.open[515]  # max(open, stop)
    assert lost.return_pct == pytest.approx(-0.41131, abs=1e-5)


def test_a_trade_reaching_neither_within_the_horizon_is_open_at_the_close(
    candles: Candles,
) -> None:
    result = one(candles, blocked_at(candles, 1000), 5.0, 5.0, horizon_bars=12)
    assert result.outcome is TradeOutcome.OPEN
    assert (result.exit_time, result.bars_held) == (utc_datetime(candles.times[1011]), 12)
    assert result.exit_price == candles.close[1011]
    assert result.return_pct == pytest.approx((candles.close[1011] / candles.open[1000] - 1) * 100)


def test_a_trade_reaching_neither_before_the_data_ends_is_open_at_the_last_close(
    candles: Candles,
) -> None:
    last = len(candles) - 1
    result = one(candles, blocked_at(candles, last - 3), 5.0, 5.0)
    assert result.outcome is TradeOutcome.OPEN
    assert (result.exit_price, result.bars_held) == (candles.close[last], 4)


def test_blocks_outside_the_candles_are_refused(candles: Candles) -> None:
    first = blocked_at(candles, 0)  # its signal bar is not in the candles
    with pytest.raises(ValueError, match="within the candles"):
        one(candles, first, 1.0, 1.0)


def test_many_trades_at_once_match_the_rules_applied_bar_by_bar(candles: Candles) -> None:
    draw = random.Random(20180110)
    orders = [
        Order(
            blocked_at(candles, draw.randrange(1, len(candles)), draw.choice(list(Side))),
            Scope.GLOBAL,
            draw.choice([0.3, 0.5, 1.0, 2.0]),
            draw.choice([0.3, 0.5, 1.0, 3.0, 40.0]),
        )
        for _ in range(400)
    ]
    results = simulate(candles, orders, DAY, FREE)
    for order, result in zip(orders, results, strict=True):
        entry_bar = order.trade.id  # blocked at the bar's open
        side = 1 if order.trade.signal is Side.BUY else -1
        entry = candles.open[entry_bar]
        expected = reference(
            candles,
            entry_bar,
            side,
            stop=entry * (1 - side * order.stop_loss_pct / 100),
            target=entry * (1 + side * order.take_profit_pct / 100),
            horizon=DAY,
        )
        assert (entry_bar + result.bars_held - 1, result.outcome) == expected[:2]
        assert result.exit_price == pytest.approx(expected[2], rel=1e-12)
    assert {r.outcome for r in results} == set(TradeOutcome)


# --- statistics ------------------------------------------------------------------------


def test_the_statistics_add_up_in_every_dimension(candles: Candles) -> None:
    draw = random.Random(7)
    orders = [
        Order(
            blocked_at(
                candles,
                bar,
                draw.choice(list(Side)),
                block_reason=draw.choice(["min_confidence", "max_exposure", "news"]),
                confidence=draw.choice([None, 0.42, 0.6, 0.649, 1.0]),
                symbol=draw.choice(["ETH/BTC", "ETHBTC"]),
            ),
            Scope.GLOBAL,
            1.0,
            2.0,
        )
        for bar in sorted(draw.sample(range(1, len(candles)), 300))
    ]
    results = simulate(candles, orders, DAY // 4, FREE)
    stats = statistics(results)
    overall = stats.overall
    assert overall.trades == 300
    assert overall.cost_pct == pytest.approx(sum(r.return_pct for r in results))
    assert overall.missed_gains_pct == pytest.approx(sum(max(r.return_pct, 0) for r in results))
    assert overall.wins == sum(r.outcome is TradeOutcome.WON for r in results)
    assert overall.win_rate == overall.wins / (overall.wins + overall.losses)
    for groups in (stats.by_reason, stats.by_symbol, stats.by_signal, stats.by_confidence):
        assert sum(g.trades for g in groups) == overall.trades
        assert sum(g.wins for g in groups) == overall.wins
        assert sum(g.still_open for g in groups) == overall.still_open > 0
        assert sum(g.cost_pct for g in groups) == pytest.approx(overall.cost_pct)
    assert [g.key for g in stats.by_confidence] == [
        "0.40–0.45",
        "0.60–0.65",
        "0.95–1.00",
        "unknown",
    ]


def test_confidence_buckets_are_005_wide_and_closed_at_one() -> None:
    assert [confidence_bucket(c) for c in (0.0, 0.049, 0.05, 0.6, 0.649, 0.95, 1.0)] == [
        0,
        0,
        1,
        12,
        12,
        19,
        19,
    ]
    assert confidence_bucket(None) == -1
    assert (bucket_span(12, 12), bucket_span(11, 12), bucket_span(-1, -1)) == (
        "0.60–0.65",
        "0.55–0.65",
        "unknown",
    )


def test_the_cost_of_blocking_is_missed_gains_minus_avoided_losses() -> None:
    group = GroupStats("news", trades=4, wins=2, losses=1, missed_gains_pct=5.0,
                       avoided_losses_pct=2.0)  # fmt: skip
    assert (group.cost_pct, group.mean_return_pct) == (3.0, 0.75)
    assert (group.still_open, group.win_rate) == (1, 2 / 3)


# --- recommendations -------------------------------------------------------------------


def test_the_wilson_interval_matches_newcombes_worked_examples() -> None:
    # Newcombe (1998), Statistics in Medicine 17: 857-872, table I, method 3.
    for (successes, trials), (low, high) in {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }.items():
        assert wilson_interval(successes, trials, 1.96) == pytest.approx((low, high), abs=5e-5)


def outcomes(
    reason: str,
    won: int,
    lost: int,
    confidence: float | None = 0.62,
    signal: Side = Side.BUY,
    gain: float = 2.0,
    loss: float = -1.0,
) -> list[Counterfactual]:
    """`won` + `lost` counterfactual trades with fixed returns."""
    at = datetime(2018, 1, 12, tzinfo=UTC)
    trade = BlockedTrade("e", at, "ETH/BTC", signal, reason, confidence=confidence)
    order = Order(trade, Scope.GLOBAL, 1.0, 2.0)
    return [
        Counterfactual(order, at, 1.0, at, 1.0, outcome, ret, 3)
        for outcome, ret, count in ((TradeOutcome.WON, gain, won), (TradeOutcome.LOST, loss, lost))
        for _ in range(count)
    ]


def advise(evaluated: list[Counterfactual], min_trades: int = 30) -> list[str]:
    policy = CounterfactualPolicy(min_trades=min_trades)
    found = recommendations(evaluated, [c.order.trade for c in evaluated], policy)
    return [item.text for item in found]


def confidence_market(per_bucket: int) -> list[Counterfactual]:
    """Blocks by min_confidence that would have won 70 % just below 0.65 and 65 % between
    0.55 and 0.60, 25 % lower down; other blocks won 30 %."""
    won = {0.62: 0.70, 0.57: 0.65, 0.52: 0.25}
    return [
        *(
            trade
            for confidence, rate in won.items()
            for trade in outcomes(
                "min_confidence",
                round(per_bucket * rate),
                per_bucket - round(per_bucket * rate),
                confidence,
            )
        ),
        *outcomes("max_exposure", 3 * per_bucket // 10, 7 * per_bucket // 10, None),
    ]


def test_min_confidence_buckets_that_would_have_won_suggest_a_lower_threshold() -> None:
    evaluated = confidence_market(per_bucket=40)
    policy = CounterfactualPolicy(min_trades=30)
    [advice] = [
        item
        for item in recommendations(evaluated, [c.order.trade for c in evaluated], policy)
        if item.block_reason == "min_confidence"
    ]
    assert advice.advice is Advice.LOWER_MIN_CONFIDENCE
    assert advice.suggested_value == 0.55
    assert [bucket.group.key for bucket in advice.buckets] == ["0.60–0.65", "0.55–0.60"]
    assert (advice.evidence.group.resolved, advice.evidence.group.wins) == (80, 54)
    assert advice.text == (
        "min_confidence blocks 75 % of blocked BUY signals; those with confidence 0.55–0.65 "
        "would have won 68 % (95 % CI 57–77 %, n=80) against 48 % overall, mean return "
        "+1.02 % → consider min_confidence 0.55"
    )


def test_no_recommendation_comes_from_fewer_trades_than_the_minimum() -> None:
    evaluated = confidence_market(per_bucket=20)
    assert advise(evaluated, min_trades=30) == []
    assert len(advise(evaluated, min_trades=20)) == 1


def test_a_block_reason_that_would_have_won_is_to_be_reviewed_one_that_lost_kept() -> None:
    evaluated = [
        *outcomes("news", won=45, lost=15),
        *outcomes("max_exposure", won=6, lost=54, gain=2.0, loss=-2.0),
        *outcomes("cooldown", won=20, lost=20, signal=Side.SELL),
    ]
    assert advise(evaluated) == [
        "max_exposure blocks 50 % of blocked BUY signals; they would have won 10 % (95 % CI "
        "5–20 %, n=60) against 44 % overall, mean return -1.60 % → keep it: blocking them "
        "saved 96.00 %",
        "news blocks 50 % of blocked BUY signals; they would have won 75 % (95 % CI 63–84 %, "
        "n=60) against 44 % overall, mean return +1.25 % → review the news rule for BUY signals",
    ]  # cooldown's 50 % is no clear evidence either way


def test_min_confidence_without_a_winning_bucket_is_judged_as_a_whole() -> None:
    evaluated = [
        *outcomes("min_confidence", won=5, lost=55, confidence=0.6),
        *outcomes("news", won=20, lost=40),
    ]
    assert advise(evaluated) == [
        "min_confidence blocks 50 % of blocked BUY signals; they would have won 8 % (95 % CI "
        "4–18 %, n=60) against 21 % overall, mean return -0.75 % → keep it: blocking them "
        "saved 45.00 %"
    ]  # news: a third won, but with a mean return of 0 blocking neither cost nor saved
