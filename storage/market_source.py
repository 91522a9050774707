"""Where the optimizer's candles come from; implements core.ports.MarketData.

A file in the market data directory (MARKET_DATA_DIR; formats in storage.marketdata) comes
first; without one, the candles the engine reported (POST /candles). Either way the same
checks apply: short gaps are filled and reported, a longer gap, a range not covered or bars
out of order raise core.market.MarketDataError naming the symbol and the range.

A file is read once and kept while its size and modification time stay the same, so asking
for several ranges (each run, each volatility check) does not parse it again.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from core.backtest import timeframe_seconds
from core.market import LoadedCandles, MarketDataNotFoundError
from storage.candle_store import SqlCandleStore
from storage.marketdata import Bars, candles_in_range, find_market_file, read_market_file


class MarketDataSource:
    def __init__(self, directory: Path | None, stored: SqlCandleStore, max_gap_bars: int) -> None:
        self._directory = directory
        self._stored = stored
        self._max_gap_bars = max_gap_bars
        self._files: dict[Path, tuple[tuple[int, int], Bars]] = {}

    async def candles(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> LoadedCandles:
        path = self._file(symbol, timeframe)
        if path is not None:
            bars = await asyncio.to_thread(self._read, path, symbol, timeframe)
        else:
            # A short gap right at `start` is filled from the bar before it, as in a file.
            margin = timedelta(seconds=timeframe_seconds(timeframe) * (self._max_gap_bars + 1))
            found = await self._stored.bars(symbol, timeframe, start - margin, end)
            if found is None:
                where = f"no file in {self._directory}" if self._directory else "no MARKET_DATA_DIR"
                raise MarketDataNotFoundError(
                    f"no market data for {symbol} {timeframe}: {where} and no candles "
                    "reported by the engine"
                )
            bars = found
        return await asyncio.to_thread(
            candles_in_range, symbol, timeframe, bars, self._max_gap_bars, start, end
        )

    def _file(self, symbol: str, timeframe: str) -> Path | None:
        if self._directory is None:
            return None
        try:
            return find_market_file(self._directory, symbol, timeframe)
        except MarketDataNotFoundError:
            return None

    def _read(self, path: Path, symbol: str, timeframe: str) -> Bars:
        status = path.stat()
        version = (status.st_mtime_ns, status.st_size)
        cached = self._files.get(path)
        if cached is None or cached[0] != version:
            cached = version, read_market_file(path, symbol, timeframe)
            self._files[path] = cached
        return cached[1]
