"""`paramadapt blocked` as an operator meets it, on SQLite and PostgreSQL, over the real
ETH/BTC 5-minute candles of /work/shared/data moved in time to end a day ago."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from bot.config import Settings
from bot.runtime import open_runtime
from core import trades
from core.authz import Actor, Role
from core.models import BlockedTradeEvent, Side
from tests.integration.test_cli import run

DATA = Path("/work/shared/data/ETH_BTC-5m.feather")
ENGINE = Actor.having("engine", "api", Role.ENGINE)
BAR = timedelta(minutes=5)


@pytest.fixture
def last_bar(tmp_path: Path) -> datetime:
    """Writes the candles to tmp_path/market, the last bar opening a day ago; returns it."""
    now = datetime.now(UTC)
    last = datetime(1970, 1, 1, tzinfo=UTC) + (now - timedelta(days=1)).timestamp() // 300 * BAR
    frame = pd.read_feather(DATA)
    frame["date"] += pd.Timestamp(last) - frame["date"].iloc[-1]
    (tmp_path / "market").mkdir()
    frame.to_feather(tmp_path / "market" / DATA.name)
    return last


@pytest.fixture
def env(database_url: str, backup_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "BACKUP_DIR": str(backup_dir),
        "MARKET_DATA_DIR": str(tmp_path / "market"),
    }


def block(env: dict[str, str], *events: tuple[str, str, datetime]) -> None:
    """The engine reports blocked BUY signals: (event id, symbol, time)."""

    async def ingest() -> None:
        settings = Settings(database_url=env["DATABASE_URL"], backup_dir=Path(env["BACKUP_DIR"]))
        async with open_runtime(settings) as runtime:
            await trades.ingest_blocked_trades(
                runtime.deps,
                ENGINE,
                [
                    BlockedTradeEvent(key, at, symbol, Side.BUY, "min_confidence", confidence=0.6)
                    for key, symbol, at in events
                ],
            )

    asyncio.run(ingest())


def test_blocked_prints_the_statistics_recommendations_and_what_was_not_evaluated(
    env: dict[str, str], last_bar: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    block(
        env,
        ("days ago", "ETH/BTC", last_bar - timedelta(days=2)),
        ("hours ago", "ETH/BTC", last_bar - timedelta(hours=3)),
        ("after the data", "ETH/BTC", last_bar + timedelta(hours=2)),
        ("no data", "XRP/BTC", last_bar),
    )
    capsys.readouterr()
    assert run(env, "blocked", "--window", "7d") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith(": 4 blocked, 2 evaluated, 2 not evaluated")
    assert "\n  all             n=2 " in out
    assert "\nby block reason:\n  min_confidence  n=2 " in out
    assert "\nby confidence:\n  0.60–0.65       n=2 " in out
    assert "\nrecommendations: none (each needs at least 30 won or lost trades" in out
    assert "(min_confidence, event no data): no market data for XRP/BTC 5m: no file in" in out
    assert "(min_confidence, event after the data): no usable 5m bar after the block: " in out


def test_a_malformed_window_is_refused_with_the_expected_form(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(env, "blocked", "--window", "7x") == 2
    assert "window must look like 24h, 7d or 2w" in capsys.readouterr().err
