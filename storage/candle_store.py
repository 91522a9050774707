"""Candles the engine reports, on SQLAlchemy; implements core.ports.CandleStore.

Symbols are stored by their key (core.market.symbol_key), so ETH/BTC and ETH_BTC are one pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.market import Bar, symbol_key
from storage.db import dialect_insert
from storage.marketdata import Bars
from storage.tables import CandleRow

_OHLCV = ("open", "high", "low", "close", "volume")


class SqlCandleStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add_candles(
        self, symbol: str, timeframe: str, bars: Sequence[Bar], received_at: datetime
    ) -> int:
        if not bars:
            return 0
        key = symbol_key(symbol)
        rows = [
            {"symbol": key, "timeframe": timeframe, "time": bar.time, "received_at": received_at}
            | {name: getattr(bar, name) for name in _OHLCV}
            for bar in bars
        ]
        async with self._sessions.begin() as session:
            statement = (
                dialect_insert(session, CandleRow)
                .on_conflict_do_nothing(index_elements=["symbol", "timeframe", "time"])
                .returning(CandleRow.time)
            )
            return len((await session.execute(statement, rows)).all())

    async def bars(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> Bars | None:
        """The stored bars opening in [start, end) in time order; None if there are none."""
        query = (
            select(CandleRow.time, *(getattr(CandleRow, name) for name in _OHLCV))
            .where(
                CandleRow.symbol == symbol_key(symbol),
                CandleRow.timeframe == timeframe,
                CandleRow.time >= start,
                CandleRow.time < end,
            )
            .order_by(CandleRow.time)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        if not rows:
            return None
        times = np.array([_nanoseconds(row[0]) for row in rows], dtype=np.int64)
        columns = {
            name: np.array([row[i + 1] for row in rows], dtype=np.float64)
            for i, name in enumerate(_OHLCV)
        }
        return times, columns


def _nanoseconds(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=moment.tzinfo)) // timedelta(microseconds=1) * 1000
