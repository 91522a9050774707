"""Bearer tokens with scopes, compared in constant time."""

from __future__ import annotations

import hmac

from bot.config import ApiToken
from core.authz import Role

SCHEME = "Bearer"


def authenticate(header: str | None, tokens: tuple[ApiToken, ...]) -> ApiToken | None:
    """The token an `Authorization: Bearer <token>` header presents; the scheme's name is
    case-insensitive (RFC 7235: `bearer x` is the same)."""
    scheme, _, credentials = (header or "").strip().partition(" ")
    if scheme.lower() != SCHEME.lower() or not credentials.strip():
        return None
    # Header text is decoded from bytes with surrogateescape: encode it back the same way.
    try:
        presented = credentials.strip().encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None
    found = None
    for token in tokens:  # compare with every token, so timing tells nothing
        if hmac.compare_digest(presented, token.secret.encode()):
            found = token
    return found


def is_engine(token: ApiToken | None) -> bool:
    """The engine's own token: its requests are signed when ENGINE_WEBHOOK_SECRET is set.
    The scope as configured, not as implied: an admin or viewer token is a person's."""
    return token is not None and Role.ENGINE.value in token.scopes
