"""Roles granted to user groups: looked up before the ack, all at once."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.config import Settings
from tests.e2e.conftest import ADMIN, OPERATOR, TRADER, TRADERS, TRADING, answer_to, on_sqlite
from tests.fakeslack import FakeSlack

pytestmark = [pytest.mark.usefixtures("bot"), on_sqlite]

GROUPS = ("S0DESK1", "S0DESK2", "S0DESK3", TRADERS)
LOOKUP = "usergroups.users.list"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, roles={"admin": (ADMIN,), "operator": (OPERATOR, *GROUPS)})


async def test_groups_that_do_not_answer_cost_one_lookup_timeout_not_one_each(
    slack: FakeSlack,
) -> None:
    slack.hold(LOOKUP)  # Slack takes every lookup and answers none

    # One second per group, one after another, would miss Slack's 3-second ack deadline.
    ack = await slack.slash_command("/param", "override ETHUSDC SELL hedge", user_id=TRADER)

    assert slack.in_flight(LOOKUP) == len(GROUPS)  # all asked at once
    answer = await answer_to(slack, ack)
    assert answer.text == "override needs the operator role; U0TRADER has no role"


async def test_a_member_of_any_of_the_groups_gets_its_role(slack: FakeSlack) -> None:
    for desk in GROUPS[:-1]:
        slack.set_usergroup(desk, ["U0SOMEONE"])

    ack = await slack.slash_command(
        "/param", "override ETHUSDC SELL hedge", user_id=TRADER, channel_id=TRADING
    )

    answer = await answer_to(slack, ack)
    assert answer.text.startswith("<@U0TRADER> overrode the risk block for SELL ETHUSDC")
    looked_up = sorted(call.params["usergroup"] for call in slack.calls(LOOKUP, ok=None))
    assert looked_up == sorted(GROUPS)
