"""/param: parse the text, call the one use case, build the answer.

Used by the Slack listener, the console (through the same listener) and the HTTP API
(`POST /process-command`), so every entry point answers the same text the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from slack_sdk.models.views import View

from bot import notifications
from bot.blocks import alerts as alert_blocks
from bot.blocks import digest as digest_blocks
from bot.blocks import help as help_blocks
from bot.blocks import jobs as job_blocks
from bot.blocks import learning as learning_blocks
from bot.blocks import optimization as optimization_blocks
from bot.blocks import params as param_blocks
from bot.blocks.common import Message
from bot.jobs import jobs_overview, overview_lines
from bot.notifications import EventType
from bot.optimization_announcer import report_channel
from bot.runtime import Runtime
from core import blocked_insights, digest, learning, optimization, services, trades
from core import commands as c
from core.authz import Action, Actor, require
from core.errors import NotFoundError, UserError
from core.models import Outcome
from core.params import Scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandContext:
    runtime: Runtime
    actor: Actor
    channel_id: str = ""  # where the command was typed ("": not in a channel, e.g. the API)
    # Slack only: a form needs the trigger_id of the command that asks for it.
    open_form: Callable[[View], Awaitable[None]] | None = None
    channel_name: str = ""  # without "#", as Slack sends it


C = TypeVar("C")
Handler = Callable[[CommandContext, C], Awaitable[Message | None]]
_HANDLERS: dict[type[Any], Handler[Any]] = {}


def handles(kind: type[C]) -> Callable[[Handler[C]], Handler[C]]:
    def register(handler: Handler[C]) -> Handler[C]:
        _HANDLERS[kind] = handler
        return handler

    return register


def available() -> set[str]:
    """The subcommands that have a use case behind them; the others are unknown."""
    return {c.NAMES[kind] for kind in _HANDLERS}


async def run_command(ctx: CommandContext, text: str) -> Message | None:
    """The answer to one /param text (None when a form opened instead)."""
    try:
        policy = ctx.runtime.deps.learning_policy
        minutes = (policy.min_duration_minutes, policy.max_duration_minutes)
        command = c.parse(text, available(), learning_minutes=minutes)
        return await _HANDLERS[type(command)](ctx, command)
    except c.CommandError as error:
        log.info("/param %r from %s: bad input: %s", text, ctx.actor.id, error)
        return help_blocks.usage_error(error, c.reference(ctx.actor, available()))
    except UserError as error:
        log.info("/param %r from %s refused: %s", text, ctx.actor.id, error)
        return help_blocks.refusal(str(error))


@handles(c.Help)
async def _help(ctx: CommandContext, _command: c.Help) -> Message:
    return help_blocks.reference(c.reference(ctx.actor, available()))


@handles(c.Show)
async def _show(ctx: CommandContext, command: c.Show) -> Message:
    try:
        view = await services.show_parameters(
            ctx.runtime.deps, ctx.actor, command.scope, command.name
        )
    except NotFoundError as error:  # an unknown PARAM: the closest name, and the syntax
        log.info("/param show from %s refused: %s", ctx.actor.id, error)
        return help_blocks.refusal(str(error), c.USAGES["show"])
    return param_blocks.scope_view(view)


@handles(c.Set)
async def _set(ctx: CommandContext, command: c.Set) -> Message:
    result = await services.set_parameter(
        ctx.runtime.deps, ctx.actor, command.scope, command.name, command.value, command.reason
    )
    what = f"set `{command.name}` in *{command.scope}*"
    announcement = param_blocks.change_announcement(ctx.actor.id, what, result, command.reason)
    return _change_for_the_caller(ctx, announcement, result.outcome)


@handles(c.Reset)
async def _reset(ctx: CommandContext, command: c.Reset) -> Message:
    result = await services.reset_parameter(
        ctx.runtime.deps, ctx.actor, command.scope, command.name, command.reason
    )
    what = f"reset `{command.name}` in *{command.scope}*"
    why = result.version.reason if result.version else command.reason
    announcement = param_blocks.change_announcement(ctx.actor.id, what, result, why)
    return _change_for_the_caller(ctx, announcement, result.outcome)


@handles(c.Restore)
async def _restore(ctx: CommandContext, command: c.Restore) -> Message:
    result = await services.restore_version(
        ctx.runtime.deps, ctx.actor, command.scope, command.version, command.reason
    )
    what = f"restored *{command.scope}* version {command.version}"
    why = result.version.reason if result.version else command.reason
    announcement = param_blocks.change_announcement(ctx.actor.id, what, result, why)
    return _change_for_the_caller(ctx, announcement, result.outcome)


@handles(c.History)
async def _history(ctx: CommandContext, command: c.History) -> Message:
    records = await services.parameter_history(
        ctx.runtime.deps, ctx.actor, command.scope, command.name, command.limit
    )
    return param_blocks.history(command.scope, records)


@handles(c.Diff)
async def _diff(ctx: CommandContext, command: c.Diff) -> Message:
    diff = await services.diff_versions(
        ctx.runtime.deps, ctx.actor, command.scope, command.old, command.new
    )
    return param_blocks.version_diff(diff)


@handles(c.Override)
async def _override(ctx: CommandContext, command: c.Override) -> Message:
    granted = await trades.grant_override(
        ctx.runtime.deps, ctx.actor, command.symbol, command.side, command.reason
    )
    return for_the_caller(ctx, alert_blocks.override_granted(granted), EventType.OVERRIDE_DECISION)


@handles(c.Blocked)
async def _blocked(ctx: CommandContext, command: c.Blocked) -> Message:
    deps = ctx.runtime.deps
    until = deps.clock.now()
    since = until - command.window
    stats = await trades.blocked_trade_stats(deps, ctx.actor, since, until, limit=10)
    message = alert_blocks.blocked_stats(stats, _window_text(command))
    if deps.optimizer is None:  # a Deps without market-data ports (some tests)
        return message
    found = await blocked_insights.blocked_trade_insights(deps, ctx.actor, since, until)
    return alert_blocks.with_counterfactual(message, found)


def _window_text(command: c.Blocked) -> str:
    minutes = int(command.window.total_seconds() // 60)
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


@handles(c.Jobs)
async def _jobs(ctx: CommandContext, _command: c.Jobs) -> Message:
    require(ctx.actor, Action.READ)
    return job_blocks.overview(overview_lines(await jobs_overview(ctx.runtime)))


@handles(c.Digest)
async def _digest(ctx: CommandContext, command: c.Digest) -> Message:
    """On demand, to the caller only; the scheduled digests go to the channel (bot.digests)."""
    deps = ctx.runtime.deps
    since, until = digest.period(command.kind, deps.clock.now())
    found = await digest.gather_digest(deps, ctx.actor, command.kind, since, until)
    return digest_blocks.digest_message(found, ephemeral=True)


@handles(c.Notifications)
async def _notifications(ctx: CommandContext, _command: c.Notifications) -> Message:
    require(ctx.actor, Action.READ)
    return notifications.settings_message(ctx.runtime.settings)


@handles(c.LearningStart)
async def _learning_start(ctx: CommandContext, command: c.LearningStart) -> Message | None:
    deps = ctx.runtime.deps
    if command.duration_minutes is not None:
        session = await learning.start_learning_session(
            deps, ctx.actor, command.duration_minutes, command.reason
        )
        return for_the_caller(ctx, learning_blocks.started(session), EventType.LEARNING_SESSION)
    require(ctx.actor, Action.LEARNING)  # refuse before a form that could only be refused
    if ctx.open_form is None:
        raise c.CommandError(
            "give the duration and a reason here (the form needs Slack)",
            c.USAGES["learning start"],
        )
    choices = learning.relax_choices(deps.schema)
    await ctx.open_form(learning_blocks.form(choices, deps.learning_policy, ctx.channel_id))
    return None


@handles(c.LearningStop)
async def _learning_stop(ctx: CommandContext, command: c.LearningStop) -> Message:
    session = await learning.stop_learning_session(ctx.runtime.deps, ctx.actor, command.reason)
    return for_the_caller(ctx, learning_blocks.ended(session), EventType.LEARNING_SESSION)


def _change_for_the_caller(ctx: CommandContext, announcement: Message, outcome: Outcome) -> Message:
    if outcome is not Outcome.APPLIED:  # nothing changed: nothing to announce
        return announcement
    return for_the_caller(ctx, announcement, EventType.PARAMETER_CHANGE)


def for_the_caller(ctx: CommandContext, announcement: Message, event: EventType) -> Message:
    """A change of shared state is announced in a channel with who, what (old → new) and why.
    The outbox posts it where the notification settings say (bot.announcements,
    bot.event_announcer), once whoever caused it: typed in that channel, the caller's answer
    is ephemeral (the channel hears it from the outbox); typed anywhere else, or with the
    notification silent or off, the answer itself is posted in the channel it was typed in.
    Outside a channel (the HTTP API) it answers the caller alone."""
    here = bool(ctx.channel_id) and not _announced_in(ctx, event)
    return replace(announcement, ephemeral=not here)


def _announced_in(ctx: CommandContext, event: EventType) -> bool:
    """Whether the outbox posts `event` in the channel the command was typed in; the setting
    names a channel by id (C…) or by name (#name)."""
    channel = notifications.channel_for(ctx.runtime.settings, event)
    if channel is None:
        return False
    if channel == ctx.channel_id:
        return True
    name = channel.removeprefix("#").lower()
    return bool(ctx.channel_name) and name == ctx.channel_name.removeprefix("#").lower()


@handles(c.LearningStatusQuery)
async def _learning_status(ctx: CommandContext, _command: c.LearningStatusQuery) -> Message:
    return learning_blocks.status(await learning.learning_status(ctx.runtime.deps, ctx.actor))


@handles(c.Optimize)
async def _optimize(ctx: CommandContext, command: c.Optimize) -> Message:
    """The run goes on in the process pool; its report reaches the channel from the outbox."""
    request = optimization.OptimizationRequest(scope=command.scope or Scope.GLOBAL)
    run = await optimization.start_optimization(ctx.runtime.deps, ctx.actor, request)
    return optimization_blocks.started(run, report_channel(ctx.runtime))
