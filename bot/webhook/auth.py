"""Bearer tokens with scopes, compared in constant time; replayed signatures refused."""

from __future__ import annotations

import hmac
from collections import OrderedDict

from bot.config import ApiToken


def authenticate(header: str | None, tokens: tuple[ApiToken, ...]) -> ApiToken | None:
    if not header or not header.startswith("Bearer "):
        return None
    presented = header.removeprefix("Bearer ").strip().encode()
    found = None
    for token in tokens:  # compare with every token, so timing tells nothing
        if hmac.compare_digest(presented, token.secret.encode()):
            found = token
    return found


class ReplayGuard:
    """Remembers signatures seen within the 5-minute validity window of a timestamp."""

    def __init__(self, window_seconds: float = 300, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._window = window_seconds
        self._capacity = capacity

    def first_use(self, signature: str, now: float) -> bool:
        while self._seen and (
            next(iter(self._seen.values())) < now - 2 * self._window
            or len(self._seen) > self._capacity
        ):
            self._seen.popitem(last=False)
        if signature in self._seen:
            return False
        self._seen[signature] = now
        return True
