"""Bolt middleware: resolve the core Actor once per request, for every listener."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.roles import RoleResolver
from core.authz import Actor

_ACTOR = "paramadapt_actor"


def register(app: AsyncApp, roles: RoleResolver) -> None:
    async def resolve_actor(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        if context.user_id:
            context[_ACTOR] = await roles.actor(context.user_id)
        await next()

    app.middleware(resolve_actor)


def actor_of(context: AsyncBoltContext) -> Actor:
    """Who is asking (the person who clicked or submitted, not who posted); no roles if unknown."""
    actor = context.get(_ACTOR)
    if isinstance(actor, Actor):
        return actor
    return Actor.having(context.user_id or "unknown", "slack")
