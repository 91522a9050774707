"""Throughput of core.backtest next to the ``backtesting`` package, on the same data and candidates.

    python bench/bench_backtest.py [--quick]

Prints, for the 81-candidate grid of the cross-check and for 1,000 random candidates from the box
that grid spans, backtesting's time and ours (statistics included) as a ratio; the spec's cycle
time (8 candidates x 3 symbols x 30 days of 5-minute bars); and peak memory. backtesting is
timed run by run, on all or on a sample of the candidates (then extrapolated per candidate, as
printed); our time is the best of a few repetitions. ``--quick`` samples fewer backtesting
runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting's progress bars, read at import
REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))  # for the cross-check's reference strategy and datasets

from backtesting import Backtest  # noqa: E402

from core.backtest import BacktestSettings, Candles, evaluate_candidates  # noqa: E402
from core.metrics import fitness  # noqa: E402
from storage.marketdata import load_candles  # noqa: E402
from tests.crosscheck.test_vs_backtesting import DATASETS, GRID, Dataset, RsiAdxReference  # noqa: E402

MARKET_DATA = REPOSITORY / ".." / "shared" / "data"
SPEC_FILES = ("ETH_BTC-5m.feather", "ADA_BTC-5m.feather", "LTC_BTC-5m.json")
SPEC_BARS = 30 * 24 * 12  # 30 days of 5-minute bars
BASELINE = {
    "long_rsi_entry": 35.0,
    "long_adx_min": 20.0,
    "sl_atr_multiplier": 1.5,
    "tp_atr_multiplier": 2.5,
}
RANDOM_CANDIDATES = 1_000
REPEATS = 3

Params = Mapping[str, float]


def random_candidates(count: int) -> list[dict[str, float]]:
    """Candidates drawn uniformly from the box the 81-candidate grid spans, the same each run."""
    random = np.random.default_rng(7)
    box = {name: [candidate[name] for candidate in GRID] for name in BASELINE}
    return [
        {name: float(random.uniform(min(values), max(values))) for name, values in box.items()}
        for _ in range(count)
    ]


def neighbours(baseline: Params) -> list[dict[str, float]]:
    """The spec's cycle: each parameter 10 % below and above the baseline, one at a time."""
    return [
        {**baseline, name: baseline[name] * factor} for name in baseline for factor in (0.9, 1.1)
    ]


def best_time(work: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def backtesting_seconds_per_run(dataset: Dataset, candidates: Sequence[Params]) -> float:
    settings = dataset.settings
    backtest = Backtest(
        dataset.frame,
        RsiAdxReference,
        cash=settings.cash,
        commission=settings.commission,
        spread=settings.spread,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for candidate in candidates:
            backtest.run(**candidate)
    return (time.perf_counter() - start) / len(candidates)


def compare(
    title: str, dataset: Dataset, candidates: Sequence[Params], sample: int, target: float
) -> bool:
    sampled = candidates[:: max(1, len(candidates) // sample)][:sample]
    per_run = backtesting_seconds_per_run(dataset, sampled)
    candles = dataset.candles()
    ours = best_time(lambda: evaluate_candidates(candles, candidates, dataset.settings))
    ratio = per_run * len(candidates) / ours
    how = "all runs" if len(sampled) == len(candidates) else f"{len(sampled)} runs, extrapolated"
    print(
        f"{title} ({len(candles)} bars): backtesting {per_run * 1e3:.1f} ms/run ({how}) = "
        f"{per_run * len(candidates):.2f} s | ours {ours * 1e3:.1f} ms "
        f"({ours / len(candidates) * 1e6:.0f} us/candidate) | {ratio:.0f}x "
        f"(target >= {target:.0f}x) {'PASS' if ratio >= target else 'FAIL'}"
    )
    return ratio >= target


def extended(candles: Candles, bars: int) -> Candles:
    """The candles followed by themselves in reverse order (open and close swapped, so prices
    stay continuous), up to ``bars`` bars on the same time grid."""
    extra = np.arange(len(candles) - 1, 2 * len(candles) - 1 - bars, -1)
    step = np.timedelta64(candles.bar_seconds, "s")
    times = candles.times[0] + np.arange(bars) * step
    return Candles(
        candles.symbol,
        candles.timeframe,
        times,
        np.concatenate((candles.open, candles.close[extra])),
        np.concatenate((candles.high, candles.high[extra])),
        np.concatenate((candles.low, candles.low[extra])),
        np.concatenate((candles.close, candles.open[extra])),
        np.concatenate((candles.volume, candles.volume[extra])),
    )


def spec_cycle(symbols: Sequence[Candles]) -> list[float]:
    settings = BacktestSettings()
    candidates = neighbours(BASELINE)
    return [
        fitness(stats)
        for candles in symbols
        for stats in evaluate_candidates(candles, candidates, settings)
    ]


def peak_traced_megabytes(work: Callable[[], object]) -> float:
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="time fewer backtesting runs")
    quick = parser.parse_args().quick
    passed = []
    for name, dataset in DATASETS.items():
        passed.append(
            compare(f"81-candidate grid, {name}", dataset, GRID, 9 if quick else len(GRID), 50)
        )
    many = random_candidates(RANDOM_CANDIDATES)
    for name, dataset in DATASETS.items():
        passed.append(
            compare(
                f"{RANDOM_CANDIDATES:,} candidates, {name}", dataset, many, 5 if quick else 20, 300
            )
        )

    start = time.perf_counter()
    loaded = [load_candles(MARKET_DATA / file, max_gap_bars=40).candles for file in SPEC_FILES]
    loading = time.perf_counter() - start
    symbols = [extended(candles, SPEC_BARS) for candles in loaded]
    cycle = best_time(lambda: spec_cycle(symbols))
    passed.append(cycle < 0.5)
    print(
        f"spec cycle: 8 candidates x {len(symbols)} symbols x {SPEC_BARS} 5m bars (the ~20 days of "
        f"real candles followed by themselves reversed) in {cycle * 1e3:.0f} ms of compute "
        f"(target < 500 ms) {'PASS' if cycle < 0.5 else 'FAIL'}; loading the files took "
        f"{loading * 1e3:.0f} ms more"
    )

    eurusd = DATASETS["EURUSD"]
    candles = eurusd.candles()
    evaluation_peak = peak_traced_megabytes(
        lambda: evaluate_candidates(candles, many, eurusd.settings)
    )
    cycle_peak = peak_traced_megabytes(lambda: spec_cycle(symbols))
    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak memory: {evaluation_peak:.0f} MiB traced while evaluating {RANDOM_CANDIDATES:,} "
        f"candidates on EURUSD, {cycle_peak:.0f} MiB for the spec cycle; "
        f"{process_peak:.0f} MiB resident for this whole process (backtesting and pandas included)"
    )
    return 0 if all(passed) else 1


if __name__ == "__main__":
    sys.exit(main())
