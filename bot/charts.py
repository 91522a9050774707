"""Charts for Slack, as PNG bytes (the Slack side uploads them with files.upload_v2).

Pure and picklable: rendering takes some tens of milliseconds of CPU, so callers on the event
loop run it in the process pool (`runtime.deps.optimizer.compute.run(equity_chart_png, r)`).
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.axes import Axes

# A bare Figure, not pyplot: no global state, no display backend; PNG through Agg.
from matplotlib.figure import Figure

from core.digest import PeriodEquity
from core.optimization_views import RunReport


def equity_chart_png(report: RunReport) -> bytes:
    """The portfolio equity of the baseline and of the winner over the run's data range."""
    figure, axes = _figure()
    times = list(report.equity_times)
    axes.plot(times, report.equity_baseline, label="baseline", color="#888888")
    if report.equity_winner is not None:
        axes.plot(times, report.equity_winner, label="best candidate", color="#1f77b4")
    run = report.run
    title = f"{run.run_id} · {run.scope} · {run.status.value}"
    return _png(figure, axes, title, ylabel="equity (1 = start)")


def period_equity_png(equity: PeriodEquity) -> bytes:
    """The cumulative PnL of the period's closed trades, a dashed line at each parameter
    change (labelled with the version it made)."""
    figure, axes = _figure()
    times = [equity.since, *(at for at, _ in equity.points), equity.until]
    totals = [0.0, *(total for _, total in equity.points)]
    totals.append(totals[-1])  # flat to the period's end
    axes.step(times, totals, where="post", color="#1f77b4", label="cumulative PnL")
    for mark in equity.changes:
        axes.axvline(mark.at, color="#d62728", linestyle="--", linewidth=0.8)
        axes.annotate(
            mark.label, (mark.at, 1), xycoords=("data", "axes fraction"), rotation=90,
            va="top", ha="right", fontsize=7, color="#d62728",
        )  # fmt: skip
    axes.set_xlim(equity.since, equity.until)
    period = f"{equity.since:%Y-%m-%d %H:%M} – {equity.until:%Y-%m-%d %H:%M} UTC"
    return _png(figure, axes, f"closed trades {period}", ylabel="PnL")


def _figure() -> tuple[Figure, Any]:
    """One plot, 800 × 350 pixels. Its axes untyped: they plot datetimes (through
    matplotlib's unit converters), which matplotlib's annotations do not allow."""
    figure = Figure(figsize=(8, 3.5), dpi=100)
    return figure, figure.subplots()


def _png(figure: Figure, axes: Axes, title: str, ylabel: str) -> bytes:
    """The chart titled, labelled, gridded and with its legend, as PNG bytes."""
    axes.set_title(title, fontsize=10)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
