"""The engine reports OHLCV candles: the optimizer backtests on them when no market data
file holds the symbol (see storage.market_source)."""

from __future__ import annotations

from aiohttp import web

from bot.webhook import learning_schemas as ls
from bot.webhook.routing import Call, Route, json_response
from core import optimization
from core.authz import Action
from core.market import Bar


async def post_candles(call: Call) -> web.Response:
    """201 when any bar was new; 200 when every bar was already stored."""
    body: ls.CandlesIn = call.body
    bars = [Bar(c.time, c.open, c.high, c.low, c.close, c.volume) for c in body.candles]
    created = await optimization.ingest_candles(
        call.runtime.deps, call.actor, body.symbol, body.timeframe, bars
    )
    out = ls.CandlesOut(
        symbol=body.symbol,
        timeframe=body.timeframe,
        created=created,
        duplicates=len(bars) - created,
    )
    return json_response(out.model_dump(mode="json"), status=201 if created else 200)


ROUTES = [
    Route(
        "POST",
        "/candles",
        post_candles,
        f"Report up to {ls.MAX_CANDLES:,} OHLCV bars of one symbol and timeframe; idempotent "
        "by symbol, timeframe and time (a bar already stored is kept as it was)",
        Action.INGEST,
        "engine",
        {201: ls.CandlesOut, 200: ls.CandlesOut},
        body=(ls.CandlesIn,),
        signed=True,
    ),
]
