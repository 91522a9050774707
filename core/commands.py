"""The /param grammar: text -> typed commands, with usage errors that show the right syntax.

Parsing is pure and knows nothing of Slack: the bot, the console and the HTTP API
(`POST /process-command`) all turn the same text into the same command objects.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Protocol

from core.authz import Action, Actor
from core.errors import UserError, ValidationError
from core.models import Side
from core.params import Scope

COMMAND = "/param"


@dataclass(frozen=True)
class Usage:
    name: str  # the subcommand as typed: "show", "learning start"
    syntax: str  # arguments after the name
    summary: str
    action: Action  # what core requires to run it

    @property
    def line(self) -> str:
        return f"{COMMAND} {self.name} {self.syntax}".rstrip()


_USAGES = (
    Usage("help", "", "this reference", Action.HELP),
    Usage("show", "[PARAM|all] [--scope S]", "effective values of a scope", Action.READ),
    Usage(
        "set",
        "PARAM VALUE [--scope S] [REASON...]",
        "change one value, saying why if you like",
        Action.SET,
    ),
    Usage(
        "reset",
        "PARAM [--scope S] [REASON...]",
        "back to the default (global) or to inheriting (levels)",
        Action.RESET,
    ),
    Usage(
        "override",
        "SYMBOL BUY|SELL REASON...",
        "let the engine take one blocked trade; a reason is required",
        Action.OVERRIDE,
    ),
    Usage(
        "learning start",
        "[DURATION_MINUTES [REASON...]]",
        "relax the risk limits for a while; without arguments, opens a form",
        Action.LEARNING,
    ),
    Usage("learning stop", "[REASON...]", "end the learning session now", Action.LEARNING),
    Usage("learning status", "", "the running learning session, if any", Action.READ),
    Usage(
        "history",
        "[PARAM] [--scope S] [--limit N]",
        "parameter changes, newest first",
        Action.READ,
    ),
    Usage("diff", "V1 V2 [--scope S]", "what differs between two versions", Action.READ),
    Usage(
        "restore",
        "VERSION [--scope S] [REASON...]",
        "make an earlier version active again",
        Action.RESTORE,
    ),
    Usage(
        "blocked",
        "[WINDOW]",
        "blocked trades in the last WINDOW: 30m, 24h, 7d (default 24h)",
        Action.READ,
    ),
    Usage("optimize", "[SCOPE]", "run the optimizer now", Action.OPTIMIZE),
    Usage("jobs", "", "scheduled jobs and their next run", Action.READ),
    Usage("digest", "[daily|weekly]", "the last day's or week's digest, to you", Action.READ),
    Usage("notifications", "", "what the bot posts where", Action.READ),
)
USAGES: Mapping[str, Usage] = {usage.name: usage for usage in _USAGES}
SCOPES = ", ".join(scope.value for scope in Scope)


class CommandError(ValidationError):
    """Malformed /param input; `usage` is the syntax of the subcommand, when one was named."""

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage


# --- the commands ------------------------------------------------------------------


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Show:
    name: str | None
    scope: Scope


@dataclass(frozen=True)
class Set:
    name: str
    value: str
    scope: Scope
    reason: str


@dataclass(frozen=True)
class Reset:
    name: str
    scope: Scope
    reason: str


@dataclass(frozen=True)
class Override:
    symbol: str
    side: Side
    reason: str


@dataclass(frozen=True)
class LearningStart:
    duration_minutes: int | None  # None: ask with a form
    reason: str


@dataclass(frozen=True)
class LearningStop:
    reason: str


@dataclass(frozen=True)
class LearningStatusQuery:
    pass


@dataclass(frozen=True)
class History:
    name: str | None
    scope: Scope
    limit: int


@dataclass(frozen=True)
class Diff:
    old: int
    new: int
    scope: Scope


@dataclass(frozen=True)
class Restore:
    version: int
    scope: Scope
    reason: str


@dataclass(frozen=True)
class Blocked:
    window: timedelta


@dataclass(frozen=True)
class Optimize:
    scope: Scope | None


@dataclass(frozen=True)
class Jobs:
    pass


@dataclass(frozen=True)
class Digest:
    kind: Literal["daily", "weekly"] = "daily"


@dataclass(frozen=True)
class Notifications:
    pass


Command = (
    Help
    | Show
    | Set
    | Reset
    | Override
    | LearningStart
    | LearningStop
    | LearningStatusQuery
    | History
    | Diff
    | Restore
    | Blocked
    | Optimize
    | Jobs
    | Digest
    | Notifications
)

NAMES: Mapping[type[Command], str] = {
    Help: "help",
    Show: "show",
    Set: "set",
    Reset: "reset",
    Override: "override",
    LearningStart: "learning start",
    LearningStop: "learning stop",
    LearningStatusQuery: "learning status",
    History: "history",
    Diff: "diff",
    Restore: "restore",
    Blocked: "blocked",
    Optimize: "optimize",
    Jobs: "jobs",
    Digest: "digest",
    Notifications: "notifications",
}


def reference(actor: Actor, available: Collection[str]) -> list[Usage]:
    """The subcommands this actor may run, among those the entry point can answer."""
    return [u for u in _USAGES if u.name in available and actor.may(u.action)]


# --- parsing -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Args:
    usage: Usage
    words: list[str]
    options: dict[str, str]
    minutes: tuple[int, int] | None = None  # a learning session's least and most minutes

    def fail(self, message: str) -> CommandError:
        return CommandError(message, self.usage)

    def at_most(self, count: int) -> None:
        if len(self.words) > count:
            extra = " ".join(self.words[count:])
            raise self.fail(f"unexpected '{extra}'")

    def scope(self) -> Scope:
        return _scope(self, self.options.get("scope", Scope.GLOBAL.value))

    def rest(self, start: int) -> str:
        return " ".join(self.words[start:]).strip()


def parse(
    text: str, available: Collection[str], learning_minutes: tuple[int, int] | None = None
) -> Command:
    """One /param text as a command; raises CommandError saying what is wrong and the syntax.

    `available` names the subcommands the entry point can answer: the others are unknown.
    `learning_minutes`: the learning policy's least and most minutes (within 1 and MAX_WHOLE);
    given, a duration outside them is refused in the policy's words, as the use case would
    (0 as 999); without it, any whole number from 1 passes on to the use case.
    """
    words = _split(text)
    if not words or words[0].lower() == "help":
        return Help()
    keyword = words[0].lower()
    if keyword == "learning":
        sub = words[1].lower() if len(words) > 1 else ""
        name, words = f"learning {sub}", words[2:]
        if name not in USAGES:
            raise CommandError("learning takes start, stop or status", USAGES["learning start"])
    else:
        name, words = keyword, words[1:]
    if name not in available or name not in _PARSERS:
        raise CommandError(f"unknown command '{name[:40]}'")
    usage = USAGES[name]
    positional, options = _options(usage, words)
    return _PARSERS[name](_Args(usage, positional, options, learning_minutes))


_PLAIN_QUOTES = str.maketrans("“”‘’", "\"\"''")


def _split(text: str) -> list[str]:
    # Slack clients turn quotes into typographic ones; shlex only knows the plain kind.
    plain = text.translate(_PLAIN_QUOTES)
    try:
        return shlex.split(plain)
    except ValueError:  # an unbalanced quote: fall back to plain words
        return plain.split()


_OPTION = re.compile(r"^--([a-z][a-z-]*)(?:=(.*))?$")


def _options(usage: Usage, words: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    allowed = set(re.findall(r"--([a-z-]+)", usage.syntax))
    positional: list[str] = []
    options: dict[str, str] = {}
    items = iter(words)
    for word in items:
        match = _OPTION.match(word)
        if match is None:
            positional.append(word)
            continue
        option, value = match[1], match[2]
        if option not in allowed:
            raise CommandError(f"unknown option --{option}", usage)
        if option in options:  # which one was meant? neither is silently dropped
            raise CommandError(f"--{option} given twice", usage)
        if value is None:
            value = next(items, None)
        if not value:
            raise CommandError(f"--{option} needs a value", usage)
        options[option] = value
    return positional, options


def _scope(args: _Args, text: str) -> Scope:
    try:
        return Scope.parse(text)
    except UserError as error:
        raise args.fail(str(error)) from None


MAX_WHOLE = 2**31 - 1  # versions are INTEGER columns; no count or duration needs more


def _digits(text: str, at_most: int) -> bool:
    """Up to `at_most` ASCII digits: str.isdigit() alone also accepts "²", which int() refuses."""
    return text.isascii() and text.isdigit() and len(text) <= at_most


def _whole(args: _Args, text: str, what: str, least: int = 1) -> int:
    if not _digits(text, len(str(MAX_WHOLE))) or not least <= int(text) <= MAX_WHOLE:
        raise args.fail(
            f"{what} must be a whole number from {least} to {MAX_WHOLE}; got '{text[:40]}'"
        )
    return int(text)


FIRST_VERSION = 0  # every scope's implicit version 0, its defaults: shown, diffed, restored


def _show(args: _Args) -> Show:
    args.at_most(1)
    name = args.words[0] if args.words else None
    return Show(None if name is None or name.lower() == "all" else name, args.scope())


def _set(args: _Args) -> Set:
    # The reason is optional here: whether a change needs one depends on where it comes
    # from, and core.services decides that for every entry point (core.services.needs_reason).
    if len(args.words) < 2:
        raise args.fail("set needs a parameter and a value")
    return Set(args.words[0], args.words[1], args.scope(), args.rest(2))


def _reset(args: _Args) -> Reset:
    if not args.words:
        raise args.fail("reset needs the parameter to reset")
    return Reset(args.words[0], args.scope(), args.rest(1))


def _override(args: _Args) -> Override:
    if len(args.words) < 2:
        raise args.fail("override needs a symbol, a side (BUY or SELL) and a reason")
    try:
        side = Side.parse(args.words[1])
    except UserError as error:
        raise args.fail(str(error)) from None
    reason = args.rest(2)
    if not reason:
        raise args.fail("a reason is required: say why the risk block should be overridden")
    return Override(args.words[0], side, reason)


def _learning_start(args: _Args) -> LearningStart:
    if not args.words:
        return LearningStart(None, "")
    if args.minutes is None:
        minutes = _whole(args, args.words[0], "DURATION_MINUTES")
    else:  # the policy's bounds, said as core.learning says them for any entry point
        low, high = max(1, args.minutes[0]), min(MAX_WHOLE, args.minutes[1])
        text = args.words[0]
        if not _digits(text, len(str(MAX_WHOLE))) or not low <= int(text) <= high:
            got = text[:40] if _digits(text, 40) else f"'{text[:40]}'"
            raise args.fail(
                f"a learning session lasts {low} to {high} minutes (a whole number); got {got}"
            )
        minutes = int(text)
    return LearningStart(minutes, args.rest(1))  # the reason: as for set


def _learning_stop(args: _Args) -> LearningStop:
    return LearningStop(args.rest(0))


def _learning_status(args: _Args) -> LearningStatusQuery:
    args.at_most(0)
    return LearningStatusQuery()


def _history(args: _Args) -> History:
    args.at_most(1)
    limit = _whole(args, args.options.get("limit", "20"), "--limit")
    return History(args.words[0] if args.words else None, args.scope(), limit)


def _diff(args: _Args) -> Diff:
    if len(args.words) != 2:
        raise args.fail("diff needs two version numbers")
    old, new = (_whole(args, word, "a version", FIRST_VERSION) for word in args.words)
    return Diff(old, new, args.scope())


def _restore(args: _Args) -> Restore:
    if not args.words:
        raise args.fail("restore needs the version to restore")
    version = _whole(args, args.words[0], "VERSION", FIRST_VERSION)
    return Restore(version, args.scope(), args.rest(1))


_WINDOW = re.compile(r"^([0-9]{1,6})([mhd])$")  # enough digits for 90d in minutes
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
MAX_WINDOW = timedelta(days=90)


def _blocked(args: _Args) -> Blocked:
    args.at_most(1)
    text = args.words[0].lower() if args.words else "24h"
    match = _WINDOW.match(text)
    window = timedelta(**{_UNITS[match[2]]: int(match[1])}) if match else timedelta(0)
    if not timedelta(0) < window <= MAX_WINDOW:
        raise args.fail(f"WINDOW must be like 30m, 24h or 7d, at most 90d; got '{text[:40]}'")
    return Blocked(window)


def _optimize(args: _Args) -> Optimize:
    args.at_most(1)
    return Optimize(_scope(args, args.words[0]) if args.words else None)


DIGEST_KINDS: tuple[Literal["daily", "weekly"], ...] = ("daily", "weekly")


def _digest(args: _Args) -> Digest:
    args.at_most(1)
    word = args.words[0].lower() if args.words else "daily"
    for kind in DIGEST_KINDS:
        if word == kind:
            return Digest(kind)
    raise args.fail(f"the digest is daily or weekly; got '{word[:40]}'")


def _no_arguments(command: Command) -> Callable[[_Args], Command]:
    def parse_bare(args: _Args) -> Command:
        args.at_most(0)
        return command

    return parse_bare


_PARSERS: Mapping[str, Callable[[_Args], Command]] = {
    "show": _show,
    "set": _set,
    "reset": _reset,
    "override": _override,
    "learning start": _learning_start,
    "learning stop": _learning_stop,
    "learning status": _learning_status,
    "history": _history,
    "diff": _diff,
    "restore": _restore,
    "blocked": _blocked,
    "optimize": _optimize,
    "jobs": _no_arguments(Jobs()),
    "digest": _digest,
    "notifications": _no_arguments(Notifications()),
}


# --- the learning-session form -----------------------------------------------------


class RelaxBounds(Protocol):
    """What the form needs of a relaxable parameter (core.learning.RelaxChoice has it)."""

    @property
    def name(self) -> str: ...

    @property
    def min_pct(self) -> float: ...

    @property
    def max_pct(self) -> float: ...


@dataclass(frozen=True)
class LearningForm:
    duration_minutes: int
    relax_pct: dict[str, float]
    reason: str


class FormError(ValidationError):
    """Invalid form input; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {error}" for field, error in errors.items()))
        self.errors = dict(errors)


DURATION_FIELD = "duration"
REASON_FIELD = "reason"


def relax_field(name: str) -> str:
    return f"relax:{name}"


def parse_learning_form(
    duration: str | None,
    relax: Mapping[str, str | None],
    reason: str | None,
    choices: Sequence[RelaxBounds],
    minutes_range: tuple[int, int],
) -> LearningForm:
    """Check every field and report all problems at once, each next to its field. The form
    comes from Slack, where the reason is optional (core.services.needs_reason)."""
    errors: dict[str, str] = {}
    minutes = (duration or "").strip()
    low, high = minutes_range
    if not _digits(minutes, len(str(high))) or not low <= int(minutes) <= high:
        errors[DURATION_FIELD] = f"a whole number of minutes from {low} to {high}"
    relax_pct: dict[str, float] = {}
    for choice in choices:
        field = relax_field(choice.name)
        try:
            pct = float((relax.get(field) or "").strip())
        except ValueError:
            pct = float("nan")
        if not choice.min_pct <= pct <= choice.max_pct:
            errors[field] = f"a percentage from {choice.min_pct:g} to {choice.max_pct:g}"
        else:
            relax_pct[choice.name] = pct
    if errors:
        raise FormError(errors)
    return LearningForm(int(minutes), relax_pct, (reason or "").strip())
