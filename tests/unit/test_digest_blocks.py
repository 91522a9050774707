"""The digest templates rendered against fixed data: what the message says, and that it stays
within Slack's Block Kit limits however big the period."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.blocks.common import MAX_MESSAGE_BLOCKS, SECTION_TEXT_MAX
from bot.blocks.digest import digest_message
from core.counterfactual import (
    Advice,
    CounterfactualPolicy,
    Evidence,
    GroupStats,
    Insights,
    Recommendation,
    Statistics,
)
from core.digest import Digest, PeriodEquity, ScopeParameters, Unavailable
from core.learning_model import LearningSession, SessionStatus, TradeFigures
from core.models import (
    BlockedStats,
    Override,
    OverrideStatus,
    ParamChangeRecord,
    Side,
    Source,
)
from core.optimization_model import OptimizationRun, RunStatus, TradeCounter, Trigger
from core.optimizer import Method
from core.params import Scope

UNTIL = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=1)
PING = "<!channel> & co"
NO_TRADES = TradeFigures(0, 0, 0, None, 0.0, None, None, None, None)
NO_BLOCKS = BlockedStats(0, {}, {}, {}, [])


def group(key: str, trades: int = 40, wins: int = 30, losses: int = 10) -> GroupStats:
    return GroupStats(key, trades, wins, losses, missed_gains_pct=60.0, avoided_losses_pct=15.0)


def insights(reasons: Sequence[str], symbols: Sequence[str], advice: int = 1) -> Insights:
    evidence = Evidence(group(reasons[0]), 0.6, 0.85)
    recommendation = Recommendation(
        Advice.REVIEW, reasons[0], Side.BUY, 40.0, 0.5, evidence, f"{PING} blocks too much"
    )
    return Insights(
        since=SINCE,
        until=UNTIL,
        policy=CounterfactualPolicy(),
        evaluated=(),
        not_evaluated=(),
        statistics=Statistics(
            group("all"), tuple(map(group, reasons)), tuple(map(group, symbols)), (), ()
        ),
        recommendations=(recommendation,) * advice,
    )


def digest(**parts: Any) -> Digest:
    base: dict[str, Any] = {
        "kind": "daily",
        "since": SINCE,
        "until": UNTIL,
        "pnl": NO_TRADES,
        "equity": PeriodEquity(SINCE, UNTIL, (), ()),
        "blocked": NO_BLOCKS,
        "counterfactual": None,
        "overrides": (),
        "learning": (),
        "runs": (),
        "parameters": (ScopeParameters(Scope.GLOBAL, 3, {"min_confidence": 0.6}, ()),),
        "counters": (TradeCounter(Scope.HIGH, 50, 200, None),),
    }
    return Digest(**{**base, **parts})


def override(index: int, reason: str = "manual check") -> Override:
    at = SINCE + timedelta(minutes=index)
    return Override(
        index, f"SYM{index}", Side.BUY, reason, OverrideStatus.APPROVED, "U0OPS", at,
        decided_by="U0OPS", decided_at=at,
    )  # fmt: skip


def change(index: int) -> ParamChangeRecord:
    return ParamChangeRecord(
        Scope.GLOBAL, "min_confidence", 0.65, 0.6, "U0ADMIN", Source.SLACK, f"tune {index}",
        index, index + 1, SINCE + timedelta(minutes=index),
    )  # fmt: skip


def run(index: int) -> OptimizationRun:
    return OptimizationRun(
        f"opt_{index:04d}", Trigger.SCHEDULED, Scope.HIGH, Method.GRID, RunStatus.APPLIED,
        SINCE + timedelta(minutes=index), "scheduler", 1, "x", None,
        improvement_pct=12.5, winner_version=index,
    )  # fmt: skip


def session(index: int) -> LearningSession:
    start = SINCE + timedelta(hours=1, minutes=index)
    return LearningSession(
        index, SessionStatus.COMPLETED, "U0OPS", "explore", start, start + timedelta(minutes=30),
        {}, {}, ended_at=start + timedelta(minutes=30),
    )  # fmt: skip


def texts(blocks: Sequence[dict[str, Any]]) -> list[str]:
    found = []
    for block in blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        found += [element["text"] for element in block.get("elements", [])]
    return found


def within_limits(payload: dict[str, Any]) -> None:
    blocks = payload["blocks"]
    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    assert all(len(text) <= SECTION_TEXT_MAX for text in texts(blocks))
    json.dumps(payload)


def test_an_empty_period_says_so_in_one_line() -> None:
    message = digest_message(digest())

    payload = message.payload()  # slack_sdk validates the blocks here
    within_limits(payload)
    assert [block["type"] for block in payload["blocks"]] == ["header", "context", "section"]
    assert texts(payload["blocks"])[2].startswith("Nothing happened in this period")
    assert message.text.startswith("Daily digest · 2026-03-03")
    assert "nothing happened" in message.text


def test_a_busy_day_shows_each_part() -> None:
    day = digest(
        pnl=TradeFigures(3, 2, 1, 2 / 3, 12.0, 4.0, 10.0, -4.0, 4.0),
        blocked=BlockedStats(3, {"min_confidence": 2, "max_spread": 1}, {"BTCUSDT": 3}, {}, []),
        counterfactual=insights(["min_confidence"], ["BTCUSDT"]),
        overrides=(override(1),),
        learning=(session(1),),
        runs=(run(7),),
        parameters=(ScopeParameters(Scope.GLOBAL, 8, {"min_confidence": 0.6}, (change(7),)),),
    )

    payload = digest_message(day).payload()

    within_limits(payload)
    shown = "\n".join(texts(payload["blocks"]))
    assert "+12.00 from 3 closed trades: 2 won, 1 lost, win rate 67 % (n=3)" in shown
    assert "min_confidence        2      40       75 %  +45.00 %" in shown
    assert "max_spread            1       0          –        –" in shown
    assert "BUY :white_check_mark: Approved by <@U0OPS>" in shown
    assert "session 1, 2026-03-02 07:01–07:31 UTC, started by <@U0OPS>: completed" in shown
    assert "opt_0007 HIGH (scheduled, 2026-03-02 06:07): applied → version 7" in shown
    assert "`min_confidence` 0.65 → *0.6* by <@U0ADMIN>" in shown
    assert "HIGH 50/200 (25 %)" in shown
    assert (
        "PnL +12.00 from 3 closed trades, 3 blocked trades, 1 override," in digest_message(day).text
    )


def test_engine_text_cannot_ping_the_channel() -> None:
    day = digest(
        blocked=BlockedStats(1, {PING: 1}, {"<@U0BOSS>": 1}, {}, []),
        counterfactual=insights([PING], ["<@U0BOSS>"]),
        overrides=(override(1, reason=PING),),
        runs=(run(1),),
    )

    shown = "\n".join(texts(digest_message(day).payload()["blocks"]))

    assert "<!channel>" not in shown and "<@U0BOSS>" not in shown
    assert "&lt;!channel&gt; &amp; co" in shown
    assert "&lt;!channel&gt; &amp; co blocks too much" in shown  # the recommendation


def test_a_huge_period_is_cut_to_slacks_limits_with_what_was_left_out() -> None:
    reasons = [f"reason number {i} " + "x" * 100 for i in range(1000)]
    symbols = [f"SYMBOL{i}" for i in range(1000)]
    huge = digest(
        kind="weekly",
        pnl=TradeFigures(50_000, 30_000, 20_000, 0.6, 1e6, 20.0, 900.0, -800.0, 1.5),
        blocked=BlockedStats(
            90_000, dict.fromkeys(reasons, 90), dict.fromkeys(symbols, 90), {}, []
        ),
        counterfactual=insights(reasons, symbols, advice=40),
        overrides=tuple(override(i, reason="r" * 2000) for i in range(500)),
        learning=tuple(session(i) for i in range(100)),
        runs=tuple(run(i) for i in range(500)),
        parameters=tuple(
            ScopeParameters(
                scope, 900, {f"p{i}": 1.5 for i in range(200)}, tuple(map(change, range(300)))
            )
            for scope in Scope
        ),
    )

    message = digest_message(huge)
    payload = message.payload()

    within_limits(payload)
    shown = "\n".join(texts(payload["blocks"]))
    assert "… and 988 more reasons" in shown
    assert "… and 988 more symbols" in shown
    assert "… and 28 more recommendations" in shown
    assert "… and 488 more runs" in shown
    assert "more lines" in shown  # 12 overrides of 2,000 characters do not fit one section
    assert message.text.startswith("Weekly digest")


def test_parts_that_are_not_available_say_why_escaped() -> None:
    day = digest(
        blocked=BlockedStats(1, {"min_confidence": 1}, {"BTCUSDT": 1}, {}, []),
        counterfactual=Unavailable(f"{PING} market data gone"),
        runs=Unavailable("unexpected OSError, details in the log"),
        counters=Unavailable("no optimizer in this process"),
    )

    message = digest_message(day)

    shown = "\n".join(texts(message.payload()["blocks"]))
    assert (
        "Counterfactual statistics: not available: &lt;!channel&gt; &amp; co market data" in shown
    )
    assert "<!channel>" not in shown
    assert "Optimization runs: not available: unexpected OSError, details in the log" in shown
    assert "Trade counters: not available: no optimizer in this process" in shown
    assert "1 blocked trade, 0 overrides, 0 learning sessions, 0 parameter changes" in message.text
