"""Learning from blocked trades: what they would have returned, and what that suggests.

`blocked_trade_insights` loads the trades blocked in a window, the parameters each trade's
scope had live when it was blocked, and each symbol's candles once; core.counterfactual
evaluates them in a worker process (the Compute port): a window may hold thousands of trades,
and building their statistics is Python work that would hold up the event loop.

Scope and parameters: the volatility level the configuration maps the symbol to
([optimizer.symbols]), else global; a symbol marked "auto" is global too, since the level
measured from its recent bars says nothing about its level back then. The parameters are the
defaults, overlaid by the global version live at the block time and then by the level's, as
the engine applied them (ConfigStore.live_versions leaves out versions never live).

Market data, at the optimizer's timeframe: one request per symbol, from the bar before its
first trade's entry to the end of its last trade's horizon, or to the last whole bar before
now (as the optimizer's range ends: the data is expected to be current). When that range
cannot be used (a file ending earlier, a gap longer than allowed), the longest usable range
from the same start is found by bisection, a few requests more, so the trades within it are
still evaluated. Every other trade is listed as not evaluated, with the reason: no market
data, none usable after the block, or no bar closed since the block yet.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from core.authz import Action, Actor, require
from core.backtest import Candles, timeframe_seconds, utc_datetime
from core.counterfactual import (
    CounterfactualPolicy,
    Insights,
    InsightsJob,
    NotEvaluated,
    Order,
    SymbolOrders,
    analyse,
)
from core.market import MarketDataError, MarketDataNotFoundError, symbol_key
from core.models import BlockedTrade, ConfigVersion
from core.optimization import optimizer_ports
from core.params import Params, Scope, effective_params
from core.ports import Deps, MarketData, OptimizerPorts

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def blocked_trade_insights(
    deps: Deps, actor: Actor, since: datetime, until: datetime
) -> Insights:
    """What the trades blocked in [since, until) would have done, by reason, symbol, signal
    and confidence, with recommendations (core.counterfactual has the rules)."""
    require(actor, Action.READ)
    ports, policy = optimizer_ports(deps), deps.counterfactual
    blocked = await deps.trades.blocked_trades(since, until, policy.max_trades + 1)
    orders = await _orders(deps, ports, blocked[-policy.max_trades :])
    evaluable: list[SymbolOrders] = []
    not_evaluated: list[NotEvaluated] = []
    now = deps.clock.now()
    for symbol, symbol_orders in _by_symbol(ports, orders).items():
        loaded, skipped = await _with_candles(ports, policy, symbol, symbol_orders, now)
        evaluable += [loaded] if loaded else []
        not_evaluated += skipped
    job = InsightsJob(
        since=since,
        until=until,
        policy=policy,
        costs=ports.policy.cycle.backtest,
        symbols=tuple(evaluable),
        not_evaluated=tuple(sorted(not_evaluated, key=lambda n: (n.trade.timestamp, n.trade.id))),
        truncated=len(blocked) > policy.max_trades,
    )
    if not job.symbols:  # nothing to simulate: no need for a worker
        return analyse(job)
    return await ports.compute.run(analyse, job)


# --- the parameters live at each block ----------------------------------------------------


async def _orders(
    deps: Deps, ports: OptimizerPorts, blocked: Sequence[BlockedTrade]
) -> list[Order]:
    """Each trade with the bracket its scope had live when it was blocked."""
    if not blocked:
        return []
    levels = {
        symbol_key(name): level for name, level in ports.policy.symbols.items() if level is not None
    }
    scopes = {levels.get(symbol_key(trade.symbol), Scope.GLOBAL) for trade in blocked}
    first, last = blocked[0].timestamp, blocked[-1].timestamp
    history = {
        scope: await deps.config.live_versions(scope, first, last)
        for scope in scopes | {Scope.GLOBAL}
    }
    orders = []
    for trade in blocked:
        scope = levels.get(symbol_key(trade.symbol), Scope.GLOBAL)
        layers = [_live_at(history[Scope.GLOBAL], trade.timestamp)]
        if scope is not Scope.GLOBAL:
            layers.append(_live_at(history[scope], trade.timestamp))
        params = effective_params(deps.schema, layers)
        orders.append(
            Order(trade, scope, float(params["stop_loss_pct"]), float(params["take_profit_pct"]))
        )
    return orders


def _live_at(versions: Sequence[ConfigVersion], moment: datetime) -> Params:
    """The parameters of the version live at `moment` (versions oldest first); none: {}."""
    live = bisect.bisect_right(versions, moment, key=lambda version: version.created_at)
    return versions[live - 1].parameters if live else {}


# --- market data -------------------------------------------------------------------------


def _by_symbol(ports: OptimizerPorts, orders: Sequence[Order]) -> Mapping[str, list[Order]]:
    """Orders per symbol (ETH/BTC and ETHBTC are one), named as the configuration names it."""
    configured = {symbol_key(name): name for name in ports.policy.symbols}
    grouped: dict[str, list[Order]] = {}
    for order in orders:
        key = symbol_key(order.trade.symbol)
        grouped.setdefault(configured.get(key, order.trade.symbol), []).append(order)
    return grouped


async def _with_candles(
    ports: OptimizerPorts,
    policy: CounterfactualPolicy,
    symbol: str,
    orders: Sequence[Order],
    now: datetime,
) -> tuple[SymbolOrders | None, list[NotEvaluated]]:
    """The symbol's orders with the candles they need, and those that cannot be evaluated."""
    timeframe = ports.policy.timeframe
    bar = timedelta(seconds=timeframe_seconds(timeframe))
    closed_until = _EPOCH + (now - _EPOCH) // bar * bar  # bars opening before it have closed
    ready, skipped = _entries(orders, timeframe, bar, last_entry=closed_until - bar)
    if not ready:
        return None, skipped
    horizon = bar * policy.horizon_bars(int(bar.total_seconds()))
    start = ready[0][1] - bar  # the signal bar of the first trade (orders are in time order)
    end = min(ready[-1][1] + horizon, closed_until)
    try:
        candles, problem = await _usable_candles(ports.market, symbol, timeframe, start, end)
    except MarketDataError as error:
        return None, skipped + [NotEvaluated(order.trade, str(error)) for order, _ in ready]
    usable_end = utc_datetime(candles.times[-1]) + bar
    beyond = f"no usable {timeframe} bar after the block: {problem}"
    inside = tuple(order for order, entry in ready if entry < usable_end)
    skipped += [NotEvaluated(order.trade, beyond) for order, entry in ready if entry >= usable_end]
    return SymbolOrders(candles, inside), skipped


def _entries(
    orders: Sequence[Order], timeframe: str, bar: timedelta, last_entry: datetime
) -> tuple[list[tuple[Order, datetime]], list[NotEvaluated]]:
    """The orders whose entry bar has closed, with its open time; the others, with why not."""
    ready, skipped = [], []
    for order in orders:
        blocked_at = order.trade.timestamp
        if blocked_at < _EPOCH:
            skipped.append(NotEvaluated(order.trade, "blocked before 1970: no market data"))
        elif blocked_at > last_entry:
            why = f"no {timeframe} bar has closed since the block yet"
            skipped.append(NotEvaluated(order.trade, why))
        else:
            ready.append((order, _next_bar_open(blocked_at, bar)))
    return ready, skipped


def _next_bar_open(moment: datetime, bar: timedelta) -> datetime:
    """The open of the first bar opening at or after `moment`."""
    return _EPOCH - (_EPOCH - moment) // bar * bar


async def _usable_candles(
    market: MarketData, symbol: str, timeframe: str, start: datetime, end: datetime
) -> tuple[Candles, str | None]:
    """The candles of [start, end); when that range cannot be used, those of the longest
    range from `start` that can, with the reason. Raises the range's MarketDataError when
    not even two bars (a signal bar and an entry bar) can be used."""
    try:
        return (await market.candles(symbol, timeframe, start, end)).candles, None
    except MarketDataNotFoundError:
        raise
    except MarketDataError as error:
        problem = error
    bar = timedelta(seconds=timeframe_seconds(timeframe))
    usable, shortest, longest = None, 2, (end - start) // bar - 1
    while shortest <= longest:  # usable ranges are a prefix: the data ends or breaks off
        bars = (shortest + longest) // 2
        try:
            usable = (await market.candles(symbol, timeframe, start, start + bars * bar)).candles
            shortest = bars + 1
        except MarketDataError:
            longest = bars - 1
    if usable is None:
        raise problem
    return usable, str(problem)
