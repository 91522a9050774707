"""Every Slack button and every /param subcommand × every role (none, viewer, operator,
admin): allowed or refused as README.md documents and core/authz.py decides."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot import commands
from bot.app import SlackBot
from bot.blocks.help import INTERNAL_ERROR
from bot.blocks.learning import FORM_CALLBACK
from core import commands as c
from core.authz import Action, Actor, Role
from tests.e2e.conftest import ADMIN, OPERATOR, RISK, STRANGER, VIEWER, on_sqlite, param
from tests.fakeslack import FakeSlack
from tests.security.slack_actions import ACTION_IDS, NAMING_NOTHING, NEEDS

# What reaches the listeners that are not buttons: /param, the learning form, App Home.
NOT_BUTTONS: list[dict[str, Any]] = [
    {"command": "/param", "text": ""},
    {"type": "view_submission", "view": {"type": "modal", "callback_id": FORM_CALLBACK}},
    {"type": "event_callback", "event": {"type": "app_home_opened"}},
]

README = Path(__file__).resolve().parents[2] / "README.md"
PEOPLE = {STRANGER: None, VIEWER: Role.VIEWER, OPERATOR: Role.OPERATOR, ADMIN: Role.ADMIN}
REFUSED = "needs the"  # core.authz: "<action> needs the <role> role; <who> has <roles>"
# A /param text for each subcommand that passes the grammar, so only the role decides.
TEXTS = {
    "help": "help",
    "show": "show",
    "set": "set min_confidence 0.6 roles test",
    "reset": "reset min_confidence roles test",
    "override": "override BTCUSDC BUY roles test",
    "learning start": "learning start 60 roles test",
    "learning stop": "learning stop roles test",
    "learning status": "learning status",
    "history": "history",
    "diff": "diff 1 2",
    "restore": "restore 1 roles test",
    "blocked": "blocked 24h",
    "optimize": "optimize HIGH",
    "jobs": "jobs",
    "digest": "digest",
    "notifications": "notifications",
}


def may(role: Role | None, action: Action) -> bool:
    granted = (role,) if role else ()
    return Actor.having("U0ANY", "slack", *granted).may(action)


def block_actions(action_id: str) -> dict[str, Any]:
    return {"type": "block_actions", "actions": [{"action_id": action_id, "block_id": "b"}]}


async def handles(bot: SlackBot, body: dict[str, Any]) -> list[str]:
    """The names of the registered listeners this payload reaches."""
    request = AsyncBoltRequest(body=body, mode="socket_mode")
    return [
        listener.ack_function.__name__
        for listener in bot.app._async_listeners
        if await listener.async_matches(req=request, resp=BoltResponse(status=200))
    ]


def documented_roles() -> dict[str, str]:
    """README's /param table: subcommand -> the role it lists."""
    table = re.compile(r"^\| `/param ([a-z]+(?: start| stop| status)?)[^`]*` \| (\w+) \|", re.M)
    return dict(table.findall(README.read_text()))


@on_sqlite
async def test_every_listener_is_in_the_matrix(bot: SlackBot) -> None:
    """A new button must be given its role here before it ships, and no listener hides
    from the matrix under an id that is not a bot.blocks `..._ACTION` constant."""
    assert set(ACTION_IDS) == set(NEEDS) == set(NAMING_NOTHING)
    reached: set[str] = set()
    for action_id in ACTION_IDS:
        [listener] = await handles(bot, block_actions(action_id))
        reached.add(listener)
    for other in NOT_BUTTONS:
        reached.update(await handles(bot, other))
    assert {listener.ack_function.__name__ for listener in bot.app._async_listeners} == reached


@on_sqlite
@pytest.mark.usefixtures("bot")
@pytest.mark.parametrize("action_id", ACTION_IDS)
async def test_each_button_is_allowed_or_refused_by_role(slack: FakeSlack, action_id: str) -> None:
    element = {
        "type": "button",
        "action_id": action_id,
        "value": NAMING_NOTHING[action_id],
        "text": {"type": "plain_text", "text": "x"},
    }
    blocks = [{"type": "actions", "block_id": "roles", "elements": [element]}]
    for user, role in PEOPLE.items():
        ack = await slack.click_button(blocks, action_id, user, channel_id=RISK)
        url = ack.envelope["payload"]["response_url"]
        told = (await slack.wait_for_response(response_url=url)).text
        allowed = may(role, NEEDS[action_id])
        assert (REFUSED not in told) == allowed, f"{action_id} by {role}: {told}"
        assert INTERNAL_ERROR not in told


def test_the_readme_documents_each_subcommand_with_the_role_core_requires() -> None:
    documented = documented_roles()
    assert {"help", "show", "override", "set", "learning start"} <= set(documented)
    for name, usage in c.USAGES.items():
        if name in documented:
            expected = "anyone" if usage.action is Action.HELP else needed(usage.action)
            assert documented[name] == expected, name


def needed(action: Action) -> str:
    for role in (Role.VIEWER, Role.OPERATOR, Role.ADMIN):
        if may(role, action):
            return role.value
    raise AssertionError(f"no person may {action}")


@on_sqlite
@pytest.mark.usefixtures("bot")
@pytest.mark.parametrize("name", sorted(commands.available()))
async def test_each_subcommand_is_allowed_or_refused_by_role(slack: FakeSlack, name: str) -> None:
    assert name in TEXTS, f"give /param {name} a text in TEXTS so the matrix covers it"
    for user, role in PEOPLE.items():
        told = (await param(slack, TEXTS[name], user)).text
        allowed = may(role, c.USAGES[name].action)
        assert (REFUSED not in told) == allowed, f"/param {TEXTS[name]} by {role}: {told}"
        assert INTERNAL_ERROR not in told
