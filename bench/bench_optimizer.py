"""Wall time and memory of optimization cycles, on the real candles of ../shared/data.

    python bench/bench_optimizer.py [--database-url URL]

Prints, on 3 symbols (ETH_BTC, ADA_BTC, LTC_BTC) × 30 days of 5-minute bars (the ~20 days of
real candles followed by themselves reversed, as bench_backtest.py does):

* the pure cycle (core.optimizer.run_cycle, in this process) for the full 81-point grid and for
  Bayesian search (64 trials in batches of 16): wall time and traced peak memory;
* the specification's cycle (the 8-candidate grid) end to end through the use case
  core.optimization.optimize: market files read, the run claimed, the cycle in the process
  pool, candidates and run stored, the winner applied. The first run includes starting the
  pool's worker; the second is warm.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pandas as pd

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from bench.bench_backtest import MARKET_DATA, SPEC_BARS, SPEC_FILES, extended  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.optimizer_config import OptimizerSettings  # noqa: E402
from bot.runtime import cli_actor, open_runtime  # noqa: E402
from core import optimization  # noqa: E402
from core.backtest import Candles  # noqa: E402
from core.optimization_model import OptimizerPolicy  # noqa: E402
from core.optimizer import CycleJob, CycleSettings, GridShape, Method, run_cycle, search_axes  # noqa: E402
from core.params import Scope, load_schema  # noqa: E402
from storage.marketdata import load_candles  # noqa: E402
from tests.clock import MovableClock  # noqa: E402

BASELINE = {
    "long_rsi_entry": 30,
    "long_adx_min": 22,
    "sl_atr_multiplier": 1.5,
    "tp_atr_multiplier": 2.5,
}


def spec_symbols() -> list[Candles]:
    loaded = [load_candles(MARKET_DATA / name, max_gap_bars=40).candles for name in SPEC_FILES]
    return [extended(candles, SPEC_BARS) for candles in loaded]


def measured(work: Callable[[], object], repeats: int = 3) -> tuple[float, float]:
    """Best wall seconds of a few calls, and the traced peak MiB of one more (tracing slows
    Python code down several times, so it is not timed)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return min(times), peak


def pure_cycles(symbols: list[Candles]) -> None:
    axes = search_axes(load_schema(), BASELINE)
    for title, settings in [
        ("full grid (80 candidates + baseline)", CycleSettings(grid=GridShape.FULL)),
        ("Bayesian search (64 TPE trials, batches of 16)", CycleSettings(method=Method.BAYES)),
    ]:
        job = CycleJob("bench", tuple(symbols), axes, BASELINE, settings, seed=7)
        tried = len(run_cycle(job).candidates)  # also warms up imports and caches
        seconds, peak = measured(partial(run_cycle, job))
        print(
            f"pure cycle, {title}: {tried} candidates tried, {seconds:.2f} s wall (best of 3), "
            f"{peak:.0f} MiB traced peak"
        )


def write_market_dir(symbols: list[Candles], directory: Path) -> None:
    for candles in symbols:
        frame = pd.DataFrame(
            {
                "date": pd.to_datetime(candles.times, utc=True),
                "open": candles.open,
                "high": candles.high,
                "low": candles.low,
                "close": candles.close,
                "volume": candles.volume,
            }
        )
        frame.to_feather(directory / f"{candles.symbol}-5m.feather")


async def spec_cycle_end_to_end(symbols: list[Candles], directory: Path, database_url: str) -> None:
    policy = OptimizerPolicy(
        lookback_days=29,
        max_gap_bars=40,
        symbols={candles.symbol: Scope.HIGH for candles in symbols},
        seed=7,
    )
    settings = Settings(
        database_url=database_url,
        backup_dir=directory / "backups",
        market_data_dir=directory,
        optimizer=OptimizerSettings(policy, workers=1),
    )
    last_bar = datetime.fromtimestamp(int(symbols[0].times[-1].astype("int64")) / 1e9, UTC)
    clock = MovableClock(last_bar + timedelta(minutes=5))
    async with open_runtime(settings) as runtime:
        deps = dataclasses.replace(runtime.deps, clock=clock)
        for attempt in ("cold (starts the worker)", "warm"):
            start = time.perf_counter()
            report = await optimization.optimize(
                deps, cli_actor(), optimization.OptimizationRequest(Scope.HIGH)
            )
            seconds = time.perf_counter() - start
            run = report.run
            assert run is not None
            print(
                f"spec cycle end to end, {attempt}: 8 candidates x {len(symbols)} symbols x "
                f"{len(symbols[0])} bars in {seconds:.2f} s ({run.status.value})"
            )
            clock.advance(minutes=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    args = parser.parse_args()
    symbols = spec_symbols()
    pure_cycles(symbols)
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        write_market_dir(symbols, directory)
        url = args.database_url or f"sqlite+aiosqlite:///{directory / 'bench.db'}"
        asyncio.run(spec_cycle_end_to_end(symbols, directory, url))
    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {process_peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
