"""The optimization cycle as a pure function: candidates around a baseline, walk-forward
validation, overfitting statistics, and the rule that decides whether the best candidate wins.

`run_cycle` takes a picklable `CycleJob` and does no I/O of its own (an Optuna study storage
may be handed in), so the use cases run it in a worker process.

Candidates move each tuned parameter (the strategy parameters with a `step` in the schema)
by whole steps from the baseline, clipped to the parameter's bounds and rounded to its type:

* grid `spec`: the specification's 8 combinations, every parameter one step up or down. They
  are the 2^(k-1) half of the corners whose signs multiply to +1 (for RSI, ADX, SL, TP: TP's
  sign is the product of the other three), which holds every example the spec lists;
* grid `full`: every combination of -1, 0 and +1 step, 3^k points (81 for four parameters);
* `bayes`: Optuna's TPE sampler over ± `bayes_steps` steps, asked a batch at a time so that
  one vectorized backtest evaluates the batch; the baseline is told to the study first.

Walk-forward: the bars are cut into `in_sample_windows + out_of_sample_windows` equal
segments. Fold f is judged on out-of-sample segment `in_sample_windows + f` after being
scored on the segments before it: the `in_sample_windows` just before (rolling) or all of
them from the first (anchored). Every window is backtested on its own (its first ~28 bars
warm the indicators up). A configuration's in-sample and out-of-sample fitness are the means
of its fitness over the folds. The winner is the candidate with the best in-sample fitness;
only it is judged out of sample, so the out-of-sample data never chooses. It applies when

* its out-of-sample fitness beats the baseline's by at least `min_improvement_pct`, where
  improvement % = 100 × (winner − baseline) / max(|baseline|, 1): relative to the baseline's
  magnitude, so a less negative fitness counts as better, with a floor of one fitness point
  so a baseline near 0 does not turn a tiny gain into a huge percentage. A baseline without
  an out-of-sample trade scores -inf: any winner that trades beats it (improvement None);
* and it closed at least `min_trades` trades out of sample, over all folds and symbols.

Several symbols form one portfolio with equal capital: their statistics are combined by
`combine_stats`, per window, before the fitness is taken.

Reported beside the decision: the winner's in-sample → out-of-sample drop (in % of the
in-sample fitness, same floor), the Deflated Sharpe Ratio of the winner over the whole range
counting every configuration tried, and the Probability of Backtest Overfitting of the
candidate set by CSCV over `pbo_blocks` blocks (core.overfitting). The per-period Sharpe
ratios of the trials are their annualized Sharpe divided by √(periods per year).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import optuna

from core.backtest import (
    BacktestResult,
    BacktestSettings,
    Candles,
    RsiAdxStrategy,
    evaluate_candidates,
    run_backtest,
)
from core.errors import ValidationError
from core.metrics import (
    ClosedTrades,
    EquitySummary,
    Stats,
    compute_stats,
    fitness,
    fitness_names,
    max_drawdown,
    return_periods,
)
from core.models import ClosedTradeEvent
from core.overfitting import deflated_sharpe_ratio, probability_of_backtest_overfitting
from core.params import Params, ParamSchema, ParamValue

FloatArray = npt.NDArray[np.float64]

FITNESS_FLOOR = 1.0  # fitness points: the smallest denominator of a percentage change
MIN_WINDOW_BARS = 100  # a window must hold more than the indicators' warm-up
MAX_PBO_BLOCKS = 16
EQUITY_POINTS = 500  # points of the equity curves kept for reports
STRATEGY = RsiAdxStrategy()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Method(StrEnum):
    GRID = "grid"
    BAYES = "bayes"


class GridShape(StrEnum):
    SPEC = "spec"
    FULL = "full"


class WalkForwardMode(StrEnum):
    ROLLING = "rolling"
    ANCHORED = "anchored"


@dataclass(frozen=True)
class CycleSettings:
    """How a cycle searches and judges; from the [optimizer] section of the configuration."""

    method: Method = Method.GRID
    grid: GridShape = GridShape.SPEC
    fitness: str = "spec"
    walk_forward: WalkForwardMode = WalkForwardMode.ROLLING
    in_sample_windows: int = 2
    out_of_sample_windows: int = 3
    min_trades: int = 30
    min_improvement_pct: float = 5.0
    pbo_blocks: int = 10
    bayes_trials: int = 64
    bayes_batch: int = 16
    bayes_steps: int = 4
    backtest: BacktestSettings = field(default_factory=BacktestSettings)

    def __post_init__(self) -> None:
        if self.fitness not in fitness_names():
            raise ValueError(f"fitness must be one of {', '.join(fitness_names())}")
        if self.in_sample_windows < 1 or self.out_of_sample_windows < 1:
            raise ValueError(
                "walk-forward needs at least one in-sample and one out-of-sample window"
            )
        if not 4 <= self.pbo_blocks <= MAX_PBO_BLOCKS or self.pbo_blocks % 2:
            # C(16, 8) = 12,870 splits; each 2 more blocks multiply them by about 4.
            raise ValueError(f"pbo_blocks must be an even number from 4 to {MAX_PBO_BLOCKS}")
        if min(self.bayes_trials, self.bayes_batch, self.bayes_steps, self.min_trades) < 1:
            raise ValueError("bayes_trials, bayes_batch, bayes_steps and min_trades must be >= 1")


@dataclass(frozen=True)
class Axis:
    """One tuned parameter: moved from its baseline value by whole steps, within bounds."""

    name: str
    whole: bool
    step: float
    low: float
    high: float
    baseline: ParamValue

    def at(self, steps: int) -> ParamValue:
        value = min(max(self.baseline + steps * self.step, self.low), self.high)
        return round(value) if self.whole else round(value, 10)

    def reach(self, most: int) -> tuple[int, int]:
        """Steps available below and above the baseline, at most `most` each way."""
        below = math.floor((self.baseline - self.low) / self.step + 1e-9)
        above = math.floor((self.high - self.baseline) / self.step + 1e-9)
        return min(most, max(below, 0)), min(most, max(above, 0))


def search_axes(schema: ParamSchema, baseline: Params) -> tuple[Axis, ...]:
    """The strategy parameters that have a step in the schema, around their baseline values."""
    return tuple(
        Axis(spec.name, spec.type == "int", spec.step, spec.min, spec.max, baseline[spec.name])
        for spec in schema
        if spec.name in STRATEGY.parameter_names and spec.step
    )


def spec_grid(axes: Sequence[Axis]) -> list[Params]:
    """Every parameter a step up or down, in the half of the corners whose signs multiply to 1."""
    corners = itertools.product((1, -1), repeat=len(axes))
    return [_point(axes, signs) for signs in corners if math.prod(signs) == 1]


def full_grid(axes: Sequence[Axis]) -> list[Params]:
    return [_point(axes, steps) for steps in itertools.product((-1, 0, 1), repeat=len(axes))]


def _point(axes: Sequence[Axis], steps: Iterable[int]) -> Params:
    return {axis.name: axis.at(step) for axis, step in zip(axes, steps, strict=True)}


# --- statistics of several backtests -------------------------------------------------


def combine_stats(parts: Sequence[Stats]) -> Stats:
    """One set of statistics for backtests on equal capital (the symbols of a portfolio, or
    consecutive windows): trades add up; win rate, profit factor and expectancy are averaged
    weighted by trades; ROI, annualized return, Sharpe, Sortino and exposure are plain means
    (ROI exactly the portfolio's, the others an approximation); the drawdown is the largest."""
    if len(parts) == 1:
        return parts[0]
    trades = np.array([part.trades for part in parts], dtype=np.float64)

    def by_trade(name: str) -> float:
        values = np.array([getattr(part, name) for part in parts])
        traded = trades > 0
        return (
            float(np.average(values[traded], weights=trades[traded])) if traded.any() else math.nan
        )

    def mean(name: str) -> float:
        values = np.array([getattr(part, name) for part in parts])
        defined = values[~np.isnan(values)]
        return float(defined.mean()) if defined.size else math.nan

    return Stats(
        trades=int(trades.sum()),
        win_rate=by_trade("win_rate"),
        profit_factor=by_trade("profit_factor"),
        expectancy=by_trade("expectancy"),
        roi=mean("roi"),
        annualized_return=mean("annualized_return"),
        max_drawdown=max(part.max_drawdown for part in parts),
        sharpe=mean("sharpe"),
        sortino=mean("sortino"),
        exposure=mean("exposure"),
    )


def live_stats(trades: Sequence[ClosedTradeEvent]) -> Stats:
    """Statistics of closed engine trades, as if each had used the whole account (as the
    backtester sizes): the equity compounds each trade's `pnl_pct` in the order they closed,
    and the risk-adjusted ratios come from its calendar-day returns."""
    ordered = sorted(trades, key=lambda trade: trade.exit_time)
    returns = np.array([trade.pnl_pct / 100 for trade in ordered], dtype=np.float64)
    growth = np.concatenate(([1.0], np.cumprod(1 + returns)))
    exits = np.array([_datetime64(trade.exit_time) for trade in ordered], dtype="datetime64[ns]")
    periods = return_periods(exits) if len(exits) else None
    at_ends = growth[np.concatenate(([0], periods.ends + 1))] if periods else growth[:1]
    equity = EquitySummary(
        initial=1.0,
        at_period_ends=at_ends[None, :],
        periods_per_year=periods.per_year if periods else 365,
        max_drawdown=max_drawdown(growth[None, :]),
    )
    closed = ClosedTrades(
        owner=np.zeros(len(ordered), dtype=np.int64),
        pnl=np.array([trade.pnl for trade in ordered], dtype=np.float64),
        returns=returns,
    )
    return compute_stats(closed, equity, np.zeros(1, dtype=np.int64), 1)[0]


# --- the cycle -----------------------------------------------------------------------


@dataclass(frozen=True)
class CycleJob:
    """Everything a cycle needs; picklable. The candles of every symbol share one time grid."""

    name: str  # names the Optuna study: the run id
    symbols: tuple[Candles, ...]
    axes: tuple[Axis, ...]
    baseline: Params  # every strategy parameter
    settings: CycleSettings
    seed: int
    study_storage: Callable[[], Any] | None = None  # an Optuna storage; None: in memory


@dataclass(frozen=True)
class Score:
    """A configuration's walk-forward result; fitness -inf where it made no closed trade."""

    parameters: Params
    in_sample_fitness: float  # of the in-sample statistics
    out_of_sample_fitness: float
    in_sample: Stats  # combined over folds and symbols
    out_of_sample: Stats
    folds: tuple[tuple[float, float], ...]  # (in-sample, out-of-sample) fitness per fold


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime  # exclusive: the open time of the bar after the last


@dataclass(frozen=True)
class Fold:
    in_sample: Window
    out_of_sample: Window


@dataclass(frozen=True)
class Decision:
    applies: bool
    improvement_pct: float | None  # out of sample, winner against baseline
    drop_pct: float | None  # the winner's in-sample -> out-of-sample fitness drop
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class EquityCurves:
    """Portfolio equity (growth of 1) over the whole range, thinned to EQUITY_POINTS."""

    times: tuple[datetime, ...]
    baseline: tuple[float, ...]
    winner: tuple[float, ...] | None


@dataclass(frozen=True)
class CycleResult:
    baseline: Score
    candidates: tuple[Score, ...]  # in the order tried; the baseline is not among them
    winner: int | None  # index of the best in-sample candidate
    decision: Decision
    deflated_sharpe_ratio: float | None
    probability_of_backtest_overfitting: float | None
    folds: tuple[Fold, ...]
    equity: EquityCurves

    @property
    def winning_score(self) -> Score | None:
        return None if self.winner is None else self.candidates[self.winner]


def run_cycle(job: CycleJob) -> CycleResult:
    evaluator = _Evaluator(job)
    baseline = evaluator.scores([job.baseline])[0]
    if job.settings.method is Method.BAYES:
        candidates = _bayes_candidates(job, evaluator, baseline)
    else:
        grid = spec_grid if job.settings.grid is GridShape.SPEC else full_grid
        points = _distinct([{**job.baseline, **point} for point in grid(job.axes)], job.baseline)
        candidates = evaluator.scores(points)
    winner = _best_in_sample(candidates, job.settings.min_trades)
    winning = None if winner is None else candidates[winner]
    configurations = [baseline, *candidates]
    parameters = [score.parameters for score in configurations]
    return CycleResult(
        baseline=baseline,
        candidates=tuple(candidates),
        winner=winner,
        decision=decide(baseline, winning, job.settings),
        deflated_sharpe_ratio=evaluator.deflated_sharpe(winning, parameters),
        probability_of_backtest_overfitting=probability_of_backtest_overfitting(
            evaluator.block_fitness(parameters)
        ),
        folds=evaluator.fold_windows(),
        equity=evaluator.equity_curves(baseline, winning),
    )


def improvement_pct(baseline: float, candidate: float) -> float | None:
    """100 × (candidate − baseline) / max(|baseline|, 1); None unless both are finite."""
    if not (math.isfinite(baseline) and math.isfinite(candidate)):
        return None
    return 100 * (candidate - baseline) / max(abs(baseline), FITNESS_FLOOR)


def decide(baseline: Score, winner: Score | None, settings: CycleSettings) -> Decision:
    """The apply rule (see the module docstring), with the reasons in words."""
    if winner is None:
        return Decision(False, None, None, ("no candidate: the search space is empty",))
    ahead = improvement_pct(baseline.out_of_sample_fitness, winner.out_of_sample_fitness)
    change = improvement_pct(winner.in_sample_fitness, winner.out_of_sample_fitness)
    drop = None if change is None else -change
    trades, needed, required = (
        winner.out_of_sample.trades,
        settings.min_trades,
        settings.min_improvement_pct,
    )
    reasons: list[str] = []
    traded = math.isfinite(winner.out_of_sample_fitness)
    if not traded:
        reasons.append("the best in-sample candidate made no closed trade out of sample")
    elif trades < needed:
        reasons.append(f"{trades} out-of-sample trades, fewer than the minimum of {needed}")
    enough = not reasons
    if ahead is None:
        if traded:
            reasons.append(
                "the baseline made no closed trade out of sample: a trading candidate beats it"
            )
        return Decision(enough and traded, None, drop, tuple(reasons))
    comparison = ">=" if ahead >= required else "<"
    reasons.append(
        f"out-of-sample fitness {winner.out_of_sample_fitness:.2f} against the baseline's "
        f"{baseline.out_of_sample_fitness:.2f}: {ahead:+.1f} % {comparison} "
        f"{required:+.1f} % required"
    )
    return Decision(enough and ahead >= required, ahead, drop, tuple(reasons))


def _best_in_sample(candidates: Sequence[Score], min_trades: int) -> int | None:
    if not candidates:
        return None
    return max(range(len(candidates)), key=lambda i: _rank_key(candidates[i], min_trades))


def _rank_key(score: Score, min_trades: int) -> tuple[bool, float]:
    """In-sample ranking: enough trades first, then fitness (a few lucky trades score high)."""
    return score.in_sample.trades >= min_trades, score.in_sample_fitness


def _distinct(points: Iterable[Params], baseline: Params) -> list[Params]:
    """Points in order, each once, without the baseline (clipping to bounds can repeat one)."""
    seen = {_key(baseline)}
    unique = []
    for point in points:
        if _key(point) not in seen:
            seen.add(_key(point))
            unique.append(point)
    return unique


def _key(params: Params) -> tuple[tuple[str, ParamValue], ...]:
    return tuple(sorted(params.items()))


class _Evaluator:
    """Backtests configurations on the job's windows, every symbol, many at once."""

    def __init__(self, job: CycleJob) -> None:
        if not job.symbols:
            raise ValidationError("an optimization needs at least one symbol")
        bars = {len(candles) for candles in job.symbols}
        if len(bars) != 1:
            raise ValidationError("the symbols' candles must cover the same bars")
        self._job = job
        self._bars = bars.pop()
        settings = job.settings
        segments = settings.in_sample_windows + settings.out_of_sample_windows
        self._folds = _fold_slices(self._bars, settings)
        self._blocks = _equal_slices(self._bars, settings.pbo_blocks)
        shortest = self._bars // max(segments, settings.pbo_blocks)
        if shortest < MIN_WINDOW_BARS:
            raise ValidationError(
                f"{self._bars} bars are too few: {segments} walk-forward segments and "
                f"{settings.pbo_blocks} PBO blocks need at least {MIN_WINDOW_BARS} bars each; "
                "lengthen the lookback"
            )

    def scores(self, points: Sequence[Params]) -> list[Score]:
        if not points:
            return []
        folds = [
            (self._stats(in_sample, points), self._stats(out_of_sample, points))
            for in_sample, out_of_sample in self._folds
        ]
        return [
            self._score(point, [(ins[i], outs[i]) for ins, outs in folds])
            for i, point in enumerate(points)
        ]

    def _score(self, point: Params, folds: Sequence[tuple[Stats, Stats]]) -> Score:
        name = self._job.settings.fitness
        in_sample = combine_stats([ins for ins, _ in folds])
        out_of_sample = combine_stats([outs for _, outs in folds])
        return Score(
            parameters=point,
            in_sample_fitness=fitness(in_sample, name),
            out_of_sample_fitness=fitness(out_of_sample, name),
            in_sample=in_sample,
            out_of_sample=out_of_sample,
            folds=tuple((fitness(ins, name), fitness(outs, name)) for ins, outs in folds),
        )

    def _stats(self, window: slice, points: Sequence[Params]) -> list[Stats]:
        settings = self._job.settings.backtest
        per_symbol = [
            evaluate_candidates(_sliced(candles, window), points, settings, STRATEGY)
            for candles in self._job.symbols
        ]
        return [combine_stats(column) for column in zip(*per_symbol, strict=True)]

    def block_fitness(self, points: Sequence[Params]) -> FloatArray:
        name = self._job.settings.fitness
        return np.array(
            [
                [fitness(stats, name) for stats in self._stats(block, points)]
                for block in self._blocks
            ]
        )

    def fold_windows(self) -> tuple[Fold, ...]:
        return tuple(
            Fold(self._window(in_sample), self._window(out_of_sample))
            for in_sample, out_of_sample in self._folds
        )

    def _window(self, bars: slice) -> Window:
        candles = self._job.symbols[0]
        bar = timedelta(seconds=candles.bar_seconds)
        return Window(_utc(candles.times[bars.start]), _utc(candles.times[bars.stop - 1]) + bar)

    def deflated_sharpe(self, winner: Score | None, points: Sequence[Params]) -> float | None:
        if winner is None:
            return None
        times = self._job.symbols[0].times
        periods = return_periods(times)
        whole = slice(0, self._bars)
        per_period = math.sqrt(periods.per_year)
        trial_sharpes = [stats.sharpe / per_period for stats in self._stats(whole, points)]
        growth = self._growth(winner.parameters)[periods.ends]
        returns = np.diff(np.concatenate(([1.0], growth))) / np.concatenate(([1.0], growth[:-1]))
        return deflated_sharpe_ratio(returns, trial_sharpes, len(points))

    def equity_curves(self, baseline: Score, winner: Score | None) -> EquityCurves:
        shown = np.unique(
            np.linspace(0, self._bars - 1, min(EQUITY_POINTS, self._bars)).astype(int)
        )
        times = self._job.symbols[0].times[shown]

        def thinned(score: Score) -> tuple[float, ...]:
            return tuple(float(value) for value in self._growth(score.parameters)[shown])

        return EquityCurves(
            times=tuple(_utc(time) for time in times),
            baseline=thinned(baseline),
            winner=None if winner is None else thinned(winner),
        )

    def _growth(self, params: Params) -> FloatArray:
        """The portfolio's equity at every bar close, as a multiple of the starting cash."""
        settings = self._job.settings.backtest
        curves = [run_backtest(c, params, settings, STRATEGY).equity for c in self._job.symbols]
        growth: FloatArray = np.mean(curves, axis=0) / settings.cash
        return growth


def _fold_slices(bars: int, settings: CycleSettings) -> list[tuple[slice, slice]]:
    segment = bars // (settings.in_sample_windows + settings.out_of_sample_windows)
    folds = []
    for fold in range(settings.out_of_sample_windows):
        start = (settings.in_sample_windows + fold) * segment
        last = fold == settings.out_of_sample_windows - 1
        first = 0 if settings.walk_forward is WalkForwardMode.ANCHORED else fold * segment
        folds.append((slice(first, start), slice(start, bars if last else start + segment)))
    return folds


def _equal_slices(bars: int, count: int) -> list[slice]:
    edges = np.linspace(0, bars, count + 1).astype(int)
    return [slice(int(start), int(stop)) for start, stop in itertools.pairwise(edges)]


def _sliced(candles: Candles, bars: slice) -> Candles:
    return Candles(
        candles.symbol,
        candles.timeframe,
        candles.times[bars],
        candles.open[bars],
        candles.high[bars],
        candles.low[bars],
        candles.close[bars],
        candles.volume[bars],
    )


def _bayes_candidates(job: CycleJob, evaluator: _Evaluator, baseline: Score) -> list[Score]:
    """TPE over whole-step offsets from the baseline, a batch of trials per backtest."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = job.settings
    distributions: dict[str, Any] = {
        axis.name: optuna.distributions.IntDistribution(-below, above)
        for axis in job.axes
        for below, above in [axis.reach(settings.bayes_steps)]
    }
    study = optuna.create_study(
        study_name=job.name,
        storage=job.study_storage() if job.study_storage else None,
        sampler=optuna.samplers.TPESampler(seed=job.seed),
        direction="maximize",
    )
    study.add_trial(
        optuna.trial.create_trial(
            params=dict.fromkeys(distributions, 0),
            distributions=distributions,
            value=_objective(baseline, settings.min_trades),
        )
    )
    known = {_key(baseline.parameters): baseline}
    tried: list[Score] = []
    asked = 0
    while asked < settings.bayes_trials:
        batch = [
            study.ask(distributions)
            for _ in range(min(settings.bayes_batch, settings.bayes_trials - asked))
        ]
        asked += len(batch)
        points = [
            {**job.baseline, **_point(job.axes, (trial.params[a.name] for a in job.axes))}
            for trial in batch
        ]
        fresh = [p for p in dict((_key(p), p) for p in points).values() if _key(p) not in known]
        for score in evaluator.scores(fresh):
            known[_key(score.parameters)] = score
            tried.append(score)
        for trial, point in zip(batch, points, strict=True):
            study.tell(trial, _objective(known[_key(point)], settings.min_trades))
    return tried


def _objective(score: Score, min_trades: int) -> float:
    """What TPE maximizes: the in-sample ranking, with too few trades as the worst score."""
    enough, value = _rank_key(score, min_trades)
    return value if enough else -math.inf


# --- one backtest, for the CLI -------------------------------------------------------


@dataclass(frozen=True)
class BacktestJob:
    candles: Candles
    parameters: Params
    settings: BacktestSettings


def backtest_job(job: BacktestJob) -> BacktestResult:
    return run_backtest(job.candles, job.parameters, job.settings, STRATEGY)


def _utc(time: np.datetime64) -> datetime:
    microseconds = int(time.astype("datetime64[us]").astype(np.int64))
    return _EPOCH + timedelta(microseconds=microseconds)


def _datetime64(moment: datetime) -> np.datetime64:
    return np.datetime64(int((moment - _EPOCH) / timedelta(microseconds=1)), "us")
