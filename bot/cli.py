"""The `paramadapt` command line. Each subcommand calls one use case in core.services."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from traceback import walk_tb
from typing import Any, NoReturn

from sqlalchemy.exc import DBAPIError

from bot import render, render_blocked, render_learning, render_optimizer, simulate
from bot.config import ConfigError, Settings, load_settings
from bot.jobs import jobs_overview, overview_lines
from bot.local_token import with_local_engine_token
from bot.runtime import Runtime, cli_actor, open_runtime
from bot.webhook.operator_routes import parse_window
from core import blocked_insights, learning, optimization, services
from core.authz import Action
from core.backtest import BacktestSettings
from core.errors import UserError, ValidationError
from core.optimizer import Method
from core.params import Scope
from storage.db import mask_url
from storage.marketdata import load_candles

log = logging.getLogger("paramadapt")

Handler = Callable[[Runtime, argparse.Namespace], Awaitable[None]]


class UsageError(Exception):
    """A command line argparse refused; `prog` is the (sub)command's: 'paramadapt params set'."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog, self.message = prog, message

    @property
    def command(self) -> tuple[str, ...]:
        return tuple(self.prog.split()[1:])

    def line(self) -> str:
        return f"{self.prog}: error: {self.message} (see '{self.prog} --help')"


class CliParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(self.prog, message)


# The commands that change something, and the action their refusals are audited as (what
# core's use case records when it refuses): a malformed one is audited like any refusal.
CHANGES: dict[tuple[str, ...], str] = {
    ("params", "set"): Action.SET,
    ("params", "reset"): Action.RESET,
    ("params", "restore"): Action.RESTORE,
    ("backup", "create"): Action.BACKUP,
    ("learning", "start"): "learning.start",
    ("learning", "stop"): "learning.stop",
}


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog="paramadapt",
        description="Slack-first chatops bot for learning-driven parameter adaptation.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="migrate the database and start the bot and HTTP server")
    run.add_argument(
        "--as",
        dest="as_user",
        type=_slack_user,
        metavar="USER_ID",
        help="console mode (no Slack tokens): type commands as this Slack user id, with the "
        "roles the configuration gives it (default: U0CONSOLE, an admin in console mode)",
    )
    _db_commands(commands)
    _params_commands(commands)
    _backup_commands(commands)
    _learning_commands(commands)
    _optimizer_commands(commands)
    simulate.add_parser(commands)
    blocked = commands.add_parser(
        "blocked", help="what blocked trades would have done had they been executed"
    )
    blocked.add_argument(
        "--window", type=_window, default="7d", help="ending now: 24h, 7d, 2w (default 7d)"
    )
    commands.add_parser(
        "jobs", help="scheduled jobs: schedule, next run, last outcome, lease holder"
    )
    config = commands.add_parser("config", help="check the configuration").add_subparsers(
        dest="config_command", required=True, metavar="SUBCOMMAND"
    )
    check = config.add_parser("check", help="validate and print the effective configuration")
    check.add_argument("file", nargs="?", help="TOML file (default: $PARAMADAPT_CONFIG)")
    return parser


def _db_commands(commands: Any) -> None:
    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True, metavar="SUBCOMMAND"
    )
    db.add_parser("upgrade", help="create or upgrade the schema to the latest migration")


def _scope_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scope", type=_scope, default=Scope.GLOBAL, help="global (default), HIGH, MEDIUM or LOW"
    )


def _based_on_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--based-on",
        type=int,
        metavar="VERSION",
        help="refuse the change unless VERSION is still the active one",
    )


def _params_commands(commands: Any) -> None:
    params = commands.add_parser("params", help="show and change parameters").add_subparsers(
        dest="params_command", required=True, metavar="SUBCOMMAND"
    )
    show = params.add_parser("show", help="effective values of a scope")
    show.add_argument("name", nargs="?", help="one parameter (default: all)")
    _scope_option(show)
    show.add_argument("--json", action="store_true", help="machine-readable output")

    set_ = params.add_parser("set", help="change one parameter (backed up first)")
    set_.add_argument("name")
    set_.add_argument("value")
    _scope_option(set_)
    # required by core, not argparse: a change refused for want of a reason is audited
    set_.add_argument("--reason", default="", help="why the value changes (required)")
    _based_on_option(set_)

    reset = params.add_parser("reset", help="back to the default (global) or inherit (levels)")
    reset.add_argument("name")
    _scope_option(reset)
    reset.add_argument("--reason", default="", help="why")
    _based_on_option(reset)

    history = params.add_parser("history", help="parameter changes, newest first")
    history.add_argument("name", nargs="?", help="only this parameter")
    _scope_option(history)
    history.add_argument("--limit", type=int, default=20)

    diff = params.add_parser("diff", help="what differs between two versions of a scope")
    diff.add_argument("old", type=int, metavar="V1")
    diff.add_argument("new", type=int, metavar="V2")
    _scope_option(diff)

    restore = params.add_parser("restore", help="make an earlier version or a backup active again")
    target = restore.add_mutually_exclusive_group(required=True)
    target.add_argument("version", type=int, nargs="?", metavar="VERSION")
    target.add_argument("--backup", metavar="ID", help="restore from a backup file")
    _scope_option(restore)
    restore.add_argument("--reason", default="", help="why")
    _based_on_option(restore)


def _backup_commands(commands: Any) -> None:
    backup = commands.add_parser("backup", help="configuration backups").add_subparsers(
        dest="backup_command", required=True, metavar="SUBCOMMAND"
    )
    create = backup.add_parser("create", help="back up a scope's active configuration now")
    _scope_option(create)
    create.add_argument("--reason", default="", help="why")
    listing = backup.add_parser("list", help="backups, newest first")
    listing.add_argument("--scope", type=_scope, default=None, help="only this scope")
    listing.add_argument("--limit", type=int, default=50)


def _learning_commands(commands: Any) -> None:
    sessions = commands.add_parser(
        "learning", help="learning sessions: relax the risk limits for a while, then restore"
    ).add_subparsers(dest="learning_command", required=True, metavar="SUBCOMMAND")
    start = sessions.add_parser("start", help="relax the risk parameters for a number of minutes")
    start.add_argument("duration", type=int, metavar="DURATION_MINUTES")
    start.add_argument("--reason", required=True, help="what the session explores (required)")
    start.add_argument(
        "--relax",
        type=_relax_pct,
        action="append",
        default=[],
        metavar="NAME=PCT",
        help="relax NAME by PCT percent (within its range; default: the middle of it)",
    )
    stop = sessions.add_parser("stop", help="end the running session now and restore")
    stop.add_argument("--reason", default="", help="why")
    sessions.add_parser("status", help="the running session: time left, trades, PnL, values")
    history = sessions.add_parser("history", help="sessions, newest first")
    history.add_argument("--limit", type=int, default=20)


def _optimizer_commands(commands: Any) -> None:
    optimize = commands.add_parser(
        "optimize", help="run an optimization cycle now: backtest candidates, apply a winner"
    )
    _scope_option(optimize)
    optimize.add_argument("--method", type=Method, choices=list(Method), help="default: configured")
    optimize.add_argument("--lookback-days", type=int, metavar="N", help="default: configured")
    optimize.add_argument(
        "--until",
        type=_utc_time,
        metavar="ISO_TIME",
        help="end of the data range (default: now)",
    )
    optimize.add_argument(
        "--seed",
        type=int,
        help="random seed (default: configured or random); with --until, --lookback-days and "
        "--method it repeats a stored run",
    )
    optimize.add_argument(
        "--dry-run",
        action="store_true",
        help="show candidates and results; store and apply nothing",
    )
    backtest = commands.add_parser("backtest", help="run the reference strategy on one data file")
    backtest.add_argument(
        "--data", required=True, metavar="PATH", help="CSV, Parquet, feather, JSON"
    )
    backtest.add_argument("--symbol", help="default: from a PAIR-TIMEFRAME file name")
    backtest.add_argument("--timeframe", help="default: from a PAIR-TIMEFRAME file name")
    _scope_option(backtest)
    backtest.add_argument(
        "--set",
        dest="overrides",
        type=_assignment,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a strategy parameter instead of the scope's value",
    )
    backtest.add_argument("--cash", type=float, default=BacktestSettings.cash)
    backtest.add_argument("--commission", type=float, default=BacktestSettings.commission)
    backtest.add_argument("--spread", type=float, default=BacktestSettings.spread)
    backtest.add_argument("--json", action="store_true", help="machine-readable output")


def _assignment(text: str) -> tuple[str, str]:
    name, sign, value = text.partition("=")
    if not sign or not name.strip():
        raise argparse.ArgumentTypeError(f"'{text}' is not NAME=VALUE, e.g. long_rsi_entry=35")
    return name.strip(), value.strip()


def _utc_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an ISO time such as 2026-03-01T00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _relax_pct(text: str) -> tuple[str, float]:
    name, _, pct = text.partition("=")
    try:
        return name.strip(), float(pct)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not NAME=PCT, e.g. min_confidence=15"
        ) from None


def _slack_user(text: str) -> str:
    if not re.fullmatch(r"[UW][A-Z0-9]{2,}", text):
        raise argparse.ArgumentTypeError(f"'{text}' is not a Slack user id such as U0123ABCD")
    return text


def _window(text: str) -> timedelta:
    try:
        return parse_window(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _scope(text: str) -> Scope:
    try:
        return Scope.parse(text)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# --- commands ----------------------------------------------------------------------


async def _params_show(runtime: Runtime, args: argparse.Namespace) -> None:
    view = await services.show_parameters(runtime.deps, cli_actor(), args.scope, args.name)
    print(
        json.dumps(render.scope_view_json(view), indent=2) if args.json else render.scope_view(view)
    )


async def _params_set(runtime: Runtime, args: argparse.Namespace) -> None:
    result = await services.set_parameter(
        runtime.deps, cli_actor(), args.scope, args.name, args.value, args.reason, args.based_on
    )
    print(render.change_result(result))


async def _params_reset(runtime: Runtime, args: argparse.Namespace) -> None:
    result = await services.reset_parameter(
        runtime.deps, cli_actor(), args.scope, args.name, args.reason, args.based_on
    )
    print(render.change_result(result))


async def _params_history(runtime: Runtime, args: argparse.Namespace) -> None:
    records = await services.parameter_history(
        runtime.deps, cli_actor(), args.scope, args.name, args.limit
    )
    print(render.history(args.scope, records))


async def _params_diff(runtime: Runtime, args: argparse.Namespace) -> None:
    diff = await services.diff_versions(runtime.deps, cli_actor(), args.scope, args.old, args.new)
    print(render.version_diff(diff))


async def _params_restore(runtime: Runtime, args: argparse.Namespace) -> None:
    actor = cli_actor()
    if args.backup:
        result = await services.restore_backup(
            runtime.deps, actor, args.backup, args.reason, args.based_on
        )
    else:
        result = await services.restore_version(
            runtime.deps, actor, args.scope, args.version, args.reason, args.based_on
        )
    print(render.change_result(result))


async def _backup_create(runtime: Runtime, args: argparse.Namespace) -> None:
    backup = await services.create_backup(runtime.deps, cli_actor(), args.scope, args.reason)
    print(f"backed up {backup.scope} version {backup.version} as {backup.backup_id}")


async def _backup_list(runtime: Runtime, args: argparse.Namespace) -> None:
    backups = await services.list_backups(runtime.deps, cli_actor(), args.scope, args.limit)
    if not backups:
        print(render.backups([]))
    for backup in backups:  # the id comes first: what `params restore --backup ID` takes
        mark = "  [file only]" if isinstance(backup, services.FileOnlyBackup) else ""
        print(render.backups([backup]) + mark)


async def _learning_start(runtime: Runtime, args: argparse.Namespace) -> None:
    session = await learning.start_learning_session(
        runtime.deps, cli_actor(), args.duration, args.reason, dict(args.relax)
    )
    print(render_learning.started(session))


async def _learning_stop(runtime: Runtime, args: argparse.Namespace) -> None:
    session = await learning.stop_learning_session(runtime.deps, cli_actor(), args.reason)
    print(render_learning.ended(session))


async def _learning_status(runtime: Runtime, _args: argparse.Namespace) -> None:
    print(render_learning.status(await learning.learning_status(runtime.deps, cli_actor())))


async def _learning_history(runtime: Runtime, args: argparse.Namespace) -> None:
    sessions = await learning.learning_history(runtime.deps, cli_actor(), args.limit)
    print(render_learning.history(sessions))


async def _optimize(runtime: Runtime, args: argparse.Namespace) -> None:
    request = optimization.OptimizationRequest(
        scope=args.scope,
        method=args.method,
        lookback_days=args.lookback_days,
        until=args.until,
        seed=args.seed,
    )
    report = await optimization.optimize(runtime.deps, cli_actor(), request, dry_run=args.dry_run)
    print(render_optimizer.cycle_report(report))


async def _backtest(runtime: Runtime, args: argparse.Namespace) -> None:
    policy = runtime.settings.optimizer.policy
    try:
        settings = BacktestSettings(args.cash, args.commission, args.spread)
        candles, _ = load_candles(Path(args.data), args.symbol, args.timeframe, policy.max_gap_bars)
    except (ValueError, OSError) as error:
        raise ValidationError(f"{args.data}: {error}") from None
    report = await optimization.backtest(
        runtime.deps, cli_actor(), candles, args.scope, args.overrides, settings
    )
    if args.json:
        print(json.dumps(render_optimizer.backtest_json(report, candles, settings), indent=2))
    else:
        print(render_optimizer.backtest_text(report, candles))


async def _blocked(runtime: Runtime, args: argparse.Namespace) -> None:
    until = runtime.deps.clock.now()
    found = await blocked_insights.blocked_trade_insights(
        runtime.deps, cli_actor(), until - args.window, until
    )
    print(render_blocked.insights(found))


async def _jobs(runtime: Runtime, _args: argparse.Namespace) -> None:
    print("\n".join(overview_lines(await jobs_overview(runtime))))


async def _db_upgrade(runtime: Runtime, _args: argparse.Namespace) -> None:
    print(f"database schema is up to date ({mask_url(runtime.settings.database_url)})")


async def _run(runtime: Runtime, args: argparse.Namespace) -> None:
    from bot.service import serve

    # Only now, with the database reached and migrated: a run that cannot start leaves no token.
    runtime.settings = with_local_engine_token(runtime.settings)
    await serve(runtime, console_user=args.as_user)


HANDLERS: dict[tuple[str, str | None], Handler] = {
    ("run", None): _run,
    ("db", "upgrade"): _db_upgrade,
    ("params", "show"): _params_show,
    ("params", "set"): _params_set,
    ("params", "reset"): _params_reset,
    ("params", "history"): _params_history,
    ("params", "diff"): _params_diff,
    ("params", "restore"): _params_restore,
    ("backup", "create"): _backup_create,
    ("backup", "list"): _backup_list,
    ("learning", "start"): _learning_start,
    ("learning", "stop"): _learning_stop,
    ("learning", "status"): _learning_status,
    ("learning", "history"): _learning_history,
    ("optimize", None): _optimize,
    ("backtest", None): _backtest,
    ("blocked", None): _blocked,
    ("jobs", None): _jobs,
}


def _handler(args: argparse.Namespace) -> Handler:
    sub = getattr(args, f"{args.command}_command", None)
    return HANDLERS[(args.command, sub)]


def _config_check(args: argparse.Namespace, env: dict[str, str]) -> None:
    if args.file:
        env = {**env, "PARAMADAPT_CONFIG": args.file}
    settings = load_settings(env)
    print(json.dumps(settings.masked(), indent=2))
    print("configuration OK", file=sys.stderr)


def main(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> int:
    try:
        try:
            return _main(sys.argv[1:] if argv is None else list(argv), env)
        finally:
            sys.stdout.flush()  # here, where a closed pipe is handled, rather than at exit
    except BrokenPipeError:
        return _output_closed()


def _main(argv: list[str], env: dict[str, str] | None) -> int:
    env = dict(os.environ) if env is None else env
    try:
        args = _parse(argv)
    except UsageError as usage:
        return _refuse_usage(usage, argv, env)
    if args.command == "simulate":  # a client of the HTTP API: no database, no bot settings
        return simulate.main(args, env)
    try:
        if args.command == "config":
            _config_check(args, env)
            return 0
        settings = load_settings(env)
    except ConfigError as error:
        return _fail(f"configuration error: {error}")
    _configure_logging(settings, verbose=args.command == "run")
    if args.command == "run" and (problem := _cannot_listen(settings.host, settings.port)):
        return _fail(problem, 1)
    try:
        asyncio.run(_execute(settings, args))
    except UserError as error:
        return _fail(str(error))
    except (DBAPIError, OSError) as error:  # OperationalError is a DBAPIError
        return _failed(settings, error)
    except KeyboardInterrupt:
        return 130
    return 0


def _parse(argv: list[str]) -> argparse.Namespace:
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:  # said by the subcommand, which the top-level parser would not name
        command = [args.command, getattr(args, f"{args.command}_command", None)]
        prog = " ".join(["paramadapt", *filter(None, command)])
        raise UsageError(prog, f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _refuse_usage(usage: UsageError, argv: list[str], env: dict[str, str]) -> int:
    """A malformed change is refused like any other: audited through core, one line, exit 2.
    If the refusal cannot be recorded (no database, a bad setting), the line is still what
    the user needs to see: nothing else is said about it."""
    action = CHANGES.get(usage.command)
    if action is not None:
        try:
            settings = load_settings(env)
            _configure_logging(settings, verbose=False)
            asyncio.run(_record_refusal(settings, usage, action, argv))
        except Exception:
            log.debug("refused command line not audited", exc_info=True)
    print(usage.line(), file=sys.stderr)
    return 2


async def _record_refusal(
    settings: Settings, usage: UsageError, action: str, argv: list[str]
) -> None:
    target = "learning" if usage.command[0] == "learning" else _option(argv, "--scope")
    detail = {"command": " ".join(usage.command), "arguments": argv[len(usage.command) :]}
    async with open_runtime(settings) as runtime:
        await services.refuse_change(
            runtime.deps, cli_actor(), action, target or Scope.GLOBAL.value, detail, usage.message
        )


def _option(argv: list[str], name: str) -> str | None:
    """The value given to option `name` (`--scope X` or `--scope=X`), as typed."""
    for index, word in enumerate(argv):
        if word.startswith(f"{name}="):
            return word.partition("=")[2][:128]
        if word == name and index + 1 < len(argv):
            return argv[index + 1][:128]
    return None


async def _execute(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as runtime:
        await _handler(args)(runtime, args)


def _failed(settings: Settings, error: DBAPIError | OSError) -> int:
    if isinstance(error, DBAPIError) or _raised_connecting(error):
        log.debug("database error", exc_info=True)
        where = mask_url(settings.database_url)
        return _fail(f"DATABASE_URL: database unavailable ({where}): {_first_line(error)}", 1)
    if isinstance(error, BrokenPipeError):  # our output was closed: main() ends quietly
        raise error
    if _BIND_FAILED in str(error):  # the port was taken since `_cannot_listen` checked it
        return _fail(_listen_problem(settings.host, settings.port, error), 1)
    log.debug("system error", exc_info=True)
    return _fail(_first_line(error), 1)


# Where an OSError is raised when the database is not reached: SQLAlchemy's pool opening a
# connection (a refused, unreachable or unresolvable server, which the drivers raise as they
# are, unwrapped), or storage.db making the SQLite file's folder. Anywhere else (writing our
# output, a file) an OSError is not the database's.
_CONNECTING = ("sqlalchemy.pool", "storage.db")


def _raised_connecting(error: OSError) -> bool:
    return any(
        str(frame.f_globals.get("__name__", "")).startswith(_CONNECTING)
        for frame, _line in walk_tb(error.__traceback__)
    )


def _output_closed() -> int:
    """Whoever read our output stopped reading (`paramadapt params show | head -1`): nothing
    is wrong and nothing more is said. Python's recipe: stdout goes to /dev/null, so that the
    flush at exit does not fail again; the status is a process's ended by SIGPIPE (128 + 13)."""
    with contextlib.suppress(OSError, ValueError):  # no real stdout (tests capture it)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 128 + signal.SIGPIPE


# Libraries whose DEBUG lines drown paramadapt's own: aiosqlite writes two per database call
# (thousands a minute while idle), matplotlib and PIL a screenful per chart (fonts, PNG
# chunks), asyncio its selector. They log at LOG_LEVEL_LIBRARIES (INFO), never below
# LOG_LEVEL. SQLAlchemy quiets itself (WARNING), alembic is quieted below; Slack's clients
# (slack_sdk, slack_bolt), aiohttp and APScheduler follow LOG_LEVEL: their DEBUG lines are what
# one looks for when Slack, the HTTP API or a job misbehaves (slack_sdk redacts the tokens).
CHATTY_LIBRARIES = ("aiosqlite", "asyncio", "matplotlib", "PIL")


def _configure_logging(settings: Settings, *, verbose: bool) -> None:
    wanted = logging.getLevelName(settings.log_level)
    level = wanted if verbose else max(logging.WARNING, wanted)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    libraries = max(level, logging.getLevelName(settings.log_level_libraries))
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(libraries)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, level))


# asyncio's create_server (under aiohttp's TCPSite) words a failed bind this way
_BIND_FAILED = "error while attempting to bind on address"


def _cannot_listen(host: str, port: int) -> str | None:
    """Why the HTTP server could not listen on host:port (a taken port, an unknown host),
    found by binding every address it would bind, as asyncio does, and letting go."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        with contextlib.ExitStack() as bound:
            for family, kind, proto, _, address in dict.fromkeys(found):
                sock = bound.enter_context(socket.socket(family, kind, proto))
                if os.name == "posix":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
    except OSError as error:
        return _listen_problem(host, port, error)
    return None


def _listen_problem(host: str, port: int, error: OSError) -> str:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    code = error.errno or 0  # a resolver error (socket.gaierror) has its own numbers
    reason = os.strerror(code) if code in errno.errorcode else (error.strerror or str(error))
    return f"HOST/PORT: cannot listen on {where}: {reason[:1].lower()}{reason[1:]}"


def _fail(message: str, code: int = 2) -> int:
    print(f"paramadapt: error: {message}", file=sys.stderr)
    return code


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
