"""Pushes parameter changes and approved overrides to the engine's callback URL, signed.

A parameter push carries, for every scope the change affected, what GET /parameters?scope=S
answers when the push is sent (effective values, version, ETag), not the values stored in
the changed scope: an engine that applies pushes holds what it would read. The outbox keeps
only which version of which scope changed; the values are read at delivery, so a delayed or
retried push carries the current values, never older ones.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp

from bot.engine_parameters import affected_scopes, engine_parameters
from bot.webhook.signing import signed_headers
from core.params import Scope
from core.ports import Deps
from storage.config_store import PARAMETERS_PUSH_TOPIC
from storage.outbox import OutboxMessage
from storage.trade_store import OVERRIDE_PUSH_TOPIC

PUSH_TOPICS = (PARAMETERS_PUSH_TOPIC, OVERRIDE_PUSH_TOPIC)


class EnginePusher:
    def __init__(self, url: str, secret: str, session: aiohttp.ClientSession, deps: Deps) -> None:
        self._url = url
        self._secret = secret
        self._session = session
        self._deps = deps

    async def deliver(self, message: OutboxMessage) -> None:
        payload = await self._payload(message)
        body = json.dumps(
            {"id": message.id, "topic": message.topic, "payload": payload},
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

    async def _payload(self, message: OutboxMessage) -> dict[str, Any]:
        if message.topic != PARAMETERS_PUSH_TOPIC:
            return message.payload
        changed = Scope(message.payload["scope"])
        effective = {
            scope.value: (await engine_parameters(self._deps, scope)).as_json()
            for scope in affected_scopes(changed)
        }
        # Messages queued by an older release also hold the changed scope's own values:
        # left out, they would be mistaken for the effective ones again.
        facts = {k: v for k, v in message.payload.items() if k != "parameters"}
        return {**facts, "effective": effective}
