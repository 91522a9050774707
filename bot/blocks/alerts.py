"""The #risk-blocked alert: one message per coalesced group of blocked trades, and overrides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot import render_blocked
from bot.blocks.common import (
    Message,
    context,
    escape,
    person,
    preformatted,
    section,
    utc_stamp,
    utc_time,
)
from core.alerts import AlertGroup, AlertStatus
from core.counterfactual import Insights
from core.models import BlockedStats, BlockedTrade, Override, OverrideStatus
from core.params import format_value

APPROVE_ACTION = "override_approve"
DENY_ACTION = "override_deny"


def alert(group: AlertGroup, ttl: timedelta) -> Message:
    trade = group.latest
    status = _status_blocks(group, ttl)
    title = f"Blocked {trade.signal} {trade.symbol}: {trade.block_reason}"
    count = f" (×{group.count} since {utc_time(group.first_at)})" if group.count > 1 else ""
    blocks: list[Block] = [HeaderBlock(text=f":no_entry_sign: {title}"[:150]), _details(trade)]
    if group.count > 1:
        blocks.append(
            context(f"×{group.count} blocked since {utc_time(group.first_at)}; the latest is shown")
        )
    return Message(  # the fallback text is mrkdwn too: engine text in it must not ping
        text=f"{escape(title)}{count}. {_status_text(group, ttl)}",
        blocks=[*blocks, *status],
        ephemeral=False,
    )


def _details(trade: BlockedTrade) -> SectionBlock:
    fields = {
        "Signal": trade.signal.value,
        "Reason": escape(trade.block_reason),
        "Symbol": escape(trade.symbol),
        "Price": _number(trade.price, format_value),
        "RSI": _number(trade.rsi, lambda v: f"{v:.1f}"),
        "Confidence": _number(trade.confidence, lambda v: f"{v:.2f}"),
        "Risk level": escape(trade.risk_level or "—"),
        "Time": utc_stamp(trade.timestamp),
    }
    return SectionBlock(
        fields=[MarkdownTextObject(text=f"*{name}*\n{value}") for name, value in fields.items()]
    )


def _number(value: float | None, shown: Callable[[float], str]) -> str:
    return "—" if value is None else shown(value)


def _status_blocks(group: AlertGroup, ttl: timedelta) -> list[Block]:
    status = group.shown_status
    if status is AlertStatus.POSTED:
        return [_buttons(group.latest), context(_status_text(group, ttl))]
    if status is AlertStatus.DECIDED:
        return [section(_status_text(group, ttl))]
    return [context(_status_text(group, ttl))]


def _status_text(group: AlertGroup, ttl: timedelta) -> str:
    if group.decision is not None:
        return decision_line(group.decision)
    if group.status is AlertStatus.EXPIRED:
        return f":hourglass: Expired at {utc_time(group.expires_at(ttl))} without a decision"
    return f"Waiting for a decision until {utc_time(group.expires_at(ttl))}"


def decision_line(override: Override) -> str:
    verb = "Denied" if override.status is OverrideStatus.DENIED else "Approved"
    icon = ":x:" if override.status is OverrideStatus.DENIED else ":white_check_mark:"
    at = f" at {utc_time(override.decided_at)}" if override.decided_at else ""
    until = (
        f" (override valid until {utc_time(override.expires_at)})"
        if override.expires_at and override.status is not OverrideStatus.DENIED
        else ""
    )
    who = person(override.decided_by or override.requested_by)
    return f"{icon} {verb} by {who}{at} — {escape(override.reason)}{until}"


def _buttons(trade: BlockedTrade) -> ActionsBlock:
    confirm = ConfirmObject(
        title="Approve override?",
        text=f"The engine may then take this {trade.signal} {escape(trade.symbol)} trade "
        "despite the risk block.",
        confirm="Approve",
        deny="Cancel",
    )
    value = str(trade.id)
    return ActionsBlock(
        block_id="decision",
        elements=[
            ButtonElement(
                text="Approve override",
                action_id=APPROVE_ACTION,
                value=value,
                style="primary",
                confirm=confirm,
            ),
            ButtonElement(text="Deny", action_id=DENY_ACTION, value=value),
        ],
    )


def override_granted(override: Override) -> Message:
    """`/param override` announced in the channel."""
    until = f" until {utc_time(override.expires_at)}" if override.expires_at else ""
    head = (
        f"{person(override.requested_by)} overrode the risk block for "
        f"*{override.side} {escape(override.symbol)}*{until}"
    )
    return Message(
        text=f"{head} — {override.reason}".replace("*", ""),
        blocks=[section(f"{head}\n> {escape(override.reason)}")],
        ephemeral=False,
    )


def override_decided(override: Override, trade: BlockedTrade) -> Message:
    """A decision on an alert, announced where the alert itself does not show it."""
    about = f"Blocked {trade.signal} {escape(trade.symbol)}: {escape(trade.block_reason)}"
    line = decision_line(override)
    return Message(text=f"{about}. {line}", blocks=[section(f"*{about}*\n{line}")], ephemeral=False)


def blocked_stats(stats: BlockedStats, window: str) -> Message:
    def top(counts: dict[str, int]) -> str:
        return ", ".join(f"{escape(k)} {n}" for k, n in list(counts.items())[:8]) or "—"

    lines = [
        f"*{stats.total}* blocked trades in the last {window}",
        f"*By reason:* {top(stats.by_reason)}",
        f"*By symbol:* {top(stats.by_symbol)}",
        f"*By signal:* {top(stats.by_signal)}",
    ]
    recent = [
        f"• {utc_stamp(t.timestamp)} {t.signal} {escape(t.symbol)} — {escape(t.block_reason)}"
        for t in stats.recent[:10]
    ]
    if recent:
        lines += ["*Latest:*", *recent]
    text = "\n".join(lines)
    return Message(text=text.replace("*", ""), blocks=[section(text)])


def with_counterfactual(message: Message, found: Insights) -> Message:
    """The statistics, then what the blocked trades would have done (core.counterfactual)."""
    report = render_blocked.insights(found)
    return replace(
        message,
        text=f"{message.text}\n\n{escape(report)}",
        blocks=[*message.blocks, *preformatted(report.splitlines())],
    )
