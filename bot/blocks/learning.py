"""Learning sessions as Slack messages, and the form that starts one."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    InputBlock,
    NumberInputElement,
    PlainTextInputElement,
)
from slack_sdk.models.views import View

from bot import render_learning
from bot.blocks.common import Message, context, escape, person, section, utc_time
from bot.render import said
from core.commands import DURATION_FIELD, REASON_FIELD, relax_field
from core.learning import LearningSession, LearningStatus, RelaxChoice, TradeFigures
from core.learning_model import LearningPolicy, Recommendation, Recommendations, Verdict
from core.params import format_value

FORM_CALLBACK = "learning_start"  # each input's block_id and action_id name its field
APPLY_ACTION = "learning_apply_recommendation"
DEFAULT_MINUTES = 60


def _values(session: LearningSession, restored: bool = False) -> list[str]:
    lines = []
    for value in session.relaxed_values():
        old, new = (value.relaxed, value.original) if restored else (value.original, value.relaxed)
        lines.append(
            f"• {value.scope} `{value.parameter}`: {format_value(old)} → *{format_value(new)}*"
        )
    return lines


def _figures(figures: TradeFigures) -> str:
    rate = "n/a" if figures.win_rate is None else f"{figures.win_rate:.0%}"
    return f"{figures.trades} trades, PnL {figures.total_pnl:+.2f}, win rate {rate}"


def started(session: LearningSession) -> Message:
    minutes = round(session.planned_duration.total_seconds() / 60)
    head = (
        f"{person(session.started_by)} started learning session {session.id} "
        f"until {utc_time(session.planned_end_at)} ({minutes} min)"
    )
    return Message(
        text=render_learning.started(session),
        blocks=[section("\n".join([head, *_values(session), f"> {escape(said(session.reason))}"]))],
        ephemeral=False,
    )


def ended(session: LearningSession) -> Message:
    by = person(session.ended_by) if session.ended_by else "the timer"
    head = (
        f"{by} ended learning session {session.id} ({session.status.value.lower()}): "
        "original values restored"
    )
    lines = [head, *_values(session, restored=True)]
    if session.end_reason:
        lines.append(f"> {escape(session.end_reason)}")
    blocks: list[Block] = [section("\n".join(lines))]
    if session.analysis is not None:
        blocks.append(
            context(
                f"Session: {_figures(session.analysis.session)} · "
                f"before: {_figures(session.analysis.baseline)}"
            )
        )
    if session.recommendations is not None:
        advice = render_learning.recommendations(session.recommendations)
        blocks.append(section("\n".join(escape(line) for line in advice)))
        blocks += [_apply_button(session.id, r) for r in _applicable(session.recommendations)]
    return Message(text=render_learning.ended(session), blocks=blocks, ephemeral=False)


def _applicable(advice: Recommendations) -> list[Recommendation]:
    """What a button can make live: a revert is what the session's end already did."""
    return [r for r in advice.items if r.verdict is not Verdict.REVERT]


def _apply_button(session_id: int, advice: Recommendation) -> ActionsBlock:
    """One block per recommendation: Slack wants an action_id unique within its block."""
    target = f"{advice.scope} {advice.parameter} = {format_value(advice.suggested)}"
    value = json.dumps(
        {"session": session_id, "scope": advice.scope.value, "parameter": advice.parameter}
    )
    confirm = ConfirmObject(
        title="Apply recommendation?",
        text=f"Sets {target} as a new config version (backed up first).",
        confirm="Apply",
        deny="Cancel",
    )
    button = ButtonElement(
        text=f"Apply: {target}"[:75], action_id=APPLY_ACTION, value=value, confirm=confirm
    )
    return ActionsBlock(block_id=f"apply:{advice.scope}:{advice.parameter}", elements=[button])


def status(current: LearningStatus | None) -> Message:
    if current is None:
        idle = "No learning session is running."
        return Message(idle, [section(idle)])
    session = current.session
    minutes = round(current.time_left.total_seconds() / 60)
    head = (
        f"*Learning session {session.id}* by {person(session.started_by)}: "
        f"{minutes} min left, until {utc_time(session.planned_end_at)}"
    )
    lines = [head, f"So far: {_figures(current.so_far)}", *_values(session)]
    return Message(
        text=render_learning.status(current),
        blocks=[section("\n".join(lines)), context(f"Why: {escape(said(session.reason))}")],
    )


def form(choices: Sequence[RelaxChoice], policy: LearningPolicy, channel_id: str) -> View:
    """The start form: duration, one relax percentage per parameter, and an optional reason.

    The channel the command came from rides along (see `asked_in`), so the person who
    submits it is answered there.
    """
    low, high = policy.min_duration_minutes, policy.max_duration_minutes
    duration = InputBlock(
        block_id=DURATION_FIELD,
        label="Duration (minutes)",
        hint=f"{low} to {high} minutes",
        element=NumberInputElement(
            action_id=DURATION_FIELD,
            is_decimal_allowed=False,
            initial_value=min(max(DEFAULT_MINUTES, low), high),
            min_value=low,
            max_value=high,
        ),
    )
    relax = [
        InputBlock(
            block_id=relax_field(choice.name),
            label=f"{choice.name}: {choice.direction} by (%)",
            hint=f"{choice.min_pct:g} to {choice.max_pct:g} %",
            element=NumberInputElement(
                action_id=relax_field(choice.name),
                is_decimal_allowed=True,
                initial_value=choice.default_pct,
                min_value=choice.min_pct,
                max_value=choice.max_pct,
            ),
        )
        for choice in choices
    ]
    reason = InputBlock(
        block_id=REASON_FIELD,
        label="Reason",
        hint="What should the session explore? Announced in the channel.",
        element=PlainTextInputElement(action_id=REASON_FIELD, multiline=True, max_length=500),
        optional=True,  # as in /param learning start 30: core.services.needs_reason
    )
    return View(
        type="modal",
        callback_id=FORM_CALLBACK,
        title="Start learning session",
        submit="Start",
        close="Cancel",
        private_metadata=json.dumps({"channel_id": channel_id}),
        blocks=[duration, *relax, reason],
    )


def asked_in(view: View, channel_id: str, channel_name: str) -> View:
    """The form, noting the channel it was asked for in: its id, and its name as Slack sent
    it with the command (a channel setting may name the channel rather than give its id)."""
    noted = _noted(view.private_metadata)
    view.private_metadata = json.dumps(
        {**noted, "channel_id": channel_id, "channel_name": channel_name}
    )
    return view


def origin(submitted: Mapping[str, Any]) -> tuple[str, str]:
    """The channel id and name a submitted form was asked for in; ("", "") if it does not say."""
    noted = _noted(submitted.get("private_metadata"))
    return str(noted.get("channel_id") or ""), str(noted.get("channel_name") or "")


def _noted(metadata: Any) -> dict[str, Any]:
    try:
        noted = json.loads(metadata) if isinstance(metadata, str) and metadata else {}
    except ValueError:
        return {}
    return noted if isinstance(noted, dict) else {}
