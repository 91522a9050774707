"""A run's report as a reader sees it: figures in plain words, a table that copes with
undefined values, and buttons only while the winner waits for an admin."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.blocks.optimization import (
    deflated_sharpe_in_words,
    overfitting_in_words,
    rolled_back,
    run_report,
)
from core.models import VersionStatus
from core.optimization_model import DataRange, OptimizationRun, RunCandidate, RunStatus, Trigger
from core.optimization_views import build_run_report
from core.optimizer import Method
from core.params import Scope
from tests.e2e.conftest import text_of

START = datetime(2025, 10, 1, tzinfo=UTC)
BASELINE = {"long_rsi_entry": 40, "long_adx_min": 22}
WINNER = {"long_rsi_entry": 35, "long_adx_min": 22}
RUN = OptimizationRun(
    run_id="opt_20251030_030000_ab12cd",
    trigger=Trigger.SCHEDULED,
    scope=Scope.HIGH,
    method=Method.GRID,
    status=RunStatus.APPLIED,
    started_at=START,
    requested_by="system:optimizer",
    seed=7,
    code_version="paramadapt 1.0",
    data_range=DataRange(START, datetime(2025, 10, 31, tzinfo=UTC), "5m", ("BTCUSDT",)),
    duration_seconds=2.5,
    baseline_version=4,
    improvement_pct=12.34,
    improvement_found=True,
    candidates_tested=8,
    winner_version=5,
    results={
        "baseline": {"parameters": BASELINE},
        "winner": {"position": 3, "parameters": WINNER},
        "decision": {"reasons": ["ahead"], "in_to_out_of_sample_drop_pct": 20.0},
        "deflated_sharpe_ratio": 0.97,
        "probability_of_backtest_overfitting": 0.125,
    },
)


def candidate(position: int, fitness: float | None, **out_of_sample: Any) -> RunCandidate:
    metrics = {"in_sample": {"trades": 50}, "out_of_sample": out_of_sample}
    params = BASELINE if position == 0 else WINNER
    return RunCandidate(position, params, VersionStatus.ARCHIVED, fitness, fitness, metrics)


def shown(run: OptimizationRun, decided_by: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    message = run_report(
        build_run_report(run), candidate(0, 10.0), candidate(3, None, win_rate=55.0), decided_by
    )
    blocks = message.payload()["blocks"]
    return text_of(blocks), blocks


@pytest.mark.parametrize(
    ("pbo", "words"),
    [
        (0.125, "Probability of backtest overfitting (PBO) 12 %: about a 1-in-8 chance"),
        (0.3, "about a 1-in-3 chance"),  # rounded down: never better odds than measured
        (0.45, "close to an even chance the winner is a fluke"),
        (0.0, "no sign that the winner is a fluke of this data"),
        (0.6, "the winner is at least as likely a fluke of this data as not"),
    ],
)
def test_the_probability_of_overfitting_reads_as_odds(pbo: float, words: str) -> None:
    assert words in overfitting_in_words(pbo)


def test_the_deflated_sharpe_ratio_reads_as_confidence_over_every_trial() -> None:
    assert deflated_sharpe_in_words(0.97, 9) == (
        "Deflated Sharpe ratio (DSR) 0.97: 97 % confidence that the winner's Sharpe ratio "
        "is really above zero, not luck among the 9 configurations tried"
    )


def test_the_report_tells_what_changed_how_much_and_on_which_data() -> None:
    text, _ = shown(RUN)
    assert "*Optimization of HIGH*: winner applied as version 5 (+12.3 % out of sample)" in text
    assert "`long_rsi_entry` 40 → *35*" in text and "long_adx_min" not in text
    assert "drop of the winner: 20.0 %" in text
    assert "BTCUSDT 5m from 2025-10-01 00:00 UTC to 2025-10-31 00:00 UTC" in text
    assert (
        "Run `opt_20251030_030000_ab12cd` · scheduled trigger by `system:optimizer` · grid search"
        in text
    )


def test_undefined_figures_show_as_dashes_in_the_table() -> None:
    text, _ = shown(RUN)
    fitness = next(line for line in text.splitlines() if line.startswith("fitness"))
    assert fitness.split()[1:] == ["10.00", "10.00", "-", "-"]
    win_rate = next(line for line in text.splitlines() if line.startswith("win rate"))
    assert win_rate.split()[-2:] == ["55.0", "%"]


@pytest.mark.parametrize(
    ("status", "buttons"),
    [(RunStatus.PENDING_APPROVAL, 1), (RunStatus.APPLIED, 0), (RunStatus.REJECTED, 0)],
)
def test_only_a_winner_waiting_for_approval_has_buttons(status: RunStatus, buttons: int) -> None:
    _, blocks = shown(dataclasses.replace(RUN, status=status))
    assert sum(block["type"] == "actions" for block in blocks) == buttons


def test_the_decision_names_who_made_it() -> None:
    text, _ = shown(dataclasses.replace(RUN, status=RunStatus.REJECTED), decided_by="U0ADMIN")
    assert "winner rejected by <@U0ADMIN>; version 4 stays" in text


def test_a_failed_run_shows_its_error_and_no_table() -> None:
    failed = dataclasses.replace(RUN, status=RunStatus.FAILED, error="ETH: gap of 40 bars")
    text, _ = shown(failed)
    assert "failed; nothing was changed" in text and "ETH: gap of 40 bars" in text
    assert "fitness" not in text


def test_a_rollback_names_both_versions_and_the_reason() -> None:
    message = rolled_back(RUN, "live fitness 3.00 is 70.0 % below", 6)
    text = text_of(message.payload()["blocks"])
    assert "*HIGH* rolled back from version 5 to version 6" in text
    assert "live fitness 3.00 is 70.0 % below" in text
