"""Learning sessions and the trades they analyse; implements core.ports.LearningStore.

Each start and end also queues an announcement in the outbox, in the same transaction, so a
session the timer ended (even at start-up after a crash) is announced like one a person ended.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import ConflictError
from core.learning_model import (
    LearningSession,
    NewLearningSession,
    Recommendation,
    Recommendations,
    SessionAnalysis,
    SessionEnd,
    SessionStatus,
    TradeFigures,
    Verdict,
)
from core.models import AuditEntry, ClosedTradeEvent, Side
from core.params import Params, Scope
from storage.config_store import audit_row
from storage.outbox import enqueue
from storage.tables import LearningSessionRow, TradeRow

# One topic for both events: the outbox keeps order within a topic, so a session's end is
# never announced before its start.
ANNOUNCE_TOPIC = "slack.learning"
_ENDED = (SessionStatus.COMPLETED.value, SessionStatus.STOPPED.value)


class SqlLearningStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def active(self) -> LearningSession | None:
        return await self._first(
            select(LearningSessionRow).where(
                LearningSessionRow.status == SessionStatus.ACTIVE.value
            )
        )

    async def last_ended(self) -> LearningSession | None:
        return await self._first(
            select(LearningSessionRow)
            .where(LearningSessionRow.status.in_(_ENDED))
            .order_by(LearningSessionRow.ended_at.desc())
            .limit(1)
        )

    async def get(self, session_id: int) -> LearningSession | None:
        return await self._first(
            select(LearningSessionRow).where(LearningSessionRow.id == session_id)
        )

    async def history(self, limit: int) -> list[LearningSession]:
        query = select(LearningSessionRow).order_by(LearningSessionRow.id.desc()).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [_session(row) for row in rows]

    async def create(self, new: NewLearningSession, audit: AuditEntry) -> LearningSession:
        row = LearningSessionRow(
            status=SessionStatus.ACTIVE.value,
            started_by=new.started_by,
            reason=new.reason,
            started_at=new.started_at,
            planned_end_at=new.planned_end_at,
            original_params=_by_scope_json(new.original),
            relaxed_params=_by_scope_json(new.relaxed),
        )
        try:
            async with self._sessions.begin() as session:
                session.add(row)
                await session.flush()
                session.add(audit_row(audit, {"session": row.id}))
                enqueue(
                    session,
                    ANNOUNCE_TOPIC,
                    {"session_id": row.id, "event": "started"},
                    new.started_at,
                )
        except IntegrityError:
            # The partial unique index: another session became ACTIVE first.
            raise ConflictError("another learning session is already running") from None
        return _session(row)

    async def finish(
        self, session_id: int, end: SessionEnd, audit: AuditEntry
    ) -> LearningSession | None:
        statement = (
            update(LearningSessionRow)
            .where(
                LearningSessionRow.id == session_id,
                LearningSessionRow.status == SessionStatus.ACTIVE.value,
            )
            .values(
                status=end.status.value,
                ended_at=end.ended_at,
                ended_by=end.ended_by,
                end_reason=end.reason,
                analysis=_analysis_json(end.analysis) if end.analysis else None,
                recommendations=(
                    _recommendations_json(end.recommendations) if end.recommendations else None
                ),
            )
            .returning(LearningSessionRow)
        )
        async with self._sessions.begin() as session:
            row = (await session.execute(statement)).scalar_one_or_none()
            if row is not None:
                session.add(audit_row(audit))
                enqueue(
                    session, ANNOUNCE_TOPIC, {"session_id": row.id, "event": "ended"}, end.ended_at
                )
        return _session(row) if row else None

    async def session_trades(self, session_id: int) -> list[ClosedTradeEvent]:
        return await self._trades(
            select(TradeRow).where(TradeRow.learning_session_id == session_id)
        )

    async def untagged_trades(self, since: datetime, until: datetime) -> list[ClosedTradeEvent]:
        return await self._trades(
            select(TradeRow).where(
                TradeRow.learning_session_id.is_(None),
                TradeRow.exit_time >= since,
                TradeRow.exit_time < until,
            )
        )

    async def closed_trades(self, since: datetime, until: datetime) -> list[ClosedTradeEvent]:
        return await self._trades(
            select(TradeRow).where(TradeRow.exit_time >= since, TradeRow.exit_time < until)
        )

    async def sessions_between(self, since: datetime, until: datetime) -> list[LearningSession]:
        query = (
            select(LearningSessionRow)
            .where(
                LearningSessionRow.started_at < until,
                LearningSessionRow.ended_at.is_(None) | (LearningSessionRow.ended_at >= since),
            )
            .order_by(LearningSessionRow.started_at, LearningSessionRow.id)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [_session(row) for row in rows]

    async def _first(self, query: Select[LearningSessionRow]) -> LearningSession | None:
        async with self._sessions() as session:
            row = (await session.execute(query)).scalars().first()
        return _session(row) if row else None

    async def _trades(self, query: Select[TradeRow]) -> list[ClosedTradeEvent]:
        async with self._sessions() as session:
            rows = (
                (await session.execute(query.order_by(TradeRow.exit_time, TradeRow.id)))
                .scalars()
                .all()
            )
        return [closed_trade_from_row(row) for row in rows]


# --- rows <-> records --------------------------------------------------------------


def _session(row: LearningSessionRow) -> LearningSession:
    return LearningSession(
        id=row.id,
        status=SessionStatus(row.status),
        started_by=row.started_by,
        reason=row.reason,
        started_at=row.started_at,
        planned_end_at=row.planned_end_at,
        original=_by_scope(row.original_params),
        relaxed=_by_scope(row.relaxed_params),
        ended_at=row.ended_at,
        ended_by=row.ended_by,
        end_reason=row.end_reason,
        analysis=_analysis(row.analysis) if row.analysis else None,
        recommendations=_recommendations(row.recommendations) if row.recommendations else None,
    )


def _by_scope_json(values: Mapping[Scope, Params]) -> dict[str, Any]:
    # [name, value] pairs: JSONB does not keep the order of keys, announcements want it.
    return {
        scope.value: [[name, value] for name, value in params.items()]
        for scope, params in values.items()
    }


def _by_scope(raw: Mapping[str, Any]) -> dict[Scope, Params]:
    return {Scope(scope): dict(pairs) for scope, pairs in raw.items()}


def _analysis_json(analysis: SessionAnalysis) -> dict[str, Any]:
    return {
        "session": dataclasses.asdict(analysis.session),
        "baseline": dataclasses.asdict(analysis.baseline),
        "baseline_since": analysis.baseline_since.isoformat(),
        "baseline_until": analysis.baseline_until.isoformat(),
    }


def _analysis(raw: Mapping[str, Any]) -> SessionAnalysis:
    return SessionAnalysis(
        session=TradeFigures(**raw["session"]),
        baseline=TradeFigures(**raw["baseline"]),
        baseline_since=datetime.fromisoformat(raw["baseline_since"]),
        baseline_until=datetime.fromisoformat(raw["baseline_until"]),
    )


def _recommendations_json(advice: Recommendations) -> dict[str, Any]:
    items = [
        {**dataclasses.asdict(item), "scope": item.scope.value, "verdict": item.verdict.value}
        for item in advice.items
    ]
    return {"minimum_trades": advice.minimum_trades, "items": items, "withheld": advice.withheld}


def _recommendations(raw: Mapping[str, Any]) -> Recommendations:
    items = tuple(
        Recommendation(
            **{**item, "scope": Scope(item["scope"]), "verdict": Verdict(item["verdict"])}
        )
        for item in raw["items"]
    )
    return Recommendations(raw["minimum_trades"], items, raw["withheld"])


def closed_trade_from_row(row: TradeRow) -> ClosedTradeEvent:
    return ClosedTradeEvent(
        trade_id=row.trade_id,
        symbol=row.symbol,
        side=Side(row.side),
        entry_time=row.entry_time,
        exit_time=row.exit_time,
        entry_price=row.entry_price,
        exit_price=row.exit_price,
        quantity=row.quantity,
        pnl=row.pnl,
        pnl_pct=row.pnl_pct,
        volatility_level=Scope(row.volatility_level) if row.volatility_level else None,
        config_version=row.config_version,
    )
