"""`paramadapt simulate`: a simulated trading engine playing against the bot's HTTP API.

It reports simulated candles (the last `--history-days` at start, then each bar as it
completes), and engine events at `--rate` per second from core.simulation: signals of the
reference strategy that a risk rule blocked (POST /blocked-trades) and closed trades with
their PnL (POST /trades). The engine trades with the parameters GET /parameters gives it,
re-read every few seconds, so a learning session or an optimizer's change shows in what it
does. Events are stamped when they are sent: the simulated market runs faster than the
clock (fast-forward), so alerts, learning sessions, trade counters and digests see them now.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from bot.local_token import read_local_engine_token
from bot.webhook.signing import signed_headers
from core.backtest import timeframe_seconds
from core.market import Bar
from core.params import Scope
from core.simulation import (
    RandomWalk,
    SimBlocked,
    SimClosed,
    SimEvent,
    SimSymbol,
    SimulatedEngine,
    as_bars,
    candle_history,
    simulated_symbol,
)

DEFAULT_SYMBOLS = ("BTC-SIM=HIGH", "ETH-SIM=MEDIUM", "EUR-SIM=LOW")
LEVELS = (Scope.HIGH, Scope.MEDIUM, Scope.LOW)
SUMMARY_SECONDS = 5.0
PARAMS_SECONDS = 5.0
MAX_CANDLES_PER_POST = 5000
MAX_RETRY_AFTER = 60.0
MAX_BARS_PER_SECOND = 5000  # of the simulated market: about 17 days of 5-minute bars
AUTH_HELP = (
    "paramadapt simulate reports events as the engine, with a bearer token the bot accepts: "
    'an [[api_tokens]] entry with scopes = ["engine"] in the bot\'s PARAMADAPT_CONFIG, whose '
    "token_env variable holds the same value in both terminals. Without one, a bot in console "
    "mode (`make run`) keeps a local token in var/engine-token, which simulate reads when run "
    "from the same directory; `make demo` and `make simulate` share a generated token too"
)


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, ending early when `stop` is set; yield to the event loop (Ctrl-C) in any case."""
    if seconds <= 0:
        await asyncio.sleep(0)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class SimulationStopped(Exception):
    """The bot refused a request (4xx) or cannot be reached: the simulation cannot go on."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class SimulateOptions:
    url: str
    token: str = field(repr=False)
    secret: str = field(default="", repr=False)  # ENGINE_WEBHOOK_SECRET: requests are signed
    rate: float = 2.0  # engine events per second
    symbols: tuple[SimSymbol, ...] = ()
    minutes: float | None = None  # None: until Ctrl-C
    seed: int = 0
    history_days: float = 30.0
    timeframe: str = "5m"
    connections: int = 1  # event requests in flight at once
    quiet: bool = False  # no summary lines (the load benchmark prints its own)


@dataclass
class Tally:
    """What the simulation sent and how the bot answered; `latencies` are seconds."""

    started: float = field(default_factory=time.monotonic)
    blocked: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    pnl: float = 0.0
    candles: int = 0
    retries: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)  # by POST path
    min_confidence: float | None = None

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        events = len(self.blocked) + len(self.closed)
        rate = events / elapsed if elapsed > 0 else 0.0
        minutes, seconds = divmod(int(elapsed), 60)
        shown = "?" if self.min_confidence is None else f"{self.min_confidence:g}"
        return (
            f"simulate {minutes}:{seconds:02d} | blocked {len(self.blocked)}, closed "
            f"{len(self.closed)} (PnL {self.pnl:+.2f}) | {rate:.1f} events/s | candles "
            f"{self.candles} | retries {self.retries} | min_confidence {shown}"
        )


class EngineClient:
    """The engine's side of the HTTP API: a bearer token, signatures when a secret is set,
    429 and 503 retried after the Retry-After the bot asks for, any other error fatal."""

    def __init__(
        self, http: aiohttp.ClientSession, options: SimulateOptions, stop: asyncio.Event
    ) -> None:
        self._http = http
        self._options = options
        self._stop = stop

    async def get(self, path: str, query: Mapping[str, str], tally: Tally) -> Any:
        return await self._send("GET", path, None, tally, query)

    async def post(self, path: str, body: Mapping[str, Any], tally: Tally) -> Any:
        return await self._send("POST", path, json.dumps(body).encode(), tally)

    async def _send(
        self,
        method: str,
        path: str,
        raw: bytes | None,
        tally: Tally,
        query: Mapping[str, str] | None = None,
    ) -> Any:
        while True:
            started = time.perf_counter()
            try:
                async with self._http.request(
                    method, self._options.url + path, data=raw, params=query,
                    headers=self._headers(raw),
                ) as response:  # fmt: skip
                    text = await response.text()
                    status, retry_after = response.status, response.headers.get("Retry-After")
            except aiohttp.ClientConnectionError as error:
                raise SimulationStopped(
                    f"cannot reach the bot at {self._options.url} ({error}); start it first "
                    "(`make demo` or `make run`) or pass --url",
                    exit_code=1,
                ) from None
            if status in (429, 503):
                tally.retries += 1
                await self._back_off(retry_after)
                if self._stop.is_set():
                    return None  # stopped while waiting: not sent
                continue
            if status >= 400:
                raise SimulationStopped(_refusal(method, path, status, text))
            if method == "POST":
                tally.latencies.setdefault(path, []).append(time.perf_counter() - started)
            return json.loads(text) if text else None

    def _headers(self, raw: bytes | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._options.token}"}
        if raw is not None:
            headers["Content-Type"] = "application/json"
        if self._options.secret:
            headers |= signed_headers(self._options.secret, int(time.time()), raw or b"")
        return headers

    async def _back_off(self, retry_after: str | None) -> None:
        try:
            seconds = min(MAX_RETRY_AFTER, max(0.1, float(retry_after or 1)))
        except ValueError:  # an HTTP date: not worth parsing for a simulator
            seconds = 1.0
        await sleep_unless(self._stop, seconds)


def _refusal(method: str, path: str, status: int, text: str) -> str:
    message = f"{method} {path} was refused with HTTP {status}: {text.strip() or '(no body)'}"
    if status in (401, 403):
        message += f"\n{AUTH_HELP}"
    return message


class Simulator:
    """Plays the engine until `stop` is set or `options.minutes` have passed."""

    def __init__(self, options: SimulateOptions, stop: asyncio.Event) -> None:
        self.options = options
        self.tally = Tally()
        self._stop = stop
        self.run_id = f"sim{options.seed}-{secrets.token_hex(3)}"  # prefixes every event key
        self._engine = SimulatedEngine(
            options.symbols, options.seed, self.run_id, options.timeframe
        )
        self._bar = timedelta(seconds=timeframe_seconds(options.timeframe))
        self._params: dict[Scope, dict[str, float]] = {}
        self._versions: dict[Scope, int] = {}
        self._walks: list[RandomWalk] = []
        self._next_bar_open = datetime.min.replace(tzinfo=UTC)
        self._connections = asyncio.Semaphore(options.connections)  # requests in flight
        self._dispatched = 0

    async def run(self, http: aiohttp.ClientSession) -> Tally:
        client = EngineClient(http, self.options, self._stop)
        await self._read_parameters(client)
        await self._report_history(client)
        self.tally.started = time.monotonic()
        try:
            async with asyncio.TaskGroup() as requests:  # waits for the requests in flight
                await self._play(client, requests)
        except* SimulationStopped as failed:
            raise failed.exceptions[0] from None
        self._say(self.tally.line())
        return self.tally

    async def _play(self, client: EngineClient, requests: asyncio.TaskGroup) -> None:
        deadline = math.inf if self.options.minutes is None else self.options.minutes * 60
        summary_at, params_at = SUMMARY_SECONDS, PARAMS_SECONDS
        while not self._stop.is_set():
            elapsed = time.monotonic() - self.tally.started
            if elapsed >= deadline:
                return
            if elapsed >= params_at:
                await self._read_parameters(client)
                params_at = elapsed + PARAMS_SECONDS
            if elapsed >= summary_at:
                self._say(self.tally.line())
                summary_at = elapsed + SUMMARY_SECONDS
            await self._report_live_bars(client)
            await self._pace_bars()
            for event in self._engine.step(self._params):
                await self._pace()
                await self._connections.acquire()
                if self._stop.is_set():
                    self._connections.release()
                    return
                self._dispatched += 1
                requests.create_task(self._report(client, event))

    def _say(self, line: str) -> None:
        if not self.options.quiet:
            print(line, flush=True)

    async def _pace(self) -> None:
        """Send the n-th event no earlier than n / rate seconds after the start."""
        due = self.tally.started + self._dispatched / self.options.rate
        await sleep_unless(self._stop, due - time.monotonic())

    async def _pace_bars(self) -> None:
        """A market without signals (strict parameters) must not spin the CPU."""
        due = self.tally.started + self._engine.bar / MAX_BARS_PER_SECOND
        await sleep_unless(self._stop, due - time.monotonic())

    async def _read_parameters(self, client: EngineClient) -> None:
        for level in sorted({symbol.level for symbol in self.options.symbols}):
            answer = await client.get("/parameters", {"scope": level.value}, self.tally)
            if answer is None:  # stopped
                return
            self._params[level] = answer["parameters"]
            self._versions[level] = answer["version"]
        self.tally.min_confidence = min(p["min_confidence"] for p in self._params.values())

    async def _report_history(self, client: EngineClient) -> None:
        count = int(self.options.history_days * 86_400 / self._bar.total_seconds())
        last_open = _bar_open(datetime.now(UTC), self._bar) - self._bar  # the last whole bar
        self._next_bar_open = last_open + self._bar
        for symbol in self.options.symbols:
            walk, bars = candle_history(
                symbol, self.options.seed, last_open - (count - 1) * self._bar,
                self.options.timeframe, count,
            )  # fmt: skip
            self._walks.append(walk)
            for first in range(0, len(bars), MAX_CANDLES_PER_POST):
                await self._post_candles(client, symbol, bars[first : first + MAX_CANDLES_PER_POST])

    async def _report_live_bars(self, client: EngineClient) -> None:
        """Each bar of the simulated market once it has closed, so the data stays current."""
        while datetime.now(UTC) >= self._next_bar_open + self._bar:
            for symbol, walk in zip(self.options.symbols, self._walks, strict=True):
                bars = as_bars(walk.bars(1), self._next_bar_open, self.options.timeframe)
                await self._post_candles(client, symbol, bars)
            self._next_bar_open += self._bar

    async def _post_candles(self, client: EngineClient, symbol: SimSymbol, bars: list[Bar]) -> None:
        if not bars:
            return
        body = {
            "symbol": symbol.name,
            "timeframe": self.options.timeframe,
            "candles": [_candle(bar) for bar in bars],
        }
        if await client.post("/candles", body, self.tally):
            self.tally.candles += len(bars)

    async def _report(self, client: EngineClient, event: SimEvent) -> None:
        try:
            await self._send(client, event)
        finally:
            self._connections.release()

    async def _send(self, client: EngineClient, event: SimEvent) -> None:
        now = datetime.now(UTC)
        if isinstance(event, SimBlocked):
            if await client.post("/blocked-trades", blocked_payload(event, now), self.tally):
                self.tally.blocked.append(event.key)
        else:
            version = self._versions.get(event.level)
            body = closed_payload(event, now, self._bar, version)
            if await client.post("/trades", body, self.tally):
                self.tally.closed.append(event.key)
                self.tally.pnl += event.pnl


def blocked_payload(event: SimBlocked, now: datetime) -> dict[str, Any]:
    return {
        "event_id": event.key,
        "timestamp": now.isoformat(),
        "symbol": event.symbol,
        "signal": "BUY",
        "block_reason": event.reason,
        "rsi": event.rsi,
        "price": event.price,
        "confidence": event.confidence,
        "risk_level": event.level.value,
        "data": event.data,
    }


def closed_payload(
    event: SimClosed, now: datetime, bar: timedelta, version: int | None
) -> dict[str, Any]:
    """Closed now, held for as many bars as in the simulated market."""
    body = {
        "trade_id": event.key,
        "symbol": event.symbol,
        "side": "BUY",
        "entry_time": (now - (event.bar - event.entry_bar) * bar).isoformat(),
        "exit_time": now.isoformat(),
        "entry_price": event.entry_price,
        "exit_price": event.exit_price,
        "quantity": event.quantity,
        "pnl": event.pnl,
        "pnl_pct": event.pnl_pct,
        "volatility_level": event.level.value,
    }
    return body if version is None else {**body, "config_version": version}


def _candle(bar: Bar) -> dict[str, Any]:
    return {
        "time": bar.time.isoformat(),
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": bar.volume,
    }


def _bar_open(moment: datetime, bar: timedelta) -> datetime:
    seconds = int(moment.timestamp()) // int(bar.total_seconds()) * int(bar.total_seconds())
    return datetime.fromtimestamp(seconds, UTC)


# --- the command line --------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="play a simulated trading engine against the running bot's HTTP API",
        description="Report simulated candles, blocked trades and closed trades to a running "
        "`paramadapt run`, as a trading engine would. Everything simulated ends in -SIM.",
    )
    simulate.add_argument(
        "--rate", type=_positive, default=2.0, metavar="N", help="engine events per second (2)"
    )
    simulate.add_argument(
        "--symbols",
        nargs="+",
        type=_symbol,
        default=[_symbol(text) for text in DEFAULT_SYMBOLS],
        metavar="SYMBOL[=LEVEL]",
        help="symbols and their volatility level, HIGH, MEDIUM or LOW (default: "
        f"{' '.join(DEFAULT_SYMBOLS)}; without a level they take turns); -SIM is appended",
    )
    simulate.add_argument(
        "--minutes", type=_positive, metavar="M", help="stop after M minutes (default: Ctrl-C)"
    )
    simulate.add_argument(
        "--url", help="the bot's HTTP API (default: http://127.0.0.1:$PORT, PORT 8080)"
    )
    simulate.add_argument(
        "--token-env",
        default="ENGINE_API_TOKEN",
        metavar="NAME",
        help="environment variable holding an engine token from [[api_tokens]] "
        "(ENGINE_API_TOKEN); requests are also signed when ENGINE_WEBHOOK_SECRET is set",
    )
    simulate.add_argument(
        "--connections",
        type=_whole,
        default=1,
        metavar="N",
        help="event requests in flight at once (1); more sustain a --rate above what one "
        "connection's latency allows",
    )
    simulate.add_argument(
        "--seed", type=int, help="seed of the simulated market (default: random, printed)"
    )
    simulate.add_argument(
        "--history-days",
        type=float,
        default=30.0,
        metavar="D",
        help="days of candles reported at start, for the optimizer (30, its lookback)",
    )


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _whole(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def _symbol(text: str) -> tuple[str, Scope | None]:
    name, _, level = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"a symbol is needed before '=', got {text!r}")
    if not level:
        return simulated_symbol(name), None
    try:
        scope = Scope(level.upper())
    except ValueError:
        scope = Scope.GLOBAL
    if scope is Scope.GLOBAL:
        raise argparse.ArgumentTypeError(f"level must be HIGH, MEDIUM or LOW, got {level!r}")
    return simulated_symbol(name), scope


def sim_symbols(chosen: Sequence[tuple[str, Scope | None]]) -> tuple[SimSymbol, ...]:
    """Symbols without a level take HIGH, MEDIUM and LOW in turn."""
    return tuple(
        SimSymbol(name, level or LEVELS[index % len(LEVELS)], start_price=100.0 * (index + 1))
        for index, (name, level) in enumerate(chosen)
    )


def options_from(args: argparse.Namespace, env: Mapping[str, str]) -> SimulateOptions:
    token = env.get(args.token_env, "") or read_local_engine_token()
    if not token:
        raise SimulationStopped(f"{args.token_env} is not set.\n{AUTH_HELP}")
    return SimulateOptions(
        url=(args.url or f"http://127.0.0.1:{env.get('PORT') or 8080}").rstrip("/"),
        token=token,
        secret=env.get("ENGINE_WEBHOOK_SECRET", ""),
        rate=args.rate,
        connections=args.connections,
        symbols=sim_symbols(args.symbols),
        minutes=args.minutes,
        seed=secrets.randbits(31) if args.seed is None else args.seed,
        history_days=args.history_days,
    )


async def simulate(options: SimulateOptions, stop: asyncio.Event) -> Tally:
    async with aiohttp.ClientSession() as http:
        return await Simulator(options, stop).run(http)


async def _until_signalled(options: SimulateOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await simulate(options, stop)


def main(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        options = options_from(args, env)
        symbols = ", ".join(f"{s.name} ({s.level})" for s in options.symbols)
        print(
            f"simulated engine → {options.url}: seed {options.seed}, {options.rate:g} events/s, "
            f"{symbols}; Ctrl-C stops",
            flush=True,
        )
        asyncio.run(_until_signalled(options))
    except SimulationStopped as error:
        print(f"paramadapt simulate: error: {error}", file=sys.stderr)
        return error.exit_code
    return 0
