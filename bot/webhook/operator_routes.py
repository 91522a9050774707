"""The operators' side of the API: the spec's parameter-optimizer endpoints."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field

from bot.webhook import schemas as s
from bot.webhook.blocked_schemas import CounterfactualOut, counterfactual_out
from bot.webhook.routing import NO_CONTROL_CHARACTERS, Call, Route, invalid, json_response
from core import blocked_insights, services, trades
from core.authz import Action
from core.models import BackupRecord, ParamChangeRecord
from core.params import Scope
from core.services import ChangeResult

_WINDOW = re.compile(r"^(\d{1,4})([hdw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_window(text: str) -> timedelta:
    """'24h', '7d', '2w' -> a timedelta (also used by /param blocked)."""
    match = _WINDOW.match(text.strip())
    if not match or int(match[1]) == 0:
        raise ValueError("window must look like 24h, 7d or 2w")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


class BlockedStatsQuery(BaseModel):
    window: str = Field(
        default="24h",
        pattern=r"^[1-9][0-9]{0,3}[hdw]$",
        description="Length ending now or at `until`: 24h, 7d, 2w",
    )
    since: s.IsoDateTime | None = None
    until: s.IsoDateTime | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class ScopeQuery(BaseModel):
    scope: s.ScopeName | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 50


class ChangesQuery(BaseModel):
    scope: s.ScopeName = "global"
    parameter: Annotated[str, Field(max_length=64, pattern=NO_CONTROL_CHARACTERS)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 50


async def get_blocked_trades(call: Call) -> web.Response:
    query: BlockedStatsQuery = call.query
    until = query.until or call.runtime.deps.clock.now()
    since = query.since or _window_before(until, query.window)
    if since > until:
        raise invalid("since", f"must not be later than until ({until.isoformat()})")
    stats = await trades.blocked_trade_stats(
        call.runtime.deps, call.actor, since, until, query.limit, query.offset
    )
    out = s.BlockedStatsOut(
        since=since,
        until=until,
        total=stats.total,
        by_reason=stats.by_reason,
        by_symbol=stats.by_symbol,
        by_signal=stats.by_signal,
        items=[s.BlockedTradeOut.model_validate(t) for t in stats.recent],
        limit=query.limit,
        offset=query.offset,
        counterfactual=await _counterfactual(call, since, until),
    )
    return json_response(out.model_dump(mode="json"))


def _window_before(until: datetime, window: str) -> datetime:
    try:
        return until - parse_window(window)
    except OverflowError:  # 0001-01-01 minus a day
        raise invalid(
            "until",
            f"the window ({window}) ending at until ({until.isoformat()}) would start before "
            "the year 1; send a later until or a shorter window",
        ) from None


async def _counterfactual(call: Call, since: datetime, until: datetime) -> CounterfactualOut | None:
    """What the window's blocked trades would have done; needs market data."""
    deps = call.runtime.deps
    if deps.optimizer is None:
        return None
    insights = await blocked_insights.blocked_trade_insights(deps, call.actor, since, until)
    return counterfactual_out(insights)


async def post_backup(call: Call) -> web.Response:
    body: s.BackupIn = call.body
    backup = await services.create_backup(
        call.runtime.deps, call.actor, Scope(body.scope), body.reason
    )
    return json_response(_backup_out(backup).model_dump(mode="json"), status=201)


async def get_backups(call: Call) -> web.Response:
    scope = Scope(call.query.scope) if call.query.scope else None
    backups = await services.list_backups(call.runtime.deps, call.actor, scope, call.query.limit)
    out = s.BackupsOut(backups=[_backup_out(b) for b in backups])
    return json_response(out.model_dump(mode="json"))


def _backup_out(backup: BackupRecord) -> s.BackupOut:
    return s.BackupOut(
        id=backup.backup_id,
        scope=backup.scope.value,
        version=backup.version,
        path=backup.path,
        created_at=backup.created_at,
        actor=backup.actor,
        reason=backup.reason,
        parameters=backup.parameters,
    )


async def restore_backup(call: Call) -> web.Response:
    body: s.RestoreIn = call.body
    result = await services.restore_backup(
        call.runtime.deps, call.actor, call.path["id"], body.reason, body.based_on
    )
    return change_response(call, result)


async def set_parameter(call: Call) -> web.Response:
    body: s.SetParameterIn = call.body
    result = await services.set_parameter(
        call.runtime.deps,
        call.actor,
        Scope(body.scope),
        call.path["name"],
        body.value,
        body.reason,
        body.based_on,
    )
    return change_response(call, result)


def change_response(call: Call, result: ChangeResult) -> web.Response:
    if result.version is not None:
        call.runtime.wake_dispatchers()
    out = s.ChangeOut(
        scope=result.scope.value,
        outcome="applied" if result.backup else "unchanged",
        version=result.version.version if result.version else result.based_on,
        based_on=result.based_on,
        changes=[{"parameter": c.parameter, "old": c.old, "new": c.new} for c in result.changes],
        backup_id=result.backup.backup_id if result.backup else None,
    )
    return json_response(out.model_dump(mode="json"), status=200)


async def get_parameter_changes(call: Call) -> web.Response:
    query: ChangesQuery = call.query
    records = await services.parameter_history(
        call.runtime.deps, call.actor, Scope(query.scope), query.parameter, query.limit
    )
    out = s.ParameterChangesOut(changes=[_change_out(r) for r in records])
    return json_response(out.model_dump(mode="json"))


def _change_out(record: ParamChangeRecord) -> s.ParameterChangeOut:
    return s.ParameterChangeOut(
        scope=record.scope.value,
        parameter=record.parameter,
        old_value=record.old,
        new_value=record.new,
        actor=record.actor,
        source=record.source.value,
        reason=record.reason,
        from_version=record.from_version,
        to_version=record.to_version,
        created_at=record.created_at,
    )


ROUTES = [
    Route(
        "GET",
        "/blocked-trades",
        get_blocked_trades,
        "Blocked-trade statistics over a window: counts by reason, symbol and signal, "
        "the most recent items (paginated), and what the trades would have done had they "
        "been executed, with recommendations",
        Action.READ,
        "operators",
        {200: s.BlockedStatsOut},
        query=BlockedStatsQuery,
    ),
    Route(
        "POST",
        "/backup-configuration",
        post_backup,
        "Back up a scope's active configuration now",
        Action.BACKUP,
        "operators",
        {201: s.BackupOut},
        body=(s.BackupIn,),
    ),
    Route(
        "GET",
        "/configuration-backups",
        get_backups,
        "Configuration backups, newest first",
        Action.READ,
        "operators",
        {200: s.BackupsOut},
        query=ScopeQuery,
    ),
    Route(
        "POST",
        "/configuration-backups/{id}/restore",
        restore_backup,
        "Make a backed-up configuration active again (as a new version)",
        Action.RESTORE,
        "operators",
        {200: s.ChangeOut},
        body=(s.RestoreIn,),
        path_params={"id": str},
    ),
    Route(
        "GET",
        "/parameter-changes",
        get_parameter_changes,
        "Parameter changes, newest first",
        Action.READ,
        "operators",
        {200: s.ParameterChangesOut},
        query=ChangesQuery,
    ),
    Route(
        "POST",
        "/parameters/{name}",
        set_parameter,
        "Change one parameter (backed up first; refused when based_on is stale)",
        Action.SET,
        "operators",
        {200: s.ChangeOut},
        body=(s.SetParameterIn,),
        path_params={"name": str},
    ),
]
