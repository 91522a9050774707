"""The spec's Slack integration service: run a /param command as a Slack user, post a
message. Both go through the running bot (the same path as Slack's own requests)."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field

from bot.app import SLACK_BOT, SlackBot
from bot.webhook import schemas as s
from bot.webhook.routing import ApiError, Call, Route
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
    return web.json_response(out.model_dump())


async def send_message(call: Call) -> web.Response:
    body: SendMessageIn = call.body
    posted = await _bot(call).post_message(body.channel, body.text, body.blocks)
    return web.json_response(SentOut(**posted).model_dump(), status=201)


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
        "Post a message to a Slack channel as the bot",
        Action.SPEAK_FOR_OTHERS,
        "slack",
        {201: SentOut},
        body=(SendMessageIn,),
    ),
]
