"""Answering the person who typed or clicked.

A listener answers through the request's response_url (Bolt's `respond`). That can fail
after the ack: the payload may carry no response_url (Slack always sends one; a stand-in or
a forged payload may not), or the url may answer 404 (expired or used up), 429 or 5xx.
`Reply` is a `respond` that notices (it reads the status) and then answers through the Web
API instead: chat.postEphemeral to the person, chat.postMessage for an in-channel answer,
chat.update for a message to redraw; so an answer is lost only when Slack refuses both.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeGuard
from urllib.parse import urlsplit

import aiohttp
from slack_bolt.async_app import AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.models.attachments import Attachment
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.webhook_response import WebhookResponse

from bot.blocks.common import Message

log = logging.getLogger(__name__)

_FAILURES = (aiohttp.ClientError, OSError, TimeoutError)


class Reply(AsyncRespond):
    """`respond()` that falls back to the Web API when the response_url cannot answer."""

    def __init__(
        self,
        *,
        response_url: str | None,
        client: AsyncWebClient,
        channel_id: str | None,
        user_id: str | None,
        message_ts: str | None = None,
        message_is_ephemeral: bool = False,
    ) -> None:
        super().__init__(response_url=response_url, proxy=client.proxy, ssl=client.ssl)
        self.client = client
        self.channel_id = channel_id
        self.user_id = user_id
        self.message_ts = message_ts  # the message clicked, if any
        self.message_is_ephemeral = message_is_ephemeral

    async def __call__(  # the same arguments as AsyncRespond
        self,
        text: str | dict[str, Any] = "",
        blocks: Sequence[dict[str, Any] | Block] | None = None,
        attachments: Sequence[dict[str, Any] | Attachment] | None = None,
        response_type: str | None = None,
        replace_original: bool | None = None,
        delete_original: bool | None = None,
        unfurl_links: bool | None = None,
        unfurl_media: bool | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> WebhookResponse:
        """The response_url's answer when it took the message; otherwise the fallback's
        (status 200 when the Web API took it, 0 when nothing did)."""
        host = urlsplit(self.response_url).hostname if self.response_url else None
        if self.response_url is None:
            problem = "the request carries no response_url"
        else:
            try:
                sent = await super().__call__(
                    text=text,
                    blocks=blocks,
                    attachments=attachments,
                    response_type=response_type,
                    replace_original=replace_original,
                    delete_original=delete_original,
                    unfurl_links=unfurl_links,
                    unfurl_media=unfurl_media,
                    thread_ts=thread_ts,
                    metadata=metadata,
                )
            except _FAILURES as error:
                problem = f"the response_url at {host} failed ({type(error).__name__})"
            else:
                if sent.status_code == 200:
                    return sent
                problem = f"the response_url at {host} answered {sent.status_code}"
        if isinstance(text, dict):  # the whole response as one dict, as respond() allows
            whole = text
            text, blocks = str(whole.get("text") or ""), whole.get("blocks")
            response_type = whole.get("response_type")
            replace_original = whole.get("replace_original")
        return await self._fallback(problem, text, blocks, response_type, bool(replace_original))

    async def _fallback(
        self,
        problem: str,
        text: str,
        blocks: Any,
        response_type: str | None,
        replace_original: bool,
    ) -> WebhookResponse:
        method, arguments = self._stand_in(response_type, replace_original)
        if method is None:
            log.warning("%s; nowhere to answer %s: the answer is lost", problem, self.user_id)
            return self._result(0, "nowhere to answer")
        log.warning("%s; answering %s with %s instead", problem, self.user_id, method)
        try:
            calls: dict[str, Callable[..., Awaitable[Any]]] = {
                "chat.update": self.client.chat_update,
                "chat.postMessage": self.client.chat_postMessage,
                "chat.postEphemeral": self.client.chat_postEphemeral,
            }
            await calls[method](**arguments, text=text, blocks=blocks)
        except (SlackApiError, *_FAILURES) as error:
            reason = error.response.get("error") if isinstance(error, SlackApiError) else error
            log.warning(
                "%s failed too (%s): the answer to %s is lost", method, reason, self.user_id
            )
            return self._result(0, str(reason))
        return self._result(200, method)

    def _stand_in(
        self, response_type: str | None, replace_original: bool
    ) -> tuple[str | None, dict[str, str]]:
        """The Web API method (and its arguments) standing in for the response_url post."""
        channel = self.channel_id
        if not channel:
            return None, {}
        if replace_original and self.message_ts and not self.message_is_ephemeral:
            return "chat.update", {"channel": channel, "ts": self.message_ts}
        if response_type == "in_channel":
            return "chat.postMessage", {"channel": channel}
        if not self.user_id:
            return None, {}
        return "chat.postEphemeral", {"channel": channel, "user": self.user_id}

    def _result(self, status: int, body: str) -> WebhookResponse:
        return WebhookResponse(
            url=self.response_url or "", status_code=status, body=body, headers={}
        )


def reply_to(context: AsyncBoltContext, body: Mapping[str, Any], client: AsyncWebClient) -> Reply:
    """The `respond` for this request: its response_url, and where to answer without it
    (the channel of the command or of the message clicked, the person, the message)."""
    container = body.get("container")
    container = container if isinstance(container, Mapping) else {}
    message = body.get("message")
    message = message if isinstance(message, Mapping) else {}
    channel = context.channel_id or _text(container.get("channel_id"))
    return Reply(
        response_url=context.response_url,
        client=client,
        channel_id=channel,
        user_id=context.user_id,
        message_ts=_text(container.get("message_ts")) or _text(message.get("ts")),
        message_is_ephemeral=container.get("is_ephemeral") is True,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def answer(respond: AsyncRespond | None, message: Message) -> None:
    """A command's answer: to the caller alone, or in the channel, as `message` says."""
    kind = "ephemeral" if message.ephemeral else "in_channel"
    await _send(respond, message, response_type=kind)


async def tell(respond: AsyncRespond | None, message: Message) -> None:
    """An ephemeral answer to the clicker; the message clicked stays as it is."""
    await _send(respond, message, response_type="ephemeral", replace_original=False)


async def redraw(respond: AsyncRespond | None, message: Message) -> None:
    """The message clicked, replaced by `message` for everyone in the channel."""
    await _send(respond, message, replace_original=True)


async def _send(respond: AsyncRespond | None, message: Message, **how: Any) -> None:
    if not _answerable(respond, message):
        return
    try:
        sent = await respond(**message.payload(), **how)
    except _FAILURES as error:  # a plain respond: its response_url did not answer
        log.warning("the answer %r is lost: %s", message.text[:80], type(error).__name__)
        return
    if sent.status_code != 200 and not isinstance(respond, Reply):  # Reply said why itself
        log.warning("the answer %r is lost: status %s", message.text[:80], sent.status_code)


def _answerable(respond: AsyncRespond | None, message: Message) -> TypeGuard[AsyncRespond]:
    """A plain `respond` without a response_url (Slack always sends one; a forged payload may
    not) has no one to answer, and a listener must not fail after its ack: Bolt would then
    never send it. A Reply answers through the Web API instead."""
    if respond is None or (respond.response_url is None and not isinstance(respond, Reply)):
        log.info("no response_url to answer with: %s", message.text)
        return False
    return True
