"""The engine's side of the API: report events, read parameters and overrides."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from bot.engine_parameters import engine_parameters
from bot.metrics import EVENTS_INGESTED
from bot.webhook import schemas as s
from bot.webhook.routing import Call, Route, json_response
from core import trades
from core.authz import Action
from core.models import Ingested, Override, Side
from core.params import Scope


class ParametersQuery(BaseModel):
    scope: s.ScopeName = "global"


class OverridesQuery(BaseModel):
    symbol: s.Symbol | None = None
    side: Literal["BUY", "SELL"] | None = None


async def post_blocked_trades(call: Call) -> web.Response:
    events = [e.to_event() for e in _events(call.body)]
    results = await trades.ingest_blocked_trades(call.runtime.deps, call.actor, events)
    return _ingest_response(call, "blocked_trade", results)


async def post_trades(call: Call) -> web.Response:
    events = [e.to_event() for e in _events(call.body)]
    results = await trades.ingest_trades(call.runtime.deps, call.actor, events)
    return _ingest_response(call, "trade", results)


def _events(body: Any) -> list[Any]:
    """A batch `{"events": [...]}` or a single event, as a list."""
    return (
        list(body.events) if isinstance(body, s.BlockedTradeBatch | s.ClosedTradeBatch) else [body]
    )


def _ingest_response(call: Call, kind: str, results: list[Ingested]) -> web.Response:
    """201 when anything new was stored; 200 when every key was already known."""
    created = sum(r.created for r in results)
    EVENTS_INGESTED.labels(kind).inc(created)
    if created:
        call.runtime.wake_dispatchers()
    out = s.IngestOut(
        results=[s.IngestedOut(key=r.key, id=r.id, created=r.created) for r in results],
        created=created,
        duplicates=len(results) - created,
    )
    return json_response(out.model_dump(mode="json"), status=201 if created else 200)


async def get_parameters(call: Call) -> web.StreamResponse:
    # The same values, version and ETag as a push to the engine carries (bot.engine_push).
    current = await engine_parameters(call.runtime.deps, Scope(call.query.scope))
    if current.etag in _if_none_match(call.request):
        return web.Response(status=304, headers={"ETag": current.etag})
    out = s.ParametersOut(**current.as_json())
    return json_response(out.model_dump(mode="json"), headers={"ETag": current.etag})


def _if_none_match(request: web.Request) -> set[str]:
    header = request.headers.get("If-None-Match", "")
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


async def get_overrides(call: Call) -> web.Response:
    side = Side(call.query.side) if call.query.side else None
    found = await trades.active_overrides(call.runtime.deps, call.actor, call.query.symbol, side)
    out = s.OverridesOut(overrides=[override_out(o) for o in found])
    return json_response(out.model_dump(mode="json"))


async def consume_override(call: Call) -> web.Response:
    consumed = await trades.consume_override(call.runtime.deps, call.actor, call.path["id"])
    return json_response(override_out(consumed).model_dump(mode="json"))


def override_out(override: Override) -> s.OverrideOut:
    return s.OverrideOut(
        id=override.id,
        symbol=override.symbol,
        side=override.side.value,
        reason=override.reason,
        status=override.status.value,
        approved_by=override.decided_by,
        blocked_trade_id=override.blocked_trade_id,
        created_at=override.created_at,
        expires_at=override.expires_at,
        consumed_at=override.consumed_at,
    )


ROUTES = [
    Route(
        "POST",
        "/blocked-trades",
        post_blocked_trades,
        'Report one blocked trade, or a batch {"events": [...]} of up to 1,000',
        Action.INGEST,
        "engine",
        {201: s.IngestOut, 200: s.IngestOut},
        body=(s.BlockedTradeIn, s.BlockedTradeBatch),
        signed=True,
    ),
    Route(
        "POST",
        "/trades",
        post_trades,
        'Report one closed trade, or a batch {"events": [...]} of up to 1,000',
        Action.INGEST,
        "engine",
        {201: s.IngestOut, 200: s.IngestOut},
        body=(s.ClosedTradeIn, s.ClosedTradeBatch),
        signed=True,
    ),
    Route(
        "GET",
        "/parameters",
        get_parameters,
        "The parameters the engine must use now (a running learning session included)",
        Action.READ_LIVE,
        "engine",
        {200: s.ParametersOut, 304: None},
        query=ParametersQuery,
        signed=True,
    ),
    Route(
        "GET",
        "/overrides",
        get_overrides,
        "Active, unexpired, unconsumed overrides",
        Action.READ_LIVE,
        "engine",
        {200: s.OverridesOut},
        query=OverridesQuery,
        signed=True,
    ),
    Route(
        "POST",
        "/overrides/{id}/consume",
        consume_override,
        "Use an override up; exactly one concurrent caller succeeds",
        Action.INGEST,
        "engine",
        {200: s.OverrideOut},
        path_params={"id": int},
        signed=True,
    ),
]
