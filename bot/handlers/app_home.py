"""The App Home tab, rendered afresh each time it is opened."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.home import home, no_access
from bot.handlers.actor import actor_of
from bot.runtime import Runtime
from core.errors import PermissionDeniedError
from core.home import home_summary


def register(app: AsyncApp, runtime: Runtime) -> None:
    async def app_home_opened(
        event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        if event.get("tab", "home") != "home":
            return
        try:
            view = home(await home_summary(runtime.deps, actor_of(context)))
        except PermissionDeniedError as error:
            view = no_access(str(error))
        await client.views_publish(user_id=event["user"], view=view)

    app.event("app_home_opened")(app_home_opened)
