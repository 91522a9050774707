"""Who a Slack user is to paramadapt: their roles, from configuration and user groups.

Group membership comes from usergroups.users.list and is cached briefly. A lookup that
fails (or is slow: it runs before the 3-second ack) counts as "not a member": default deny.
The groups are looked up at once, so a cold cache costs one lookup's time, not one per group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.authz import Actor, granted_roles

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT = 1.0  # seconds; the caller is waiting to ack


class RoleResolver:
    def __init__(
        self,
        assignments: Mapping[str, Sequence[str]],
        client: AsyncWebClient,
        *,
        ttl: float = 60.0,
        failure_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._assignments = {role: tuple(ids) for role, ids in assignments.items()}
        self._groups = sorted({i for ids in assignments.values() for i in ids if i.startswith("S")})
        self._client = client
        self._ttl = ttl
        self._failure_ttl = failure_ttl
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    async def actor(self, user_id: str, source: str = "slack") -> Actor:
        members = await asyncio.gather(*(self._members_of(group) for group in self._groups))
        groups = [group for group, ids in zip(self._groups, members, strict=True) if user_id in ids]
        return Actor.having(user_id, source, *granted_roles(user_id, groups, self._assignments))

    async def _members_of(self, group: str) -> frozenset[str]:
        now = self._clock()
        cached = self._members.get(group)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            response = await asyncio.wait_for(
                self._client.usergroups_users_list(usergroup=group), LOOKUP_TIMEOUT
            )
            members = frozenset(str(user) for user in response.get("users") or [])
            self._members[group] = (now + self._ttl, members)
        except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
            log.warning("cannot list members of user group %s (%s): treated as empty", group, error)
            members = frozenset()
            self._members[group] = (now + self._failure_ttl, members)
        return members
