"""Bearer tokens with scopes, compared in constant time."""

from __future__ import annotations

import hmac

from bot.config import ApiToken
from core.authz import Role


def authenticate(header: str | None, tokens: tuple[ApiToken, ...]) -> ApiToken | None:
    if not header or not header.startswith("Bearer "):
        return None
    presented = header.removeprefix("Bearer ").strip().encode()
    found = None
    for token in tokens:  # compare with every token, so timing tells nothing
        if hmac.compare_digest(presented, token.secret.encode()):
            found = token
    return found


def is_engine(token: ApiToken | None) -> bool:
    """The engine's own token: its requests are signed when ENGINE_WEBHOOK_SECRET is set.
    The scope as configured, not as implied: an admin or viewer token is a person's."""
    return token is not None and Role.ENGINE.value in token.scopes
