"""Roles and what each may do. Checked in core, once, for every entry point.

People hold viewer < operator < admin (each implies the ones before it); the trading
engine's API token holds `engine`, which may feed events and read what it must obey.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

from core.errors import PermissionDeniedError


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    ENGINE = "engine"


IMPLIES: dict[Role, frozenset[Role]] = {
    Role.VIEWER: frozenset({Role.VIEWER}),
    Role.OPERATOR: frozenset({Role.OPERATOR, Role.VIEWER}),
    Role.ADMIN: frozenset(Role),
    Role.ENGINE: frozenset({Role.ENGINE}),
}


class Action(StrEnum):
    HELP = "help"
    READ = "read"
    READ_LIVE = "read live parameters and overrides"
    INGEST = "report engine events"
    OVERRIDE = "override"
    LEARNING = "learning"
    SET = "set"
    RESET = "reset"
    RESTORE = "restore"
    BACKUP = "backup"
    APPLY = "apply"
    OPTIMIZE = "optimize"
    SPEAK_FOR_OTHERS = "run commands as a Slack user or post as the bot"


_ADMIN = frozenset({Role.ADMIN})
ALLOWED: dict[Action, frozenset[Role]] = {
    Action.HELP: frozenset(),  # everyone, even without a role
    Action.READ: frozenset({Role.VIEWER}),
    Action.READ_LIVE: frozenset({Role.VIEWER, Role.ENGINE}),
    Action.INGEST: frozenset({Role.ENGINE}),
    Action.OVERRIDE: frozenset({Role.OPERATOR}),
    Action.LEARNING: frozenset({Role.OPERATOR}),
    Action.SET: _ADMIN,
    Action.RESET: _ADMIN,
    Action.RESTORE: _ADMIN,
    Action.BACKUP: _ADMIN,
    Action.APPLY: _ADMIN,
    Action.OPTIMIZE: _ADMIN,
    Action.SPEAK_FOR_OTHERS: _ADMIN,
}


@dataclass(frozen=True)
class Actor:
    """Who asks: an id for the audit log, the channel they came through, their roles."""

    id: str
    source: str
    roles: frozenset[Role]

    @classmethod
    def having(cls, id: str, source: str, *granted: Role) -> Actor:
        roles: frozenset[Role] = frozenset().union(*(IMPLIES[r] for r in granted))
        return cls(id, source, roles)

    def may(self, action: Action) -> bool:
        allowed = ALLOWED[action]
        return not allowed or bool(allowed & self.roles)


def needed_role(action: Action) -> str:
    allowed = ALLOWED[action]
    order = [Role.VIEWER, Role.ENGINE, Role.OPERATOR, Role.ADMIN]
    return " or ".join(r.value for r in order if r in allowed) or "no"


def require(actor: Actor, action: Action) -> None:
    if not actor.may(action):
        held = ", ".join(sorted(r.value for r in actor.roles)) or "no role"
        raise PermissionDeniedError(
            f"{action.value} needs the {needed_role(action)} role; {actor.id} has {held}"
        )


def granted_roles(
    user_id: str, groups: Collection[str], assignments: Mapping[str, Collection[str]]
) -> list[Role]:
    """The roles configuration grants a person: by their id, a group they belong to, or "*".

    `assignments` maps a role name to Slack user ids (U…), user-group ids (S…) and "*";
    `groups` are the ids of the groups the person is a member of.
    """
    holders = {user_id, "*", *groups}
    return [Role(name) for name, ids in assignments.items() if holders & set(ids)]
