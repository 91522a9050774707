"""What blocked trades would have done had they been executed, and what that suggests.

Pure: core.blocked_insights loads the trades, the parameters live when each was blocked and
the candles, and runs ``analyse`` in a worker process.

The counterfactual trade
- Entry at the open of the first bar that opens at or after the block: a block at a bar's
  close (the next bar's open time) fills at that next bar's open, as the backtester fills a
  signal of bar t at the open of bar t+1; a block within a bar fills at the following bar's
  open. No price from before the block is used. The spread is paid on entry: a BUY fills at
  open × (1 + spread), a SELL at open × (1 − spread).
- The bracket: ``stop_loss_pct`` and ``take_profit_pct`` from the entry price, the risk
  parameters of the trade's scope live at the block time. The engine applies them to every
  trade it opens; the strategy's ATR multipliers would need the ATR of a signal bar, which a
  blocked trade does not report.
- A SELL is a short, not an exit: the engine reports closed trades on both sides, so a SELL
  signal opens a short, and risk limits block new exposure, not the closing of a position.
  Its stop lies above the entry and its target below.
- Exits follow core.backtest.bracket_exits: checked from the entry bar on, the stop loss
  filled at min(open, stop) and the take profit at max(open, target), the stop first when a
  bar reaches both. A short is priced as a long on the negated prices, so the same rules
  apply mirrored: its stop fills at max(open, stop), its target at min(open, target).
- A trade is watched for the policy's horizon (in bars of the timeframe) or to the end of
  the usable data; one that reaches neither stop nor target is still open, marked to the
  close of its last bar.
- Outcome: won when the take profit is reached first, lost when the stop loss is, else
  open. Return % = side × (exit / entry − 1) × 100, less the backtests' commission on entry
  and exit (an open trade as if closed at its mark).

Statistics, by block reason, symbol, signal and confidence bucket (0.05 wide), each with n
(the trades evaluated): wins, losses, open; the would-have-won rate = wins / (wins + losses)
(open trades have no outcome yet, so the rate's n is wins + losses); the mean return; and
the cost of blocking = missed gains − avoided losses = the sum of the returns (positive:
blocking cost money).

Recommendations: the rule
- Judged per block reason and signal, with at least ``min_trades`` resolved trades (won or
  lost): fewer give no recommendation at all.
- The reference is the overall rate: the would-have-won rate of every evaluated trade.
- Blocking costs when the lower bound of the group's Wilson interval (``z`` = 1.96: 95 %)
  lies above the overall rate and its mean return is positive: "review" the rule. Blocking
  pays when the upper bound lies below the overall rate and its mean return is negative:
  "keep" it. Anything in between is no clear evidence: no recommendation.
- ``min_confidence``: trades it blocked have a confidence below the threshold then, so the
  confidence buckets right below it are the ones a lower threshold would let through.
  Walking down from the highest bucket while each bucket on its own costs (the rule above),
  the buckets are pooled: "consider min_confidence X", X the pool's lower edge, with the
  pool's rate as the evidence. Without such a bucket the reason is judged as a whole.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from core.backtest import BacktestSettings, Candles, Exits, bracket_exits, utc_datetime
from core.models import BlockedTrade, Side
from core.params import Scope

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

BUCKET_WIDTH = 0.05
CONFIDENCE_REASON = "min_confidence"  # the block reason the engine gives for that parameter
_BUCKETS = round(1 / BUCKET_WIDTH)


@dataclass(frozen=True)
class CounterfactualPolicy:
    horizon: timedelta = timedelta(days=3)  # how long a counterfactual trade is watched
    min_trades: int = 30  # resolved trades a group needs before it yields a recommendation
    z: float = 1.96  # of the Wilson interval: 1.96 for 95 %
    max_trades: int = 20_000  # the newest blocked trades of a window that are evaluated

    def __post_init__(self) -> None:
        if self.horizon <= timedelta(0):
            raise ValueError("the horizon must be positive")
        if min(self.min_trades, self.max_trades) < 1 or self.z <= 0:
            raise ValueError("min_trades and max_trades must be at least 1, z positive")

    def horizon_bars(self, bar_seconds: int) -> int:
        return max(1, int(self.horizon.total_seconds()) // bar_seconds)

    @property
    def interval_level(self) -> float:
        """The probability the Wilson interval covers: 0.95 for z = 1.96."""
        return math.erf(self.z / math.sqrt(2))


@dataclass(frozen=True)
class Order:
    """A blocked trade as it would have been placed, with its scope's bracket then."""

    trade: BlockedTrade
    scope: Scope
    stop_loss_pct: float
    take_profit_pct: float


class TradeOutcome(StrEnum):
    WON = "won"
    LOST = "lost"
    OPEN = "open"


@dataclass(frozen=True)
class Counterfactual:
    order: Order
    entry_time: datetime
    entry_price: float
    exit_time: datetime  # for an open trade: its last bar
    exit_price: float  # for an open trade: that bar's close
    outcome: TradeOutcome
    return_pct: float
    bars_held: int


@dataclass(frozen=True)
class NotEvaluated:
    trade: BlockedTrade
    reason: str


@dataclass(frozen=True)
class GroupStats:
    key: str
    trades: int  # n: trades evaluated
    wins: int
    losses: int
    missed_gains_pct: float  # the positive returns, summed
    avoided_losses_pct: float  # the negative returns' magnitudes, summed

    @property
    def still_open(self) -> int:
        return self.trades - self.resolved

    @property
    def resolved(self) -> int:
        return self.wins + self.losses

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.resolved if self.resolved else None

    @property
    def cost_pct(self) -> float:
        """Missed gains minus avoided losses: what blocking cost (negative: what it saved)."""
        return self.missed_gains_pct - self.avoided_losses_pct

    @property
    def mean_return_pct(self) -> float | None:
        return self.cost_pct / self.trades if self.trades else None


@dataclass(frozen=True)
class Statistics:
    overall: GroupStats
    by_reason: tuple[GroupStats, ...]
    by_symbol: tuple[GroupStats, ...]
    by_signal: tuple[GroupStats, ...]
    by_confidence: tuple[GroupStats, ...]


class Advice(StrEnum):
    LOWER_MIN_CONFIDENCE = "lower_min_confidence"
    REVIEW = "review"  # blocking costs
    KEEP = "keep"  # blocking pays


@dataclass(frozen=True)
class Evidence:
    group: GroupStats
    win_rate_low: float  # the Wilson interval of the would-have-won rate
    win_rate_high: float


@dataclass(frozen=True)
class Recommendation:
    advice: Advice
    block_reason: str
    signal: Side
    share_pct: float  # of the signal's blocked trades in the window, those this reason blocked
    overall_win_rate: float
    evidence: Evidence  # the trades judged: the reason's, or the pooled confidence buckets
    text: str  # the finding and the advice, in one sentence
    buckets: tuple[Evidence, ...] = ()  # the pooled buckets, each on its own
    suggested_value: float | None = None  # for min_confidence


@dataclass(frozen=True)
class Insights:
    since: datetime
    until: datetime
    policy: CounterfactualPolicy
    evaluated: tuple[Counterfactual, ...]
    not_evaluated: tuple[NotEvaluated, ...]
    statistics: Statistics
    recommendations: tuple[Recommendation, ...]
    truncated: bool = False  # the window held more than max_trades: the newest were evaluated

    @property
    def blocked(self) -> int:
        return len(self.evaluated) + len(self.not_evaluated)


@dataclass(frozen=True)
class SymbolOrders:
    candles: Candles  # from the bar before the first entry (the signal bar) on
    orders: tuple[Order, ...]


@dataclass(frozen=True)
class InsightsJob:
    """What ``analyse`` needs, picklable for a worker process."""

    since: datetime
    until: datetime
    policy: CounterfactualPolicy
    costs: BacktestSettings
    symbols: tuple[SymbolOrders, ...] = ()
    not_evaluated: tuple[NotEvaluated, ...] = ()
    truncated: bool = False


def analyse(job: InsightsJob) -> Insights:
    """Counterfactuals of every order, their statistics and the recommendations."""
    evaluated = sorted(
        (
            counterfactual
            for symbol in job.symbols
            for counterfactual in simulate(
                symbol.candles,
                symbol.orders,
                job.policy.horizon_bars(symbol.candles.bar_seconds),
                job.costs,
            )
        ),
        key=lambda c: (c.order.trade.timestamp, c.order.trade.id),
    )
    blocked = [c.order.trade for c in evaluated] + [n.trade for n in job.not_evaluated]
    return Insights(
        since=job.since,
        until=job.until,
        policy=job.policy,
        evaluated=tuple(evaluated),
        not_evaluated=job.not_evaluated,
        statistics=statistics(evaluated),
        recommendations=recommendations(evaluated, blocked, job.policy),
        truncated=job.truncated,
    )


# --- the counterfactual trades ---------------------------------------------------------


def simulate(
    candles: Candles, orders: Sequence[Order], horizon_bars: int, costs: BacktestSettings
) -> list[Counterfactual]:
    """The orders of one symbol, all at once (see the module docstring for the rules).

    Every block must fall after the first bar's open and no later than the last bar's open,
    so that the signal bar and the entry bar are both in ``candles``."""
    blocked_at = np.array(
        [order.trade.timestamp.astimezone(UTC).replace(tzinfo=None) for order in orders],
        dtype="datetime64[ns]",
    )
    entry_bar = np.searchsorted(candles.times, blocked_at)  # the first bar opening at or after
    if entry_bar.size and not (entry_bar.min() > 0 and entry_bar.max() < len(candles)):
        raise ValueError(f"{candles.symbol}: blocks must fall within the candles' bars")
    short = np.array([order.trade.signal is Side.SELL for order in orders], dtype=np.bool_)
    side = np.where(short, -1.0, 1.0)
    entry_price = candles.open[entry_bar] * (1 + side * costs.spread)
    stop_pct = np.array([order.stop_loss_pct for order in orders], dtype=np.float64)
    target_pct = np.array([order.take_profit_pct for order in orders], dtype=np.float64)
    exits = _exits(
        candles,
        short,
        entry_bar,
        stop=entry_price * (1 - side * stop_pct / 100),
        target=entry_price * (1 + side * target_pct / 100),
        end_bar=np.minimum(entry_bar + horizon_bars, len(candles)),
    )
    growth = exits.price / entry_price
    returns = (side * (growth - 1) - costs.commission * (1 + growth)) * 100
    return [
        Counterfactual(
            order=order,
            entry_time=utc_datetime(candles.times[entry_bar[row]]),
            entry_price=float(entry_price[row]),
            exit_time=utc_datetime(candles.times[exits.bar[row]]),
            exit_price=float(exits.price[row]),
            outcome=_outcome(exits, row),
            return_pct=float(returns[row]),
            bars_held=int(exits.bar[row] - entry_bar[row] + 1),
        )
        for row, order in enumerate(orders)
    ]


def _outcome(exits: Exits, row: int) -> TradeOutcome:
    if exits.still_open[row]:
        return TradeOutcome.OPEN
    return TradeOutcome.LOST if exits.stop_hit[row] else TradeOutcome.WON


def _exits(
    candles: Candles,
    short: BoolArray,
    entry_bar: npt.NDArray[np.int64],
    stop: FloatArray,
    target: FloatArray,
    end_bar: npt.NDArray[np.int64],
) -> Exits:
    """Longs on the prices, shorts as longs on the negated prices (the fill rules mirrored)."""
    bar = entry_bar.copy()
    price = np.zeros(len(entry_bar))
    stop_hit = np.zeros(len(entry_bar), dtype=np.bool_)
    still_open = np.zeros(len(entry_bar), dtype=np.bool_)
    for rows, prices, sign in ((~short, candles, 1.0), (short, _negated(candles), -1.0)):
        if not rows.any():
            continue
        found = bracket_exits(
            prices, entry_bar[rows], sign * stop[rows], sign * target[rows], end_bar[rows]
        )
        bar[rows], price[rows] = found.bar, sign * found.price
        stop_hit[rows], still_open[rows] = found.stop_hit, found.still_open
    return Exits(bar, price, stop_hit, still_open)


def _negated(candles: Candles) -> Candles:
    """Prices times −1: a falling price rises, so the high becomes the low."""
    return Candles(
        candles.symbol,
        candles.timeframe,
        candles.times,
        -candles.open,
        -candles.low,
        -candles.high,
        -candles.close,
        candles.volume,
    )


# --- statistics ------------------------------------------------------------------------


class _Columns(NamedTuple):
    """The evaluated trades as arrays, one element per trade."""

    reason: npt.NDArray[np.str_]
    symbol: npt.NDArray[np.str_]
    signal: npt.NDArray[np.str_]
    bucket: npt.NDArray[np.int64]  # confidence bucket; -1 without a confidence
    won: BoolArray
    lost: BoolArray
    returns: FloatArray

    @classmethod
    def of(cls, evaluated: Sequence[Counterfactual]) -> _Columns:
        trades = [c.order.trade for c in evaluated]
        return cls(
            reason=np.array([t.block_reason for t in trades], dtype=np.str_),
            symbol=np.array([t.symbol for t in trades], dtype=np.str_),
            signal=np.array([t.signal.value for t in trades], dtype=np.str_),
            bucket=np.array([confidence_bucket(t.confidence) for t in trades], dtype=np.int64),
            won=np.array([c.outcome is TradeOutcome.WON for c in evaluated], dtype=np.bool_),
            lost=np.array([c.outcome is TradeOutcome.LOST for c in evaluated], dtype=np.bool_),
            returns=np.array([c.return_pct for c in evaluated], dtype=np.float64),
        )

    @property
    def every(self) -> BoolArray:
        return np.ones(len(self.returns), dtype=np.bool_)

    def grouped(self, keys: npt.NDArray[np.str_], rows: BoolArray) -> tuple[GroupStats, ...]:
        """Statistics of the trades in ``rows`` per key (one key per trade), in key order."""
        labels, group = np.unique(keys[rows], return_inverse=True)

        def total(values: FloatArray | BoolArray) -> FloatArray:
            summed = np.bincount(group, weights=values[rows], minlength=len(labels))
            return summed.astype(np.float64)

        trades = np.bincount(group, minlength=len(labels))
        wins, losses = total(self.won), total(self.lost)
        gains, avoided = total(np.maximum(self.returns, 0.0)), total(np.maximum(-self.returns, 0.0))
        return tuple(
            GroupStats(
                str(label),
                int(trades[i]),
                int(wins[i]),
                int(losses[i]),
                float(gains[i]),
                float(avoided[i]),
            )
            for i, label in enumerate(labels)
        )

    def pooled(self, key: str, rows: BoolArray) -> GroupStats:
        """The trades in ``rows`` as one group."""
        groups = self.grouped(np.full(len(rows), key), rows)
        return groups[0] if groups else GroupStats(key, 0, 0, 0, 0.0, 0.0)


def confidence_bucket(confidence: float | None) -> int:
    """0 for [0, 0.05), 1 for [0.05, 0.10), ..., 19 for [0.95, 1]; -1 for no confidence."""
    if confidence is None:
        return -1
    # Rounded first: 0.6 / 0.05 is 11.999999999999998 in floating point.
    return min(math.floor(round(confidence / BUCKET_WIDTH, 9)), _BUCKETS - 1)


def bucket_span(lowest: int, highest: int) -> str:
    """The confidences of buckets ``lowest`` to ``highest``: "0.60–0.65"; "unknown" for -1."""
    if lowest < 0:
        return "unknown"
    return f"{lowest * BUCKET_WIDTH:.2f}–{(highest + 1) * BUCKET_WIDTH:.2f}"


def statistics(evaluated: Sequence[Counterfactual]) -> Statistics:
    columns = _Columns.of(evaluated)
    every = columns.every
    labels = np.array([bucket_span(b, b) for b in columns.bucket.tolist()], dtype=np.str_)
    return Statistics(
        overall=columns.pooled("all", every),
        by_reason=_largest_first(columns.grouped(columns.reason, every)),
        by_symbol=_largest_first(columns.grouped(columns.symbol, every)),
        by_signal=_largest_first(columns.grouped(columns.signal, every)),
        by_confidence=columns.grouped(labels, every),  # in confidence order, unknown last
    )


def _largest_first(groups: tuple[GroupStats, ...]) -> tuple[GroupStats, ...]:
    return tuple(sorted(groups, key=lambda group: (-group.trades, group.key)))


# --- recommendations -------------------------------------------------------------------


def wilson_interval(successes: int, trials: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion: sound for small n and rates near 0 or 1."""
    if trials == 0:
        return 0.0, 1.0
    rate, z2 = successes / trials, z * z
    middle = (rate + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(rate * (1 - rate) / trials + z2 / (4 * trials**2)) / (1 + z2 / trials)
    return max(0.0, middle - half), min(1.0, middle + half)


def recommendations(
    evaluated: Sequence[Counterfactual],
    blocked: Sequence[BlockedTrade],
    policy: CounterfactualPolicy,
) -> tuple[Recommendation, ...]:
    """The rule of the module docstring, per block reason and signal of ``evaluated``;
    ``blocked`` (evaluated or not) gives each reason's share of a signal's blocks."""
    columns = _Columns.of(evaluated)
    overall = columns.pooled("all", columns.every).win_rate
    if overall is None:
        return ()
    judge = _Judge(policy, overall)
    found = []
    for reason, signal in sorted(
        set(zip(columns.reason.tolist(), columns.signal.tolist(), strict=True))
    ):
        rows = (columns.reason == reason) & (columns.signal == signal)
        side, share = Side(signal), _share_pct(blocked, reason, Side(signal))
        lowered = None
        if reason == CONFIDENCE_REASON:
            lowered = _lower_min_confidence(columns, rows, judge, side, share)
        found.append(lowered or judge.block(columns.pooled(reason, rows), side, share))
    return tuple(advice for advice in found if advice is not None)


def _share_pct(blocked: Sequence[BlockedTrade], reason: str, signal: Side) -> float:
    of_signal = [trade for trade in blocked if trade.signal is signal]
    return 100 * sum(trade.block_reason == reason for trade in of_signal) / len(of_signal)


@dataclass(frozen=True)
class _Judge:
    policy: CounterfactualPolicy
    overall: float  # the would-have-won rate of every evaluated trade

    def evidence(self, group: GroupStats) -> Evidence | None:
        """The group with its interval; None when it has too few resolved trades."""
        if group.resolved < self.policy.min_trades:
            return None
        return Evidence(group, *wilson_interval(group.wins, group.resolved, self.policy.z))

    def costs(self, evidence: Evidence) -> bool:
        mean = evidence.group.mean_return_pct or 0.0
        return evidence.win_rate_low > self.overall and mean > 0

    def pays(self, evidence: Evidence) -> bool:
        mean = evidence.group.mean_return_pct or 0.0
        return evidence.win_rate_high < self.overall and mean < 0

    def block(self, group: GroupStats, signal: Side, share: float) -> Recommendation | None:
        """Review a block reason that costs, keep one that pays."""
        evidence = self.evidence(group)
        if evidence is None or not (self.costs(evidence) or self.pays(evidence)):
            return None
        if self.costs(evidence):
            advice, action = Advice.REVIEW, f"review the {group.key} rule for {signal} signals"
        else:
            advice, action = Advice.KEEP, f"keep it: blocking them saved {-group.cost_pct:.2f} %"
        text = f"{self.finding(group.key, evidence, signal, share, 'they')} → {action}"
        return Recommendation(advice, group.key, signal, share, self.overall, evidence, text)

    def finding(
        self, reason: str, evidence: Evidence, signal: Side, share: float, which: str
    ) -> str:
        """'min_confidence blocks 38 % of blocked BUY signals; those ... would have won ...'"""
        group, level = evidence.group, _percent(self.policy.interval_level)
        return (
            f"{reason} blocks {_percent(share / 100)} of blocked {signal} "
            f"signals; {which} would have won {_percent(group.win_rate or 0.0)} ({level} CI "
            f"{evidence.win_rate_low * 100:.0f}–{_percent(evidence.win_rate_high)}, "
            f"n={group.resolved}) against {_percent(self.overall)} overall, mean return "
            f"{group.mean_return_pct or 0.0:+.2f} %"
        )


def _lower_min_confidence(
    columns: _Columns, rows: BoolArray, judge: _Judge, signal: Side, share: float
) -> Recommendation | None:
    """Pool the confidence buckets from the highest down while each costs on its own."""
    buckets: list[int] = []
    pooled: list[Evidence] = []
    for bucket in sorted(set(columns.bucket[rows].tolist()) - {-1}, reverse=True):
        in_bucket = rows & (columns.bucket == bucket)
        evidence = judge.evidence(columns.pooled(bucket_span(bucket, bucket), in_bucket))
        if evidence is None or not judge.costs(evidence):
            break
        buckets.append(bucket)
        pooled.append(evidence)
    if not pooled:
        return None
    lowest, span = buckets[-1], bucket_span(buckets[-1], buckets[0])
    evidence = judge.evidence(columns.pooled(span, rows & (columns.bucket >= lowest)))
    assert evidence is not None  # each pooled bucket alone has enough trades
    suggested = round(lowest * BUCKET_WIDTH, 2)
    which = f"those with confidence {span}"
    text = (
        f"{judge.finding(CONFIDENCE_REASON, evidence, signal, share, which)} → consider "
        f"{CONFIDENCE_REASON} {suggested:.2f}"
    )
    return Recommendation(
        Advice.LOWER_MIN_CONFIDENCE,
        CONFIDENCE_REASON,
        signal,
        share,
        judge.overall,
        evidence,
        text,
        buckets=tuple(pooled),
        suggested_value=suggested,
    )


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.0f} %"
