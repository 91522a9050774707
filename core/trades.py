"""Engine events and overrides: blocked trades, closed trades, override decisions.

Use cases for the engine webhook and for people (Slack buttons, /param override).
Alerts and engine pushes are not sent from here: the store writes them to an outbox in
the same transaction as the event, so an acknowledged event never loses its alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from core import optimization
from core.authz import Action, Actor, require
from core.errors import ConflictError, NotFoundError, UserError, ValidationError
from core.models import (
    AuditEntry,
    BlockedStats,
    BlockedTradeEvent,
    ClosedTradeEvent,
    Ingested,
    NewOverride,
    Outcome,
    Override,
    OverrideStatus,
    Side,
)
from core.ports import Deps

# --- use cases ---------------------------------------------------------------------


async def ingest_blocked_trades(
    deps: Deps, actor: Actor, events: Sequence[BlockedTradeEvent]
) -> list[Ingested]:
    require(actor, Action.INGEST)
    return await deps.trades.add_blocked_trades(events, deps.clock.now())


async def ingest_trades(
    deps: Deps, actor: Actor, events: Sequence[ClosedTradeEvent]
) -> list[Ingested]:
    require(actor, Action.INGEST)
    for event in events:
        if event.exit_time < event.entry_time:
            raise ValidationError(f"trade {event.trade_id}: exit_time is before entry_time")
    events = await optimization.with_volatility_levels(deps, events)
    results = await deps.trades.add_trades(events, deps.clock.now())
    if any(result.created for result in results):
        await optimization.start_due_runs(deps)  # the trade-count trigger
    return results


async def blocked_trade_stats(
    deps: Deps,
    actor: Actor,
    since: datetime,
    until: datetime,
    limit: int = 50,
    offset: int = 0,
) -> BlockedStats:
    require(actor, Action.READ)
    if since >= until:  # an empty window holds nothing
        return BlockedStats(total=0, by_reason={}, by_symbol={}, by_signal={}, recent=[])
    return await deps.trades.blocked_stats(since, until, limit, offset)


async def active_overrides(
    deps: Deps, actor: Actor, symbol: str | None, side: Side | None
) -> list[Override]:
    require(actor, Action.READ_LIVE)
    return await deps.trades.active_overrides(symbol, side, deps.clock.now())


async def consume_override(deps: Deps, actor: Actor, override_id: int) -> Override:
    """The engine uses an override up, exactly once even under concurrent calls."""
    require(actor, Action.INGEST)
    now = deps.clock.now()
    consumed = await deps.trades.consume_override(override_id, now)
    if consumed is not None:
        return consumed
    existing = await deps.trades.override(override_id)
    if existing is None:
        raise NotFoundError(f"no override {override_id}")
    raise ConflictError(f"override {override_id} {_why_unusable(existing, now)}")


def _why_unusable(override: Override, now: datetime) -> str:
    if override.status is OverrideStatus.CONSUMED:
        return f"was already used at {override.consumed_at:%H:%M:%S} UTC"
    if override.status is OverrideStatus.DENIED:
        return "was denied"
    return f"expired at {override.expires_at:%H:%M:%S} UTC"


async def grant_override(
    deps: Deps,
    actor: Actor,
    symbol: str,
    side: Side,
    reason: str,
) -> Override:
    """`/param override SYMBOL SIDE REASON`: an approved override without an alert."""
    try:
        return await _grant(deps, actor, symbol, side, reason)
    except UserError as error:
        await _audit_refusal(deps, actor, "override", symbol, reason, error)
        raise


async def _grant(deps: Deps, actor: Actor, symbol: str, side: Side, reason: str) -> Override:
    require(actor, Action.OVERRIDE)
    now = deps.clock.now()
    symbol = _symbol(symbol)
    if not reason.strip():
        raise ValidationError("a reason is required: say why the risk block should be overridden")
    new = NewOverride(
        symbol=symbol,
        side=side,
        reason=reason.strip(),
        status=OverrideStatus.APPROVED,
        requested_by=actor.id,
        decided_by=actor.id,
        created_at=now,
        expires_at=now + deps.policy.override_ttl,
    )
    return await deps.trades.add_override(new, _audit(actor, "override", symbol, now, reason))


async def decide_blocked_trade(
    deps: Deps,
    actor: Actor,
    blocked_trade_id: int,
    approve: bool,
    reason: str = "",
) -> Override:
    """Approve or deny the override a blocked-trade alert asks for; never twice."""
    try:
        return await _decide(deps, actor, blocked_trade_id, approve, reason)
    except UserError as error:
        verb = "approve" if approve else "deny"
        target = f"blocked_trade:{blocked_trade_id}"
        await _audit_refusal(deps, actor, f"override.{verb}", target, reason, error)
        raise


async def _decide(
    deps: Deps, actor: Actor, blocked_trade_id: int, approve: bool, reason: str
) -> Override:
    require(actor, Action.OVERRIDE)
    now = deps.clock.now()
    trade = await deps.trades.blocked_trade(blocked_trade_id)
    if trade is None:
        raise NotFoundError(f"no blocked trade {blocked_trade_id}")
    earlier = await deps.trades.override_for_blocked_trade(blocked_trade_id)
    if earlier is not None:
        raise ConflictError(_already_decided(earlier))
    received = trade.received_at or trade.timestamp
    expiry = received + deps.policy.alert_ttl
    if now >= expiry:
        raise ConflictError(f"this alert expired at {expiry:%H:%M} UTC; nothing was changed")
    verb = "approved" if approve else "denied"
    new = NewOverride(
        symbol=trade.symbol,
        side=trade.signal,
        reason=reason.strip() or f"{verb} from the alert for {trade.block_reason}",
        status=OverrideStatus.APPROVED if approve else OverrideStatus.DENIED,
        requested_by=actor.id,
        decided_by=actor.id,
        created_at=now,
        expires_at=now + deps.policy.override_ttl if approve else None,
        blocked_trade_id=blocked_trade_id,
    )
    audit = _audit(actor, f"override.{verb}", f"blocked_trade:{blocked_trade_id}", now, reason)
    return await deps.trades.add_override(new, audit)


def _already_decided(override: Override) -> str:
    verb = "denied" if override.status is OverrideStatus.DENIED else "approved"
    at = f"{override.decided_at:%H:%M} UTC" if override.decided_at else "earlier"
    return f"already {verb} by <@{override.decided_by}> at {at}; nothing was changed"


def _symbol(text: str) -> str:
    symbol = text.strip().upper()
    if not symbol or len(symbol) > 32 or not all(c.isalnum() or c in "/-_." for c in symbol):
        raise ValidationError(f"'{text}' is not a symbol (letters, digits and / - _ . only)")
    return symbol


def _audit(
    actor: Actor,
    action: str,
    target: str,
    now: datetime,
    reason: str,
    outcome: Outcome = Outcome.APPLIED,
    error: str | None = None,
) -> AuditEntry:
    detail = {"reason": reason} if error is None else {"reason": reason, "error": error}
    return AuditEntry(
        at=now,
        actor=actor.id,
        source=actor.source,
        action=action,
        target=target,
        outcome=outcome,
        detail=detail,
    )


async def _audit_refusal(
    deps: Deps, actor: Actor, action: str, target: str, reason: str, error: UserError
) -> None:
    entry = _audit(actor, action, target, deps.clock.now(), reason, Outcome.REFUSED, str(error))
    await deps.audit.record(entry)
