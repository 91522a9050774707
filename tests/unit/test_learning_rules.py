"""The pure learning-session rules: relaxed values, trade figures, recommendations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.learning import (
    LearningSession,
    Recommendations,
    RelaxChoice,
    SessionStatus,
    Verdict,
    analyse,
    recommend,
    relax_choices,
    relaxed_value,
    trade_figures,
)
from core.models import ClosedTradeEvent, Side
from core.params import ParamSpec, RelaxRange, Scope, load_schema

SCHEMA = load_schema()
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def trades(*pnls: float) -> list[ClosedTradeEvent]:
    return [
        ClosedTradeEvent(
            trade_id=f"t{i}",
            symbol="BTCUSDC",
            side=Side.BUY,
            entry_time=T0,
            exit_time=T0,
            entry_price=100.0,
            exit_price=100.0 + pnl,
            quantity=1.0,
            pnl=pnl,
            pnl_pct=pnl,
        )
        for i, pnl in enumerate(pnls)
    ]


def session() -> LearningSession:
    return LearningSession(
        id=1,
        status=SessionStatus.ACTIVE,
        started_by="U0OPS",
        reason="explore",
        started_at=T0,
        planned_end_at=T0 + timedelta(hours=1),
        original={Scope.GLOBAL: {"min_confidence": 0.65}, Scope.HIGH: {"stop_loss_pct": 3.0}},
        relaxed={Scope.GLOBAL: {"min_confidence": 0.5525}, Scope.HIGH: {"stop_loss_pct": 3.45}},
    )


def advice(
    session_pnls: list[float], baseline_pnls: list[float], minimum: int = 4
) -> Recommendations:
    analysis = analyse(trades(*session_pnls), trades(*baseline_pnls), T0, T0)
    return recommend(session(), analysis, minimum, SCHEMA)


def test_the_start_form_offers_each_relaxable_parameter_with_the_middle_as_default() -> None:
    assert relax_choices(SCHEMA) == [
        RelaxChoice("min_confidence", "lower", 10, 20, 15),
        RelaxChoice("max_position_size", "raise", 10, 30, 20),
        RelaxChoice("stop_loss_pct", "raise", 10, 20, 15),
        RelaxChoice("take_profit_pct", "lower", 10, 20, 15),
    ]


@pytest.mark.parametrize(
    ("name", "value", "pct", "relaxed"),
    [
        ("min_confidence", 0.65, 20, 0.52),
        ("max_position_size", 5.0, 30, 6.5),
        ("max_position_size", 90.0, 30, 100.0),  # clamped to the hard maximum
        ("min_confidence", 0.123456, 10, 0.1111),  # 4 significant digits
    ],
)
def test_a_value_moves_by_the_percentage_in_its_direction_within_bounds(
    name: str, value: float, pct: float, relaxed: float
) -> None:
    assert relaxed_value(SCHEMA.spec(name), value, pct) == relaxed


def test_a_whole_number_parameter_stays_whole() -> None:
    spec = ParamSpec("max_open", "int", 10, 1, 50, "risk", relax=RelaxRange("raise", 10, 30))
    assert relaxed_value(spec, 10, 25) == 12


def test_trade_figures_count_wins_losses_and_rates() -> None:
    figures = trade_figures(trades(10.0, -4.0, 0.0, 6.0, -1.0))
    assert (figures.trades, figures.wins, figures.losses) == (5, 2, 2)
    assert figures.win_rate == pytest.approx(0.4)
    assert (figures.total_pnl, figures.average_pnl) == (11.0, pytest.approx(2.2))
    assert (figures.max_profit, figures.max_loss) == (10.0, -4.0)
    assert figures.profit_factor == pytest.approx(16 / 5)


def test_without_trades_rates_are_undefined_rather_than_zero() -> None:
    figures = trade_figures([])
    assert (figures.trades, figures.total_pnl) == (0, 0.0)
    assert figures.win_rate is figures.average_pnl is figures.profit_factor is None


def test_without_a_losing_trade_the_profit_factor_is_undefined() -> None:
    assert trade_figures(trades(1.0, 2.0)).profit_factor is None


def test_below_the_minimum_no_recommendation_is_made_and_the_result_says_why() -> None:
    result = advice([5.0, 5.0, 5.0], [1.0])
    assert result.items == ()
    assert result.withheld == "no recommendations from 3 trades: at least 4 are needed"


@pytest.mark.parametrize(
    ("during", "before", "verdict"),
    [
        ([5.0, 5.0, 5.0, 5.0], [1.0, 1.0], Verdict.KEEP),  # better than the baseline
        ([5.0, 5.0, 5.0, 5.0], [], Verdict.KEEP),  # profitable, nothing to compare with
        ([2.0, 2.0, 2.0, 2.0], [4.0, 4.0], Verdict.KEEP_PARTLY),  # profitable but worse
        ([3.0, -3.0, 1.0, -1.0], [-5.0], Verdict.REVERT),  # not profitable
    ],
)
def test_the_verdict_follows_the_average_pnl(
    during: list[float], before: list[float], verdict: Verdict
) -> None:
    assert {item.verdict for item in advice(during, before).items} == {verdict}


def test_each_verdict_suggests_its_value() -> None:
    keep = advice([5.0] * 4, [1.0]).items[0]
    partly = advice([2.0] * 4, [4.0]).items[0]
    revert = advice([-1.0] * 4, [4.0]).items[0]
    assert (keep.suggested, partly.suggested, revert.suggested) == (0.5525, 0.6013, 0.65)


def test_every_relaxed_value_of_every_scope_gets_a_recommendation() -> None:
    items = advice([5.0] * 4, []).items
    assert [(i.scope, i.parameter, i.original, i.relaxed) for i in items] == [
        (Scope.GLOBAL, "min_confidence", 0.65, 0.5525),
        (Scope.HIGH, "stop_loss_pct", 3.0, 3.45),
    ]


@pytest.mark.parametrize(("count", "confidence"), [(4, 0.5), (12, 0.75), (36, 0.9)])
def test_confidence_grows_with_the_number_of_session_trades(count: int, confidence: float) -> None:
    assert advice([5.0] * count, []).items[0].confidence == confidence
