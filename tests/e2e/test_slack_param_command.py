"""/param in Slack: every subcommand, bad input, and who may run what."""

from __future__ import annotations

import pytest

from bot.app import SlackBot
from bot.runtime import Runtime
from core.models import Outcome
from core.params import Scope
from tests.e2e.conftest import (
    ADMIN,
    OPERATOR,
    RISK,
    STRANGER,
    TRADER,
    TRADERS,
    TRADING,
    VIEWER,
    block,
    on_sqlite,
    param,
    text_of,
)
from tests.fakeslack import FakeSlack

pytestmark = [pytest.mark.usefixtures("bot"), on_sqlite]


def listed(text: str) -> list[str]:
    return [line.split("`")[1] for line in text.splitlines() if line.startswith("`/param")]


async def test_the_command_is_acked_at_once_and_answered_through_response_url(
    slack: FakeSlack,
) -> None:
    ack = await slack.slash_command("/param", "help", user_id=VIEWER, channel_id=TRADING)

    assert ack.payload is None and ack.latency < 3
    answer = await slack.wait_for_response(response_url=ack.envelope["payload"]["response_url"])
    assert answer.response_type == "ephemeral"


async def test_help_lists_only_what_the_caller_may_run(slack: FakeSlack) -> None:
    stranger = listed(text_of((await param(slack, "help", STRANGER)).body["blocks"]))
    viewer = listed(text_of((await param(slack, "help", VIEWER)).body["blocks"]))
    admin = listed(text_of((await param(slack, "", ADMIN)).body["blocks"]))

    assert stranger == ["/param help"]
    assert viewer == [
        "/param help",
        "/param show [PARAM|all] [--scope S]",
        "/param learning status",
        "/param history [PARAM] [--scope S] [--limit N]",
        "/param diff V1 V2 [--scope S]",
        "/param blocked [WINDOW]",
        "/param jobs",
        "/param digest [daily|weekly]",
        "/param notifications",
    ]
    assert "/param set PARAM VALUE [--scope S] [REASON...]" in admin
    assert "/param restore VERSION [--scope S] [REASON...]" in admin
    assert "/param optimize [SCOPE]" in admin


async def test_malformed_input_gets_the_error_the_syntax_and_the_reference(
    slack: FakeSlack, runtime: Runtime
) -> None:
    answer = await param(slack, "set min_confidence")

    shown = text_of(answer.body["blocks"])
    assert answer.response_type == "ephemeral"
    assert "set needs a parameter and a value" in shown
    assert "Usage: `/param set PARAM VALUE [--scope S] [REASON...]`" in shown
    assert "`/param show [PARAM|all] [--scope S]`" in shown
    assert await runtime.deps.config.active(Scope.GLOBAL) is None  # nothing changed


async def test_show_answers_the_asker_alone(slack: FakeSlack) -> None:
    answer = await param(slack, "show", VIEWER)

    assert answer.response_type == "ephemeral"
    assert answer.body["blocks"][0]["text"]["text"] == "Parameters · global · version 0"
    assert "*min_confidence*  `0.65` fraction  _default_" in text_of(answer.body["blocks"])
    assert "min_confidence     0.65 fraction  (default)" in answer.text  # the fallback text


async def test_show_one_parameter_of_a_level_marks_where_its_value_comes_from(
    slack: FakeSlack,
) -> None:
    answer = await param(slack, "show stop_loss_pct --scope HIGH", VIEWER)

    assert text_of(answer.body["blocks"]).splitlines()[1:] == ["*stop_loss_pct*  `2` %  _default_"]


async def test_a_typo_is_refused_with_the_closest_name(slack: FakeSlack) -> None:
    answer = await param(slack, "show min_confidense", VIEWER)

    assert answer.response_type == "ephemeral"
    assert "did you mean 'min_confidence'?" in answer.text


async def test_an_unknown_parameter_is_refused_with_the_syntax_of_show(slack: FakeSlack) -> None:
    answer = await param(slack, "show nosuch", VIEWER)

    shown = text_of(answer.body["blocks"])
    assert "unknown parameter 'nosuch'" in shown
    assert "Usage: `/param show [PARAM|all] [--scope S]`" in shown


async def test_set_answers_the_caller_with_who_what_and_why(slack: FakeSlack) -> None:
    answer = await param(slack, "set min_confidence 0.6 too many good BUYs blocked")

    assert answer.response_type == "in_channel"  # typed outside the announcing channel
    shown = text_of(answer.body["blocks"])
    assert "<@U0ADMIN> set `min_confidence` in *global*" in shown
    assert "• `min_confidence`: 0.65 → *0.6*" in shown
    assert "> too many good BUYs blocked" in shown
    assert "global version 0 → 1" in shown
    assert answer.text == (
        "<@U0ADMIN> set `min_confidence` in *global*: min_confidence 0.65 → 0.6 "
        "— too many good BUYs blocked"
    )
    shown_now = await param(slack, "show min_confidence", VIEWER)
    assert "`0.6`" in text_of(shown_now.body["blocks"])


async def test_set_without_a_reason_is_applied_and_announced_as_having_none(
    slack: FakeSlack, runtime: Runtime
) -> None:
    answer = await param(slack, "set min_confidence 0.6")

    assert "• `min_confidence`: 0.65 → *0.6*" in text_of(answer.body["blocks"])
    assert "> no reason given" in text_of(answer.body["blocks"])
    runtime.wake_dispatchers()
    await slack.wait_until(lambda: bool(slack.messages(RISK)), 15, "the change's announcement")
    [announced] = [text_of(message["blocks"]) for message in slack.messages(RISK)]
    assert "• `min_confidence`: 0.65 → *0.6*" in announced
    assert "> no reason given" in announced
    history = await param(slack, "history min_confidence", VIEWER)
    assert "<@U0ADMIN> via slack — no reason given" in text_of(history.body["blocks"])


async def test_the_http_api_still_needs_a_reason_for_a_change(
    bot: SlackBot, runtime: Runtime
) -> None:
    refused = await bot.run_param_command(ADMIN, "set min_confidence 0.6", source="api")

    assert refused.text == "a reason is required: say why the value changes"
    assert await runtime.deps.config.active(Scope.GLOBAL) is None


async def test_a_value_out_of_bounds_is_refused_and_changes_nothing(
    slack: FakeSlack, runtime: Runtime
) -> None:
    answer = await param(slack, "set min_confidence 1.5 bold move")

    assert answer.response_type == "ephemeral"
    assert answer.text == "min_confidence must be a number from 0 to 1; got 1.5"
    assert await runtime.deps.config.active(Scope.GLOBAL) is None


async def test_reset_and_restore_answer_the_caller(slack: FakeSlack) -> None:
    await param(slack, "set stop_loss_pct 3 --scope HIGH wider stops in high volatility")

    reset = await param(slack, "reset stop_loss_pct --scope HIGH")
    restore = await param(slack, "restore 1 --scope HIGH the reset was a mistake")

    assert reset.response_type == restore.response_type == "in_channel"
    assert "• `stop_loss_pct`: 3 → *(inherited)*" in text_of(reset.body["blocks"])
    assert "> reset stop_loss_pct to its default" in text_of(reset.body["blocks"])
    assert "<@U0ADMIN> restored *HIGH* version 1" in text_of(restore.body["blocks"])
    assert "• `stop_loss_pct`: (inherited) → *3*" in text_of(restore.body["blocks"])


async def test_history_and_diff(slack: FakeSlack) -> None:
    await param(slack, "set min_confidence 0.6 first")
    await param(slack, "set min_confidence 0.55 second")

    history = await param(slack, "history min_confidence --limit 1", VIEWER)
    diff = await param(slack, "diff 1 2", VIEWER)

    assert text_of(history.body["blocks"]).count("`min_confidence`") == 1
    assert "0.6 → *0.55* · <@U0ADMIN> via slack — second" in text_of(history.body["blocks"])
    assert (
        text_of(diff.body["blocks"]) == "*global*: version 1 → 2\n• `min_confidence`: 0.6 → *0.55*"
    )
    missing = await param(slack, "diff 1 9", VIEWER)
    assert missing.text == "global has no version 9; the active version is 2"


async def test_diff_from_version_0_shows_the_change_from_the_defaults(slack: FakeSlack) -> None:
    await param(slack, "set min_confidence 0.6 first")

    diff = await param(slack, "diff 0 1", VIEWER)

    assert text_of(diff.body["blocks"]) == (
        "*global*: version 0 → 1\n• `min_confidence`: 0.65 → *0.6*"
    )


async def test_restore_of_version_0_goes_back_to_the_defaults(slack: FakeSlack) -> None:
    await param(slack, "set min_confidence 0.6 first")

    restored = await param(slack, "restore 0 back to the defaults")

    assert "• `min_confidence`: 0.6 → *0.65*" in text_of(restored.body["blocks"])


async def test_override_answers_the_caller(slack: FakeSlack) -> None:
    answer = await param(slack, "override btcusdc buy strategic_opportunity", OPERATOR)

    assert answer.response_type == "in_channel"
    assert "<@U0OPS> overrode the risk block for *BUY BTCUSDC* until" in text_of(
        answer.body["blocks"]
    )


async def test_blocked_sums_up_a_window(slack: FakeSlack, runtime: Runtime) -> None:
    await block(runtime)

    answer = await param(slack, "blocked 1h", VIEWER)

    shown = text_of(answer.body["blocks"])
    assert "*1* blocked trades in the last 1h" in shown
    assert "*By reason:* min_confidence 1" in shown


async def test_blocked_says_which_trades_could_not_be_replayed_and_why(
    slack: FakeSlack, runtime: Runtime
) -> None:
    await block(runtime)  # no MARKET_DATA_DIR here: nothing to replay it on

    answer = await param(slack, "blocked 1h", VIEWER)

    shown = text_of(answer.body["blocks"])
    assert "1 blocked, 0 evaluated, 1 not evaluated" in shown


@pytest.mark.parametrize("minutes", ["0", "999"])
async def test_a_learning_duration_out_of_bounds_is_answered_with_the_bounds(
    slack: FakeSlack, minutes: str
) -> None:
    answer = await param(slack, f"learning start {minutes}", OPERATOR)

    assert answer.response_type == "ephemeral"
    assert f"a learning session lasts 5 to 240 minutes (a whole number); got {minutes}" in (
        text_of(answer.body["blocks"])
    )


async def test_a_learning_session_started_checked_and_stopped(slack: FakeSlack) -> None:
    started = await param(slack, "learning start 30 explore lower confidence", OPERATOR)
    status = await param(slack, "learning status", VIEWER)
    stopped = await param(slack, "learning stop enough seen", OPERATOR)

    assert started.response_type == stopped.response_type == "in_channel"
    assert "<@U0OPS> started learning session 1 until" in text_of(started.body["blocks"])
    assert "global `min_confidence`: 0.65 → *0.5525*" in text_of(started.body["blocks"])
    assert "*Learning session 1* by <@U0OPS>: 30 min left" in text_of(status.body["blocks"])
    assert "<@U0OPS> ended learning session 1 (stopped): original values restored" in text_of(
        stopped.body["blocks"]
    )
    assert (await param(slack, "learning status", VIEWER)).text == "No learning session is running."


async def test_a_learning_session_starts_without_a_reason(slack: FakeSlack) -> None:
    started = await param(slack, "learning start 30", OPERATOR)
    status = await param(slack, "learning status", VIEWER)

    assert "<@U0OPS> started learning session 1 until" in text_of(started.body["blocks"])
    assert "> no reason given" in text_of(started.body["blocks"])
    assert "Why: no reason given" in text_of(status.body["blocks"])


async def test_the_start_and_end_of_a_session_are_announced_in_the_risk_channel(
    slack: FakeSlack,
) -> None:
    await param(slack, "learning start 30 explore lower confidence", OPERATOR)
    await param(slack, "learning stop enough seen", OPERATOR)

    await slack.wait_until(lambda: len(slack.messages(RISK)) >= 2, what="two announcements")
    started, ended = (text_of(m["blocks"]) for m in slack.messages(RISK))
    assert "<@U0OPS> started learning session 1 until" in started
    assert "<@U0OPS> ended learning session 1 (stopped): original values restored" in ended


@pytest.mark.parametrize(
    ("user", "text", "needed"),
    [
        (STRANGER, "show", "read needs the viewer role; U0STRANGER has no role"),
        (STRANGER, "learning status", "read needs the viewer role"),
        (VIEWER, "override BTCUSDC BUY because", "override needs the operator role"),
        (VIEWER, "learning start 30 explore", "learning needs the operator role"),
        (OPERATOR, "set min_confidence 0.6 why", "set needs the admin role; U0OPS has operator"),
        (OPERATOR, "reset min_confidence", "reset needs the admin role"),
        (OPERATOR, "restore 1", "restore needs the admin role"),
    ],
)
async def test_a_refusal_is_ephemeral_and_names_the_role_needed(
    slack: FakeSlack, user: str, text: str, needed: str
) -> None:
    await param(slack, "set min_confidence 0.6 so that version 1 exists")

    answer = await param(slack, text, user)

    assert answer.response_type == "ephemeral"
    assert needed in answer.text


@pytest.mark.parametrize(
    ("user", "text"),
    [
        (VIEWER, "show"),
        (VIEWER, "history"),
        (OPERATOR, "override ETHUSDC SELL hedge"),
        (TRADER, "override ETHUSDC SELL member of the traders group"),
        (ADMIN, "set take_profit_pct 5 let winners run"),
    ],
)
async def test_each_role_may_run_its_commands(slack: FakeSlack, user: str, text: str) -> None:
    answer = await param(slack, text, user)

    assert "needs the" not in answer.text


async def test_a_refused_change_is_audited(slack: FakeSlack, runtime: Runtime) -> None:
    await param(slack, "set min_confidence 0.6 why not", VIEWER)

    refused = [e for e in await runtime.store.audit_entries() if e.outcome is Outcome.REFUSED]
    assert [(e.actor, e.source, e.action) for e in refused] == [("U0VIEWER", "slack", "set")]


async def test_user_group_members_are_looked_up_once_and_cached(slack: FakeSlack) -> None:
    await param(slack, "override ETHUSDC SELL hedge", TRADER)
    await param(slack, "override ETHUSDC BUY unhedge", TRADER)

    lookups = slack.calls("usergroups.users.list")
    assert [call.params["usergroup"] for call in lookups] == [TRADERS]


async def test_the_http_api_runs_the_same_command_without_posting_its_answer(
    slack: FakeSlack, bot: SlackBot
) -> None:
    reply = await bot.run_param_command(ADMIN, "set max_position_size 6 size up", source="api")
    refused = await bot.run_param_command(VIEWER, "set max_position_size 7 again")
    form = await bot.run_param_command(OPERATOR, "learning start")

    assert reply.ephemeral  # for the caller; the channel's announcement: the outbox's
    assert reply.text.startswith("<@U0ADMIN> set `max_position_size` in *global*")
    assert refused.ephemeral and "set needs the admin role" in refused.text
    assert form.text.startswith("give the duration and a reason here")
    await slack.wait_until(lambda: bool(slack.messages(RISK)), 10, "the change's announcement")
    assert slack.responses() == [] and len(slack.calls("chat.postMessage")) == 1
