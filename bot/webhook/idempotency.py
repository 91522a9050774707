"""The Idempotency-Key request header: a POST retried with the same key runs once.

The first request with a key claims it (committed before the handler runs), and its answer
is kept when it is final: any status below 500, a use case's refusal included. A retry with
the same key and the same request (method, path, body) gets that answer again, marked
`Idempotent-Replayed: true`, and nothing runs again. A 5xx answer or a crash frees the key,
so the retry runs. The same key with a different request is refused (422), and so is a
retry while the first request still runs (409). Keys belong to the calling token and
expire 24 hours after their first use; a request abandoned in progress (its process
stopped) frees its key for the same request after 5 minutes (storage.idempotency).

Every POST accepts the header except the engine's event reports (/blocked-trades,
/trades), which are idempotent by their own event_id and trade_id. Other methods ignore it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from bot.webhook import engine_routes
from bot.webhook.routing import RUNTIME, ApiError, Call, Route, loggable
from core.ports import KeyHolder, RequestFingerprint, StoredResponse

log = logging.getLogger(__name__)
Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
NATURALLY_IDEMPOTENT = (engine_routes.post_blocked_trades, engine_routes.post_trades)

# For the OpenAPI document: the parameter of each operation where `accepts_key(route)`.
OPENAPI_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe: the first request with a key runs; a retry with the same key "
        "and the same method, path and body gets the first answer again (with the header "
        "Idempotent-Replayed: true) and runs nothing. The same key with a different request "
        "is refused with 422, and a retry while the first still runs with 409. An answer "
        "of 500 or more is not kept: the retry runs. Keys are per token and expire after "
        "24 hours."
    ),
    "schema": {"type": "string", "pattern": f"^[ -~]{{1,{MAX_KEY_LENGTH}}}$"},
}
# For the OpenAPI document: on the 2xx answers of those operations.
OPENAPI_REPLAYED_HEADER = {
    REPLAYED_HEADER: {
        "description": "true: the kept answer of an earlier request with this Idempotency-Key",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


@dataclass(frozen=True)
class Claim:
    client: str
    key: str


CLAIM = web.RequestKey("idempotency_claim", Claim)


def accepts_key(route: Route) -> bool:
    return route.method == "POST" and route.handler not in NATURALLY_IDEMPOTENT


def guarded(route: Route) -> Route:
    """The route, its handler run once per Idempotency-Key (when it accepts one)."""
    if not accepts_key(route):
        return route
    handler = route.handler

    async def once(call: Call) -> web.StreamResponse:
        key = _key(call.request)
        if key is None:
            return await handler(call)
        raw = await call.request.read() if route.body else b""  # read and kept by the wrapper
        fingerprint = RequestFingerprint(
            call.request.method, call.request.path, hashlib.sha256(raw).hexdigest()
        )
        now = call.runtime.deps.clock.now()
        holder = await call.runtime.idempotency.claim(call.actor.id, key, fingerprint, now)
        if holder is not None:
            return _replay(holder, fingerprint)
        call.request[CLAIM] = Claim(call.actor.id, key)
        return await handler(call)

    return dataclasses.replace(route, handler=once)


def _key(request: web.Request) -> str | None:
    values = request.headers.getall(HEADER, [])
    if not values:
        return None
    key = values[0]
    if len(values) > 1:
        problem = "must be sent once"
    elif not 1 <= len(key) <= MAX_KEY_LENGTH:
        problem = f"must be 1 to {MAX_KEY_LENGTH} characters long, not {len(key)}"
    elif not (key.isascii() and key.isprintable()):
        problem = "must be printable ASCII characters only"
    else:
        return key
    raise ApiError(422, f"invalid {HEADER} header", [{"field": HEADER, "problem": problem}])


def _replay(holder: KeyHolder, fingerprint: RequestFingerprint) -> web.Response:
    if holder.fingerprint != fingerprint:
        earlier = holder.fingerprint
        same_target = (earlier.method, earlier.path) == (fingerprint.method, fingerprint.path)
        what = "with another body" if same_target else f"for {earlier.method} {earlier.path}"
        problem = f"was already used {what}; send a new key for a new request"
        raise ApiError(
            422, f"{HEADER} reused for a different request", [{"field": HEADER, "problem": problem}]
        )
    if holder.response is None:
        raise ApiError(
            409,
            f"the first request with this {HEADER} (received {holder.claimed_at:%H:%M:%S} UTC) "
            "is still in progress; retry once it has finished",
        )
    return web.Response(
        text=holder.response.body,
        status=holder.response.status,
        content_type="application/json",
        headers={REPLAYED_HEADER: "true"},
    )


@web.middleware
async def settle(request: web.Request, handler: Endpoint) -> web.StreamResponse:
    """Keep the answer of a request that claimed a key, or free the key when it failed.
    It goes outside the error middleware, to keep refusals as the client got them."""
    try:
        response = await handler(request)
    except BaseException:
        await _release(request)
        raise
    claim = request.get(CLAIM)
    if claim is None:
        return response
    body = _json_text(response)
    if response.status >= 500 or body is None:
        await _release(request)
        return response
    stored = StoredResponse(response.status, body)
    try:
        await request.app[RUNTIME].idempotency.complete(claim.client, claim.key, stored)
    except Exception:  # the client still gets its answer; a retry finds the key in progress
        log.warning("could not keep the answer of %s", loggable(request), exc_info=True)
    return response


def _json_text(response: web.StreamResponse) -> str | None:
    """The body of a JSON answer (every POST route's); None for anything else."""
    if not isinstance(response, web.Response) or response.content_type != "application/json":
        return None
    return response.body.decode() if isinstance(response.body, bytes) else None


async def _release(request: web.Request) -> None:
    claim = request.get(CLAIM)
    if claim is None:
        return
    try:
        await request.app[RUNTIME].idempotency.release(claim.client, claim.key)
    except Exception:  # freed when it counts as abandoned (storage.idempotency)
        log.warning("could not free the key of %s", loggable(request), exc_info=True)
