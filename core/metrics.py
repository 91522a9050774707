"""Backtest statistics and fitness scores.

Statistics follow the definitions of the ``backtesting`` package (v0.6) so that results can be
cross-checked against it; percentages are in percent (12.5 means 12.5 %):

* ``trades``: number of closed trades (trades still open at the end are not counted).
* ``win_rate``: share of closed trades whose cash profit after commissions is > 0.
* ``profit_factor``: sum of the winning trades' returns divided by the absolute sum of the
  losing trades' returns (per-trade returns, as backtesting does, so it does not depend on
  position size). With winning trades but no losing trade it is ``PROFIT_FACTOR_CAP``.
* ``expectancy``: mean return of a closed trade.
* ``roi``: change of equity from the first to the last bar, open trades marked to the close.
* ``max_drawdown``: largest fall of equity below its running peak, as a POSITIVE percentage
  of that peak.
* ``exposure``: share of bars spent in a position, counting a trade's entry and exit bars and
  (unlike backtesting, which ignores them) the bars of a trade still open at the end.
* ``annualized_return``, ``sharpe``, ``sortino``: computed from *period* returns of the equity
  curve, not bar returns. The period is a calendar day (UTC) unless the bar interval — the
  median spacing of the last 100 bars, in whole days — is 7, 31 or 365 days, which selects
  calendar weeks (Monday to Sunday), months or years. The last equity of each period that has
  bars gives returns ``r_1..r_k`` (``r_i = e_i / e_(i-1) - 1``). With ``N`` periods per year —
  52 for weeks, 12 for months, 1 for years, otherwise 365 when more than 2/7 × 0.6 of the bars
  fall on a weekend (markets that trade every day, such as crypto) and 252 when not — and
  ``g`` the geometric mean of the ``r_i`` (0 when some ``r_i <= -1``):

  - ``annualized_return = (1 + g)^N - 1``
  - ``volatility = sqrt((var(r, ddof=1) + (1 + g)^2)^N - (1 + g)^(2N))``
  - ``sharpe = annualized_return / volatility`` (risk-free rate 0; NaN when volatility is 0,
    e.g. without trades, or when there are fewer than two returns)
  - ``sortino = annualized_return / (sqrt(mean(min(r_i, 0)^2)) * sqrt(N))`` (±inf without a
    losing period, NaN if the equity did not move).

A statistic that is undefined (e.g. the win rate without trades) is NaN; ``fitness`` never
returns NaN.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
TimeArray = npt.NDArray[np.datetime64]

PROFIT_FACTOR_CAP = 100.0
WORST_FITNESS = -math.inf  # for no closed trades or an undefined score: ranks last

_NS_PER_DAY = 86_400 * 10**9
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday is 0)


@dataclass(frozen=True)
class Stats:
    """Performance statistics of one backtest; see the module docstring for definitions."""

    trades: int
    win_rate: float
    profit_factor: float
    expectancy: float
    roi: float
    annualized_return: float
    max_drawdown: float
    sharpe: float
    sortino: float
    exposure: float

    def as_dict(self) -> dict[str, float]:
        """The statistics by name; undefined ones stay NaN (and Sortino may be infinite)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ClosedTrades:
    """Closed trades of a batch of backtests as flat arrays, one element per trade."""

    owner: IntArray  # row of the backtest (candidate) that made the trade
    pnl: FloatArray  # cash profit after commissions
    returns: FloatArray  # profit after commissions as a fraction of the entry value


@dataclass(frozen=True)
class ReturnPeriods:
    """The calendar periods of the risk-adjusted ratios (see the module docstring)."""

    ends: IntArray  # index of the last bar of every calendar period that has bars
    per_year: int


@dataclass(frozen=True)
class EquitySummary:
    """What the statistics need from the equity curves of a batch of backtests."""

    initial: float  # equity at the first bar
    at_period_ends: FloatArray  # one row per backtest, at the bars of ``return_periods``
    periods_per_year: int
    max_drawdown: FloatArray  # per backtest, as ``max_drawdown`` of its equity curve


def max_drawdown(path: FloatArray) -> FloatArray:
    """Largest fall of equity below its running peak, in percent of the peak, per row.

    A row holds equity values in time order; it may skip values that repeat the previous one
    and be padded with its last value, since repeating a value changes no drawdown.
    """
    peak = np.maximum.accumulate(path, axis=1)
    drawdown: FloatArray = np.nan_to_num((1 - path / peak).max(axis=1)) * 100
    return drawdown


def compute_stats(
    closed: ClosedTrades,
    equity: EquitySummary,
    bars_in_position: IntArray,
    bars: int,
) -> list[Stats]:
    """Statistics of a batch of backtests over the same ``bars`` bars."""
    rows = len(equity.at_period_ends)
    trade_count = np.bincount(closed.owner, minlength=rows)
    returns = closed.returns
    gross_profit = np.bincount(closed.owner, np.where(returns > 0, returns, 0.0), rows)
    gross_loss = np.bincount(closed.owner, np.where(returns < 0, -returns, 0.0), rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        win_rate = np.bincount(closed.owner, closed.pnl > 0, rows) / trade_count * 100
        expectancy = np.bincount(closed.owner, returns, rows) / trade_count * 100
        profit_factor = np.where(
            gross_loss > 0,
            gross_profit / gross_loss,
            np.where(gross_profit > 0, PROFIT_FACTOR_CAP, np.nan),
        )
    roi = (equity.at_period_ends[:, -1] - equity.initial) / equity.initial * 100
    annualized_return, sharpe, sortino = _risk_adjusted_returns(
        equity.at_period_ends, equity.periods_per_year
    )
    exposure = bars_in_position / bars * 100
    columns = zip(
        trade_count.tolist(),
        win_rate.tolist(),
        profit_factor.tolist(),
        expectancy.tolist(),
        roi.tolist(),
        (annualized_return * 100).tolist(),
        equity.max_drawdown.tolist(),
        sharpe.tolist(),
        sortino.tolist(),
        exposure.tolist(),
        strict=True,
    )
    return [Stats(*row) for row in columns]


def _risk_adjusted_returns(
    period_equity: FloatArray, periods_per_year: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Annualized return (fraction), Sharpe and Sortino ratios, per equity row.

    The operations are those of backtesting (pandas sums pairwise, as numpy does along
    contiguous rows), computed in place where possible since this runs over every candidate
    and period.
    """
    rows, count = period_equity.shape[0], period_equity.shape[1] - 1
    if count == 0:
        undefined = np.full(rows, np.nan)
        return undefined, undefined, undefined
    period_equity = np.ascontiguousarray(period_equity)
    returns = np.divide(period_equity[:, 1:], period_equity[:, :-1])
    returns -= 1
    work = returns + 1  # growth per period
    lowest_growth = work.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_log_growth = np.log(work, out=work).sum(axis=1) / count
        geometric_mean = np.where(lowest_growth <= 0, 0.0, np.exp(mean_log_growth) - 1)
        annualized = (1 + geometric_mean) ** periods_per_year - 1
        # Two-pass variance, as pandas computes it; NaN below two returns.
        mean = returns.sum(axis=1) / count
        np.square(np.subtract(mean[:, None], returns, out=work), out=work)
        variance = work.sum(axis=1) / (count - 1 if count > 1 else np.nan)
        volatility = np.sqrt(
            (variance + (1 + geometric_mean) ** 2) ** periods_per_year
            - (1 + geometric_mean) ** (2 * periods_per_year)
        )
        sharpe = np.where(volatility == 0, np.nan, annualized / volatility)
        np.square(np.minimum(returns, 0.0, out=work), out=work)
        downside = np.sqrt(work.mean(axis=1))
        sortino = annualized / (downside * np.sqrt(periods_per_year))
    return annualized, sharpe, sortino


def return_periods(times: TimeArray) -> ReturnPeriods:
    """The calendar periods whose returns give the risk-adjusted ratios (see module docstring)."""
    nanoseconds = times.astype("datetime64[ns]").astype(np.int64)
    days = nanoseconds // _NS_PER_DAY
    steps = np.diff(nanoseconds[-100:])
    step_days = int(np.median(steps) // _NS_PER_DAY) if steps.size else 0
    if step_days == 7:
        period, per_year = (days + _EPOCH_WEEKDAY) // 7, 52
    elif step_days == 31:
        period, per_year = times.astype("datetime64[M]").astype(np.int64), 12
    elif step_days == 365:
        period, per_year = times.astype("datetime64[Y]").astype(np.int64), 1
    else:
        weekend_share = np.mean((days + _EPOCH_WEEKDAY) % 7 >= 5)
        period, per_year = days, 365 if weekend_share > 2 / 7 * 0.6 else 252
    last_of_period = np.flatnonzero(np.diff(period) != 0)
    return ReturnPeriods(np.append(last_of_period, len(times) - 1), per_year)


FitnessFunction = Callable[[Stats], float]


def register_fitness(name: str, function: FitnessFunction) -> None:
    """Make ``function`` available to ``fitness`` under ``name``."""
    if name in _FITNESS_FUNCTIONS:
        raise ValueError(f"a fitness function named {name!r} is already registered")
    _FITNESS_FUNCTIONS[name] = function


def fitness_names() -> list[str]:
    return sorted(_FITNESS_FUNCTIONS)


def fitness(stats: Stats, name: str = "spec") -> float:
    """Score of a backtest for ranking candidates; higher is better, never NaN.

    A backtest without closed trades scores ``WORST_FITNESS`` (-inf), so a candidate that
    never trades ranks below every candidate that does; so does an undefined score (NaN).
    """
    try:
        function = _FITNESS_FUNCTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown fitness {name!r}; available: {', '.join(fitness_names())}"
        ) from None
    if stats.trades == 0:
        return WORST_FITNESS
    score = function(stats)
    return WORST_FITNESS if math.isnan(score) else score


def _zero_if_nan(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def spec_fitness(stats: Stats) -> float:
    """The specification's weighted score; an undefined Sharpe or profit factor counts as 0."""
    return (
        stats.win_rate * 0.3
        + min(_zero_if_nan(stats.profit_factor), 5) * 20 * 0.25
        + min(_zero_if_nan(stats.sharpe), 3) * 33.33 * 0.2
        + min(stats.roi, 100) * 0.15
        - abs(stats.max_drawdown) * 0.1
    )


def calmar_ratio(stats: Stats) -> float:
    """Annualized return over maximum drawdown (±inf without drawdown)."""
    if stats.max_drawdown == 0:
        return math.copysign(math.inf, stats.annualized_return) if stats.annualized_return else 0.0
    return stats.annualized_return / stats.max_drawdown


_FITNESS_FUNCTIONS: dict[str, FitnessFunction] = {
    "spec": spec_fitness,
    "sharpe": lambda stats: stats.sharpe,
    "sortino": lambda stats: stats.sortino,
    "calmar": calmar_ratio,
    "roi": lambda stats: stats.roi,
}
