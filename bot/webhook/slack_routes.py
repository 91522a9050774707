"""The spec's Slack integration service: run a /param command as a Slack user, post a
message. Both go through the running bot (the same path as Slack's own requests).

A message Slack refuses (an unknown channel, blocks it cannot render, …) is 422 naming
Slack's error code and the field it concerns; blocks are checked with slack_sdk's models
before Slack is asked. When Slack cannot take the message now (rate limited or failing after
the client's retries, unreachable) the answer is 503 with Retry-After: Slack did not take it.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from bot.app import SLACK_BOT, SlackBot, SlackRefused, SlackUnavailable
from bot.webhook import schemas as s
from bot.webhook.routing import ApiError, Call, Route, json_response
from core.authz import Action

SlackUser = Annotated[str, Field(pattern=r"^[UW][A-Z0-9]{2,}$", description="e.g. U0123ABCD")]


class ProcessCommandIn(s.Strict):
    user_id: SlackUser = Field(description="Runs with this Slack user's roles, not the token's")
    text: Annotated[str, Field(max_length=4000)] = Field(description="What follows /param")


class CommandReplyOut(BaseModel):
    text: str
    blocks: list[dict[str, Any]]
    ephemeral: bool = Field(description="Slack would show it to the user only")


class SendMessageIn(s.Strict):
    channel: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[#A-Za-z0-9_.\-]+$")]
    text: Annotated[s.Required, Field(max_length=40000)] = Field(description="Fallback text")
    blocks: Annotated[list[dict[str, Any]], Field(max_length=50)] | None = None


class SentOut(BaseModel):
    channel: str
    ts: str


def _bot(call: Call) -> SlackBot:
    if SLACK_BOT not in call.request.app:
        raise ApiError(503, "Slack is not running in this process")
    return call.request.app[SLACK_BOT]


async def process_command(call: Call) -> web.Response:
    body: ProcessCommandIn = call.body
    text = body.text.strip().removeprefix("/param").strip()
    reply = await _bot(call).run_param_command(body.user_id, text, source="api")
    payload = reply.payload()
    out = CommandReplyOut(text=payload["text"], blocks=payload["blocks"], ephemeral=reply.ephemeral)
    return json_response(out.model_dump())


async def send_message(call: Call) -> web.Response:
    body: SendMessageIn = call.body
    problems = [
        {"field": f"blocks[{i}]", "problem": problem}
        for i, block in enumerate(body.blocks or [])
        if (problem := _block_problem(block)) is not None
    ]
    if problems:
        raise ApiError(422, "invalid blocks", problems)
    bot = _bot(call)
    try:
        posted = await bot.post_message(body.channel, body.text, body.blocks)
    except SlackRefused as refused:
        problem = f"Slack answered {refused.code}: {refused.explanation}"
        where = refused.field or "body"
        raise ApiError(422, str(refused), [{"field": where, "problem": problem}]) from None
    except SlackUnavailable as down:
        wait = {"Retry-After": str(math.ceil(down.retry_after))} if down.retry_after else None
        raise ApiError(503, f"message not posted: {down}", headers=wait) from None
    return json_response(SentOut(**posted).model_dump(), status=201)


def _block_problem(block: dict[str, Any]) -> str | None:
    """What slack_sdk's Block Kit models find wrong with a block, if anything. They check the
    structure and the documented limits Slack would refuse; not every rule Slack has."""
    kind = block.get("type")
    if not isinstance(kind, str) or not kind:
        return 'a block needs a "type" (section, header, context, actions, …)'
    try:
        parsed = Block.parse(copy.deepcopy(block))  # a copy: parsing must not alter the message
        if parsed is None:
            return f"unknown block type {kind!r}"
        parsed.validate_json()
    except SlackObjectFormationError as error:
        return f"invalid {kind} block: {error}"
    except (LookupError, TypeError, ValueError, AttributeError) as error:
        return f"invalid {kind} block: {_readable(error)}"
    return None


_MISSING = re.compile(r"missing \d+ required (?:keyword-only |positional )?arguments?: (.+)$")


def _readable(error: Exception) -> str:
    """slack_sdk's constructor errors, said in terms of the JSON that was sent."""
    if isinstance(error, TypeError) and (missing := _MISSING.search(str(error))):
        return f"missing {missing.group(1)}"
    if isinstance(error, KeyError):
        return f"missing {error}"
    return str(error) or type(error).__name__


ROUTES = [
    Route(
        "POST",
        "/process-command",
        process_command,
        "Run `/param …` text as a Slack user, with that user's roles",
        Action.SPEAK_FOR_OTHERS,
        "slack",
        {200: CommandReplyOut},
        body=(ProcessCommandIn,),
    ),
    Route(
        "POST",
        "/send-message",
        send_message,
        "Post a message to a Slack channel as the bot (422 naming the field when Slack "
        "refuses it; 503 with Retry-After while Slack is unavailable)",
        Action.SPEAK_FOR_OTHERS,
        "slack",
        {201: SentOut, 503: s.ErrorOut},
        body=(SendMessageIn,),
    ),
]
