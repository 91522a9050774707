"""The [optimizer] section of the configuration file, and MARKET_DATA_DIR.

```toml
[optimizer]
timeframe = "5m"              # bars the optimizer backtests on
lookback_days = 30
method = "grid"               # or "bayes" (Optuna TPE)
grid = "spec"                 # the spec's 8 combinations; "full": all 3^4 = 81 points
fitness = "spec"              # spec, sharpe, sortino, calmar, roi
min_improvement_pct = 5.0     # out of sample, against the baseline
min_trades = 30               # out-of-sample trades the winner needs
walk_forward = "rolling"      # or "anchored"
in_sample_windows = 2
out_of_sample_windows = 3
pbo_blocks = 10               # CSCV blocks for the probability of backtest overfitting
bayes_trials = 64
bayes_batch = 16
bayes_steps = 4               # how many steps from the baseline Bayesian search may go
cash = 10000.0
commission = 0.0
spread = 0.0
max_gap_bars = 12             # longer gaps in the data stop a run
trade_threshold = 200         # closed trades per level that trigger a run
performance_drop_pct = 15.0
rollback_margin_pct = 15.0
live_min_trades = 20
run_timeout_minutes = 120
seed = 42                     # optional: the same seed for every run
workers = 2                   # worker processes for backtests
study_journal = "./var/optuna-studies.log"   # SQLite only: PostgreSQL keeps studies in its
                              # optuna schema; default: next to BACKUP_DIR
atr_low_pct = 2.0             # daily ATR % below which a symbol is LOW
atr_high_pct = 5.0            # ... from which it is HIGH
atr_lookback_days = 7

[optimizer.symbols]           # symbol = level, or "auto" to classify it by its ATR
"ETH/BTC" = "HIGH"
"LTC/BTC" = "auto"

[optimizer.apply_mode]        # per scope: "auto" (default) or "approve"
HIGH = "approve"
```
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.backtest import BacktestSettings, timeframe_seconds
from core.errors import UserError
from core.market import VolatilityCutoffs
from core.optimization_model import ApplyMode, OptimizerPolicy
from core.optimizer import CycleSettings, GridShape, Method, WalkForwardMode
from core.params import Scope


@dataclass(frozen=True)
class OptimizerSettings:
    policy: OptimizerPolicy = field(default_factory=OptimizerPolicy)
    workers: int = min(2, os.cpu_count() or 1)
    study_journal: Path | None = None  # None: BACKUP_DIR/../optuna-studies.log

    def journal_path(self, backup_dir: Path) -> Path:
        return self.study_journal or backup_dir.parent / "optuna-studies.log"


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("must be a whole number of at least 1")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError("must be a number")
    return float(value)


def _choice(kind: type[StrEnum]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"must be one of {', '.join(kind)}") from None

    return parse


def _timeframe(value: Any) -> str:
    timeframe_seconds(str(value))
    return str(value)


_CYCLE: dict[str, Callable[[Any], Any]] = {
    "method": _choice(Method),
    "grid": _choice(GridShape),
    "fitness": str,
    "walk_forward": _choice(WalkForwardMode),
    "in_sample_windows": _positive_int,
    "out_of_sample_windows": _positive_int,
    "min_trades": _positive_int,
    "min_improvement_pct": _number,
    "pbo_blocks": _positive_int,
    "bayes_trials": _positive_int,
    "bayes_batch": _positive_int,
    "bayes_steps": _positive_int,
}
_BACKTEST = {"cash": _number, "commission": _number, "spread": _number}
_VOLATILITY = {"atr_low_pct": _number, "atr_high_pct": _number, "atr_lookback_days": _positive_int}
_CUTOFF_FIELDS = {
    "atr_low_pct": "low_below",
    "atr_high_pct": "high_from",
    "atr_lookback_days": "lookback_days",
}
_POLICY: dict[str, Callable[[Any], Any]] = {
    "timeframe": _timeframe,
    "lookback_days": _positive_int,
    "max_gap_bars": _positive_int,
    "trade_threshold": _positive_int,
    "performance_drop_pct": _number,
    "rollback_margin_pct": _number,
    "live_min_trades": _positive_int,
    "run_timeout_minutes": _positive_int,
    "seed": _positive_int,
}
_OTHER = {"workers", "study_journal", "symbols", "apply_mode"}
KNOWN = set(_CYCLE) | set(_BACKTEST) | set(_VOLATILITY) | set(_POLICY) | _OTHER


def parse_optimizer(table: Mapping[str, Any]) -> OptimizerSettings:
    """Settings from the [optimizer] table; ValueError names the key and the problem."""
    unknown = set(table) - KNOWN
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
    cycle = CycleSettings(
        **_parsed(table, _CYCLE), backtest=BacktestSettings(**_parsed(table, _BACKTEST))
    )
    cutoffs = {_CUTOFF_FIELDS[key]: value for key, value in _parsed(table, _VOLATILITY).items()}
    policy = OptimizerPolicy(
        **_parsed(table, _POLICY),
        symbols=_symbols(table.get("symbols", {})),
        apply_modes=_apply_modes(table.get("apply_mode", {})),
        cycle=cycle,
        volatility=VolatilityCutoffs(**cutoffs),
    )
    workers = _parsed(table, {"workers": _positive_int}).get("workers", OptimizerSettings.workers)
    journal = table.get("study_journal")
    return OptimizerSettings(policy, workers, Path(journal) if journal else None)


def _parsed(
    table: Mapping[str, Any], parsers: Mapping[str, Callable[[Any], Any]]
) -> dict[str, Any]:
    values = {}
    for key, parse in parsers.items():
        if key in table:
            try:
                values[key] = parse(table[key])
            except ValueError as error:
                raise ValueError(f"{key}: {error}, got {table[key]!r}") from None
    return values


def _symbols(raw: Any) -> dict[str, Scope | None]:
    if not isinstance(raw, dict):
        raise ValueError('symbols must be a table of symbol = "HIGH" | "MEDIUM" | "LOW" | "auto"')
    levels = {"HIGH": Scope.HIGH, "MEDIUM": Scope.MEDIUM, "LOW": Scope.LOW, "auto": None}
    unknown = {symbol: level for symbol, level in raw.items() if level not in levels}
    if unknown:
        symbol, level = next(iter(unknown.items()))
        raise ValueError(f'symbols.{symbol}: {level!r} is not HIGH, MEDIUM, LOW or "auto"')
    return {symbol: levels[level] for symbol, level in raw.items()}


def _apply_modes(raw: Any) -> dict[Scope, ApplyMode]:
    if not isinstance(raw, dict):
        raise ValueError('apply_mode must be a table of scope = "auto" | "approve"')
    modes = {}
    for scope, mode in raw.items():
        try:
            modes[Scope.parse(scope)] = ApplyMode(mode)
        except (UserError, ValueError):
            raise ValueError(
                f"apply_mode.{scope}: needs a scope (global, HIGH, MEDIUM, LOW) "
                f'and "auto" or "approve", got {mode!r}'
            ) from None
    return modes


def masked(settings: OptimizerSettings, backup_dir: Path) -> dict[str, Any]:
    """The effective [optimizer] settings, as `config check` prints them."""
    policy = settings.policy
    shown = dataclasses.asdict(policy)
    shown["symbols"] = {symbol: level or "auto" for symbol, level in policy.symbols.items()}
    shown["apply_modes"] = {scope.value: mode.value for scope, mode in policy.apply_modes.items()}
    shown["workers"] = settings.workers
    shown["study_journal"] = str(settings.journal_path(backup_dir))
    return shown
