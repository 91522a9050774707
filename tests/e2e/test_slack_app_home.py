"""The App Home tab: the state of things at a glance, fresh each time it is opened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.runtime import Runtime
from core.models import AuditEntry, Outcome
from core.optimization_model import DataRange, NewRun, RunEnd, RunStatus, Trigger
from core.optimizer import Method
from core.params import Scope
from tests.e2e.conftest import ADMIN, OPERATOR, STRANGER, VIEWER, block, param, text_of
from tests.fakeslack import FakeSlack

pytestmark = pytest.mark.usefixtures("bot")


async def home_of(slack: FakeSlack, user: str) -> str:
    published = len(slack.calls("views.publish"))
    await slack.open_home(user)
    await slack.wait_for_calls("views.publish", published + 1)
    view = slack.home_view(user)
    assert view is not None and view["type"] == "home"
    return text_of(view["blocks"])


async def test_a_fresh_install_shows_defaults_and_nothing_yet(slack: FakeSlack) -> None:
    home = await home_of(slack, VIEWER)

    assert "*global* · version 0\n`min_confidence` 0.65" in home
    assert "*HIGH* · version 0 · inherits every value from global" in home
    assert "Learning session\nNo learning session is running." in home
    assert "Last optimization run\nnone yet" in home
    assert "Blocked trades today\nnone" in home


async def test_the_home_is_rendered_afresh_when_opened_again(
    slack: FakeSlack, runtime: Runtime
) -> None:
    await home_of(slack, VIEWER)
    await param(slack, "set stop_loss_pct 3 --scope HIGH wider stops", ADMIN)
    await param(slack, "learning start 30 explore", OPERATOR)
    await block(runtime)
    await record_optimization_run(runtime)

    home = await home_of(slack, VIEWER)

    # HIGH sets stop_loss_pct itself, so the session relaxed it there too (3 → 3.45).
    assert "*HIGH* · version 2\n`stop_loss_pct` 3.45\n_the rest inherited from global_" in home
    assert "*Learning session 1* by <@U0OPS>: 30 min left" in home
    assert "`opt-1` no improvement · HIGH · bayes (trade count) · started " in home
    assert "*1* · by reason: min_confidence 1 · by symbol: BTCUSDC 1" in home


async def test_someone_without_a_role_is_told_how_to_get_one(slack: FakeSlack) -> None:
    home = await home_of(slack, STRANGER)

    assert ":lock: read needs the viewer role; U0STRANGER has no role" in home
    assert "min_confidence" not in home


async def record_optimization_run(runtime: Runtime) -> None:
    """A run as the optimizer stores it: claimed, then finished without a better candidate."""
    assert runtime.deps.optimizer is not None
    runs, now = runtime.deps.optimizer.runs, datetime.now(UTC)
    window = DataRange(now - timedelta(days=30), now, "1h", ("BTCUSDC",))
    new = NewRun(
        "opt-1", Trigger.TRADE_COUNT, Scope.HIGH, Method.BAYES, now, "system", 7, "t", window
    )
    audit = AuditEntry(now, "system", "optimizer", "optimize", "HIGH", Outcome.APPLIED)
    await runs.claim(new, now - timedelta(hours=1), audit)
    await runs.finish("opt-1", RunEnd(RunStatus.NO_IMPROVEMENT, now, 12.0, best_score=0.8))
