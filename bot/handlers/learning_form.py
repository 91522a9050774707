"""The learning-session form: check the input, start the session, announce it.

Unlike the other listeners this one acks last: Slack shows input errors only when they
come in the ack (response_action "errors"), so the use case runs first and its refusal
is shown next to the fields. After the ack, the person who submitted it is answered in
the channel where they typed `/param learning start`, as a typed start would be.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import learning as learning_blocks
from bot.blocks.help import INTERNAL_ERROR
from bot.blocks.learning import FORM_CALLBACK
from bot.commands import CommandContext, for_the_caller
from bot.handlers.actor import actor_of
from bot.notifications import EventType
from bot.runtime import Runtime
from core import commands as c
from core import learning
from core.authz import Actor
from core.errors import UserError
from core.learning import LearningSession
from core.learning_model import LearningPolicy

log = logging.getLogger(__name__)


def register(app: AsyncApp, runtime: Runtime) -> None:
    async def learning_form_submitted(
        ack: AsyncAck, view: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        deps = runtime.deps
        actor = actor_of(context)
        try:
            form = _form(view, learning.relax_choices(deps.schema), deps.learning_policy)
            session = await learning.start_learning_session(
                deps, actor, form.duration_minutes, form.reason, form.relax_pct
            )
        except c.FormError as error:
            log.info("learning form from %s refused: %s", actor.id, error)
            await ack(response_action="errors", errors=error.errors)
            return
        except UserError as error:
            log.info("learning session for %s refused: %s", actor.id, error)
            await ack(response_action="errors", errors={c.DURATION_FIELD: str(error)})
            return
        except Exception:
            log.exception("learning form from %s failed", actor.id)
            await ack(response_action="errors", errors={c.DURATION_FIELD: INTERNAL_ERROR})
            return
        await ack()  # the outbox announces the session (bot.announcements)
        log.info("learning session %d started from the form by %s", session.id, actor.id)
        await _confirm(runtime, client, actor, view, session)

    app.view(FORM_CALLBACK)(learning_form_submitted)


async def _confirm(
    runtime: Runtime,
    client: AsyncWebClient,
    actor: Actor,
    view: dict[str, Any],
    session: LearningSession,
) -> None:
    """The start, where the form was asked for, by the rule of a typed start: to the submitter
    alone when the announcement goes to that channel, else to the channel."""
    channel_id, channel_name = learning_blocks.origin(view)
    if not channel_id:  # a form that does not say where it came from: the announcement only
        return
    ctx = CommandContext(runtime, actor, channel_id, channel_name=channel_name)
    message = for_the_caller(ctx, learning_blocks.started(session), EventType.LEARNING_SESSION)
    try:
        if message.ephemeral:
            await client.chat_postEphemeral(channel=channel_id, user=actor.id, **message.payload())
        else:
            await client.chat_postMessage(channel=channel_id, **message.payload())
    except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
        reason = error.response.get("error") if isinstance(error, SlackApiError) else error
        log.warning(
            "learning session %d: the answer to %s in %s is lost: %s",
            session.id,
            actor.id,
            channel_id,
            reason,
        )


def _form(
    view: dict[str, Any], choices: list[learning.RelaxChoice], policy: LearningPolicy
) -> c.LearningForm:
    state = view["state"]["values"]

    def value(field: str) -> str | None:
        entry = state.get(field, {}).get(field) or {}
        return entry.get("value")

    relax = {c.relax_field(ch.name): value(c.relax_field(ch.name)) for ch in choices}
    minutes = (policy.min_duration_minutes, policy.max_duration_minutes)
    return c.parse_learning_form(
        value(c.DURATION_FIELD), relax, value(c.REASON_FIELD), choices, minutes
    )
