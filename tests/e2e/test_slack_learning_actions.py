"""Apply on a learning session's recommendation: one click by an admin makes it live."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.runtime import Runtime
from core import learning, services, trades
from core.authz import Actor, Role
from core.models import ClosedTradeEvent, Side
from core.params import Scope
from tests.e2e.conftest import ADMIN, OPERATOR, RISK, on_sqlite, outbox_drained, text_of
from tests.fakeslack import FakeSlack

pytestmark = [pytest.mark.usefixtures("bot"), on_sqlite]

ENGINE = Actor.having("engine", "api", Role.ENGINE)
OPS = Actor.having(OPERATOR, "slack", Role.OPERATOR)


async def profitable_session(runtime: Runtime) -> dict[str, Any]:
    """A session with 25 winning trades: every relaxed value earns a 'keep'."""
    session = await learning.start_learning_session(runtime.deps, OPS, 30, "explore")
    start = session.started_at
    events = [
        ClosedTradeEvent(
            trade_id=f"t{n}",
            symbol="BTCUSDC",
            side=Side.BUY,
            entry_time=start + timedelta(seconds=n),
            exit_time=start + timedelta(seconds=n + 1),
            entry_price=100.0,
            exit_price=101.0,
            quantity=1.0,
            pnl=1.0,
            pnl_pct=1.0,
        )
        for n in range(25)
    ]
    await trades.ingest_trades(runtime.deps, ENGINE, events)
    await learning.stop_learning_session(runtime.deps, OPS, "enough")
    runtime.wake_dispatchers()
    return session.relaxed[Scope.GLOBAL]


async def ended_announcement(slack: FakeSlack) -> dict[str, Any]:
    def ended() -> list[dict[str, Any]]:
        shown = slack.messages(RISK)
        return [m for m in shown if "ended learning session" in text_of(m.get("blocks", []))]

    await slack.wait_until(lambda: bool(ended()), what="the end announcement")
    return ended()[0]


def apply_values(message: dict[str, Any]) -> list[str]:
    return [
        element["value"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == "learning_apply_recommendation"
    ]


async def test_the_end_announcement_offers_one_apply_button_per_kept_value(
    slack: FakeSlack, runtime: Runtime
) -> None:
    relaxed = await profitable_session(runtime)
    message = await ended_announcement(slack)
    assert len(apply_values(message)) == len(relaxed)
    assert "Apply: global min_confidence = " in text_of(message["blocks"])


async def test_an_admin_click_makes_the_recommendation_live_and_announces_it_once(
    slack: FakeSlack, runtime: Runtime
) -> None:
    relaxed = await profitable_session(runtime)
    message = await ended_announcement(slack)
    value = next(v for v in apply_values(message) if '"min_confidence"' in v)

    await slack.click_button(message, "learning_apply_recommendation", ADMIN, value=value)

    await slack.wait_until(
        lambda: any("changed *global* in Slack" in m.get("text", "") for m in slack.messages(RISK)),
        what="the change announcement",
    )
    await outbox_drained(runtime)
    announced = [m for m in slack.messages(RISK) if "changed *global*" in m.get("text", "")]
    assert len(announced) == 1
    params, _ = await services.effective_parameters(runtime.deps, Scope.GLOBAL)
    assert params["min_confidence"] == relaxed["min_confidence"]
    (change,) = await runtime.store.list_changes(Scope.GLOBAL, "min_confidence", 1)
    assert change.reason.startswith("learning session 1 recommends keep:")


async def test_an_operator_click_is_refused_and_changes_nothing(
    slack: FakeSlack, runtime: Runtime
) -> None:
    await profitable_session(runtime)
    message = await ended_announcement(slack)
    before, _ = await services.effective_parameters(runtime.deps, Scope.GLOBAL)

    await slack.click_button(
        message, "learning_apply_recommendation", OPERATOR, value=apply_values(message)[0]
    )

    answer = await slack.wait_for_response(lambda r: r.user_id == OPERATOR)
    assert "needs the admin role" in answer.text
    after, _ = await services.effective_parameters(runtime.deps, Scope.GLOBAL)
    assert after == before
