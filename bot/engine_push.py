"""Pushes parameter changes and approved overrides to the engine's callback URL, signed."""

from __future__ import annotations

import json
import time

import aiohttp

from bot.webhook.signing import signed_headers
from storage.outbox import OutboxMessage

PUSH_TOPICS = ("engine.parameters", "engine.override")


class EnginePusher:
    def __init__(self, url: str, secret: str, session: aiohttp.ClientSession) -> None:
        self._url = url
        self._secret = secret
        self._session = session

    async def deliver(self, message: OutboxMessage) -> None:
        body = json.dumps(
            {"id": message.id, "topic": message.topic, "payload": message.payload},
            separators=(",", ":"),
        ).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"outbox-{message.id}"}
        if self._secret:
            headers.update(signed_headers(self._secret, int(time.time()), body))
        async with self._session.post(
            self._url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            if response.status >= 300:
                raise RuntimeError(f"engine answered HTTP {response.status}")
