"""The spec's learning-session endpoints, over core.learning's use cases."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bot.webhook import schemas as s
from bot.webhook.routing import Call, Route, json_response
from core import learning
from core.authz import Action


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read from core's dataclasses


class FiguresOut(Out):
    trades: int
    wins: int
    losses: int
    win_rate: float | None = Field(description="Percent; null without trades")
    total_pnl: float
    average_pnl: float | None
    max_profit: float | None
    max_loss: float | None
    profit_factor: float | None = Field(description="Null without a losing trade")


class AnalysisOut(Out):
    session: FiguresOut
    baseline: FiguresOut = Field(description="An equal window just before the session")
    baseline_since: datetime
    baseline_until: datetime


class RecommendationOut(Out):
    scope: str
    parameter: str
    verdict: str = Field(description="keep, keep partly or revert")
    original: float
    relaxed: float
    suggested: float
    confidence: float
    evidence: str


class RecommendationsOut(Out):
    minimum_trades: int
    items: list[RecommendationOut]
    withheld: str | None = Field(description="Why there are none, e.g. too few trades")


class SessionOut(Out):
    id: int
    status: str
    started_by: str
    reason: str
    started_at: datetime
    planned_end_at: datetime
    original: dict[str, dict[str, float]] = Field(
        description="Per scope, the relaxed values' originals"
    )
    relaxed: dict[str, dict[str, float]]
    ended_at: datetime | None
    ended_by: str | None
    end_reason: str | None
    analysis: AnalysisOut | None
    recommendations: RecommendationsOut | None


class StatusOut(BaseModel):
    active: bool
    session: SessionOut | None
    time_left_seconds: float | None
    so_far: FiguresOut | None = Field(description="Trades closed during the session so far")


class SessionsOut(BaseModel):
    sessions: list[SessionOut]


class StartIn(s.Strict):
    duration_minutes: Annotated[int, Field(ge=1, le=10080)]
    reason: Annotated[s.Required, Field(max_length=2000)]
    relax_pct: dict[str, float] | None = Field(
        default=None, description="Percent per parameter, within its relax range"
    )


class EndIn(s.Strict):
    reason: s.Text = ""


class HistoryQuery(BaseModel):
    limit: Annotated[int, Field(ge=1, le=1000)] = 20


async def start(call: Call) -> web.Response:
    body: StartIn = call.body
    session = await learning.start_learning_session(
        call.runtime.deps, call.actor, body.duration_minutes, body.reason, body.relax_pct
    )
    call.runtime.wake_dispatchers()
    return json_response(_session(session), status=201)


async def end(call: Call) -> web.Response:
    body: EndIn = call.body
    session = await learning.stop_learning_session(call.runtime.deps, call.actor, body.reason)
    call.runtime.wake_dispatchers()
    return json_response(_session(session))


async def status(call: Call) -> web.Response:
    current = await learning.learning_status(call.runtime.deps, call.actor)
    out = StatusOut(
        active=current is not None,
        session=SessionOut.model_validate(current.session) if current else None,
        time_left_seconds=current.time_left.total_seconds() if current else None,
        so_far=FiguresOut.model_validate(current.so_far) if current else None,
    )
    return json_response(out.model_dump(mode="json"))


async def history(call: Call) -> web.Response:
    sessions = await learning.learning_history(call.runtime.deps, call.actor, call.query.limit)
    out = SessionsOut(sessions=[SessionOut.model_validate(x) for x in sessions])
    return json_response(out.model_dump(mode="json"))


def _session(session: learning.LearningSession) -> dict[str, object]:
    return SessionOut.model_validate(session).model_dump(mode="json")


ROUTES = [
    Route(
        "POST",
        "/start-learning-session",
        start,
        "Relax the risk parameters for a while (refused when one runs or in the cooldown)",
        Action.LEARNING,
        "learning sessions",
        {201: SessionOut},
        body=(StartIn,),
    ),
    Route(
        "POST",
        "/end-learning-session",
        end,
        "End the running session now: restore the originals exactly, analyse",
        Action.LEARNING,
        "learning sessions",
        {200: SessionOut},
        body=(EndIn,),
    ),
    Route(
        "GET",
        "/learning-session-status",
        status,
        "The running session: time left, trades so far, running PnL and win rate",
        Action.READ,
        "learning sessions",
        {200: StatusOut},
    ),
    Route(
        "GET",
        "/learning-sessions",
        history,
        "Learning sessions with their analysis and recommendations, newest first",
        Action.READ,
        "learning sessions",
        {200: SessionsOut},
        query=HistoryQuery,
    ),
]
