"""Plain-text (and JSON) views of optimization runs and backtests, for the CLI."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from core.backtest import BacktestSettings, Candles, Trade
from core.metrics import Stats
from core.optimization import BacktestReport, CycleReport
from core.optimization_model import finite
from core.optimizer import Score
from core.params import ParamValue, format_value

_SHORT = {
    "long_rsi_entry": "rsi",
    "long_adx_min": "adx",
    "sl_atr_multiplier": "sl",
    "tp_atr_multiplier": "tp",
}


def _params(params: Mapping[str, ParamValue]) -> str:
    return " ".join(f"{_SHORT.get(k, k)}={format_value(v)}" for k, v in sorted(params.items()))


def _fitness(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:8.2f}"


def _row(label: str, score: Score) -> str:
    fitness = _fitness(score.in_sample_fitness), _fitness(score.out_of_sample_fitness)
    return (
        f"  {label:<9} {_params(score.parameters):<34} in-sample {fitness[0]}  "
        f"out-of-sample {fitness[1]}  trades {score.out_of_sample.trades}"
    )


def cycle_report(report: CycleReport) -> str:
    result, data = report.result, report.data_range
    head = "dry run (nothing stored or applied)" if report.run is None else report.run.run_id
    lines = [
        f"optimization {head}: seed {report.seed}, baseline version {report.baseline_version}",
        f"  data: {', '.join(data.symbols)} {data.timeframe} "
        f"{data.start:%Y-%m-%d %H:%M} .. {data.end:%Y-%m-%d %H:%M} UTC",
        *(
            f"  gap filled: {symbol} {gap.bars} bars from {gap.start:%Y-%m-%d %H:%M} UTC"
            for symbol, gap in report.gaps
        ),
        _row("baseline", result.baseline),
    ]
    for index, score in enumerate(result.candidates):
        mark = "  <- best in-sample" if index == result.winner else ""
        lines.append(_row(f"#{index + 1}", score) + mark)
    decision = result.decision
    lines += [f"  {reason}" for reason in decision.reasons]
    drop = "-" if decision.drop_pct is None else f"{decision.drop_pct:.1f} %"
    dsr = _probability(result.deflated_sharpe_ratio)
    pbo = _probability(result.probability_of_backtest_overfitting)
    lines.append(
        f"  in-sample -> out-of-sample drop of the best: {drop}; deflated Sharpe ratio {dsr} "
        f"over {len(result.candidates) + 1} trials; probability of backtest overfitting {pbo}"
    )
    lines.append(_outcome(report))
    return "\n".join(lines)


def _probability(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _outcome(report: CycleReport) -> str:
    if report.run is None:
        verdict = "would apply" if report.result.decision.applies else "would keep the baseline"
        return f"dry run: {verdict}; nothing was stored or applied"
    run = report.run
    if report.change is not None and report.change.version is not None:
        backup = report.change.backup.backup_id if report.change.backup else "-"
        return (
            f"{run.status.value}: {run.scope} version {report.baseline_version} -> "
            f"{report.change.version.version} (backup {backup})"
        )
    return f"{run.status.value}: {run.scope} stays at version {report.baseline_version}"


def backtest_text(report: BacktestReport, candles: Candles) -> str:
    stats = report.result.stats
    lines = [
        f"backtest {candles.symbol} {candles.timeframe}: {len(candles)} bars, "
        f"{_params(report.parameters)}",
        *(f"  {name:<18} {_stat(value)}" for name, value in stats.as_dict().items()),
        "  entry time           exit time            bars          entry        exit"
        "       size          PnL     PnL %  exit",
    ]
    for trade in (*report.result.trades, *report.result.open_trades):
        lines.append(
            f"  {trade.entry_time:%Y-%m-%d %H:%M}  {trade.exit_time:%Y-%m-%d %H:%M}  "
            f"{trade.entry_bar:>5}-{trade.exit_bar:<5} {trade.entry_price:>12.6g} "
            f"{trade.exit_price:>11.6g} {trade.size:>10} {trade.pnl:>12.2f} "
            f"{trade.pnl_pct:>8.2f}  {trade.exit_reason.value}"
        )
    return "\n".join(lines)


def _stat(value: float) -> str:
    return format_value(round(value, 4)) if math.isfinite(value) else str(value)


def backtest_json(
    report: BacktestReport, candles: Candles, settings: BacktestSettings
) -> dict[str, Any]:
    return {
        "symbol": candles.symbol,
        "timeframe": candles.timeframe,
        "bars": len(candles),
        "parameters": report.parameters,
        "settings": {
            "cash": settings.cash,
            "commission": settings.commission,
            "spread": settings.spread,
        },
        "stats": _stats_json(report.result.stats),
        "trades": [_trade_json(trade) for trade in report.result.trades],
        "open_trades": [_trade_json(trade) for trade in report.result.open_trades],
    }


def _stats_json(stats: Stats) -> dict[str, float | None]:
    return {name: finite(value) for name, value in stats.as_dict().items()}


def _trade_json(trade: Trade) -> dict[str, Any]:
    return {
        "entry_time": trade.entry_time.isoformat(),
        "exit_time": trade.exit_time.isoformat(),
        "entry_bar": trade.entry_bar,
        "exit_bar": trade.exit_bar,
        "entry_price": trade.entry_price,
        "exit_price": trade.exit_price,
        "size": trade.size,
        "pnl": trade.pnl,
        "pnl_pct": trade.pnl_pct,
        "exit_reason": trade.exit_reason.value,
    }
