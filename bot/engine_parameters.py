"""What the engine must use now in a scope: the answer of GET /parameters?scope=S, and what
a push to the engine's callback URL carries for each scope a change affected.

Shared by bot.webhook.engine_routes and bot.engine_push so that both say the same thing
(values, version and ETag), and neither imports the other.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from core import services
from core.params import Params, Scope
from core.ports import Deps


@dataclass(frozen=True)
class EngineParameters:
    scope: Scope
    version: int  # the scope's active version (0: none yet)
    parameters: Params  # effective values: the scope's own over global's over the defaults
    etag: str

    def as_json(self) -> dict[str, Any]:
        """The body of GET /parameters?scope=S."""
        return {
            "scope": self.scope.value,
            "version": self.version,
            "parameters": dict(self.parameters),
            "etag": self.etag,
        }


async def engine_parameters(deps: Deps, scope: Scope) -> EngineParameters:
    params, version = await services.effective_parameters(deps, scope)
    return EngineParameters(scope, version, params, parameters_etag(scope, version, params))


def parameters_etag(scope: Scope, version: int, params: Params) -> str:
    """Changes when any effective value changes, inherited ones included."""
    digest = hashlib.sha256(
        json.dumps([scope.value, version, params], sort_keys=True).encode()
    ).hexdigest()
    return f'"{digest[:32]}"'


def affected_scopes(changed: Scope) -> list[Scope]:
    """The scopes whose effective values a change to `changed` can alter: a level inherits
    from global whatever it does not set itself, so a global change affects every level."""
    return list(Scope) if changed is Scope.GLOBAL else [changed]
