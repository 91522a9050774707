"""Loading OHLCV candles from market data files.

Supported layouts (columns date, open, high, low, close, volume):

* ``.feather`` and ``.parquet``: freqtrade's layout, ``date`` as a datetime column (UTC if naive);
* ``.json``: freqtrade's ``[[epoch_ms, open, high, low, close, volume], ...]``;
* ``.csv``: a header row, ``date`` as ISO timestamps with a UTC offset.

Files are named like freqtrade names them, ``<PAIR>-<TIMEFRAME>.<ext>`` with the pair's ``/`` (and
other separators) replaced by ``_``: ``ETH_BTC-5m.feather``.

Missing bars are filled as freqtrade fills them (open, high, low and close at the previous
close, zero volume) and reported. Data that cannot be trusted raises a ``MarketDataError``
naming the symbol and the range: a gap longer than ``max_gap_bars``, a requested range the file
does not cover, timestamps out of order, duplicated or off the timeframe's grid, or missing
values.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.backtest import Candles, timeframe_seconds
from core.market import Gap, LoadedCandles, MarketDataError, MarketDataNotFoundError

__all__ = [
    "CorruptMarketDataError",
    "DataGapError",
    "Gap",
    "LoadedCandles",
    "MarketDataError",
    "MarketDataNotFoundError",
    "MissingRangeError",
    "candles_in_range",
    "find_market_file",
    "load_candles",
    "market_file_name",
    "read_market_file",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Gaps up to an hour of 5-minute bars are filled; a longer outage distorts the indicators.
DEFAULT_MAX_GAP_BARS = 12
# Preference order when several files hold the same pair and timeframe.
MARKET_FILE_EXTENSIONS = ("feather", "parquet", "json", "csv")

_COLUMNS = ("date", "open", "high", "low", "close", "volume")
_PRICE_COLUMNS = _COLUMNS[1:5]
_FILE_NAME = re.compile(r"(?P<pair>.+)-(?P<timeframe>[0-9]+[mhdw])")
_PAIR_SEPARATORS = re.compile(r"[/ .@$+:]")
_NS_PER_SECOND = 10**9
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CorruptMarketDataError(MarketDataError):
    """Unreadable layout, missing values, or timestamps out of order, duplicated or off-grid."""


class MissingRangeError(MarketDataError):
    """The file does not cover the requested range."""


class DataGapError(MarketDataError):
    """A gap in the requested range is longer than allowed."""


Bars = tuple[IntArray, dict[str, FloatArray]]  # open times (UTC ns) and OHLCV columns


def market_file_name(symbol: str, timeframe: str, extension: str) -> str:
    """freqtrade's file name for a pair: ``ETH/BTC``, ``5m``, ``feather`` -> ETH_BTC-5m.feather."""
    return f"{_PAIR_SEPARATORS.sub('_', symbol)}-{timeframe}.{extension}"


def find_market_file(directory: Path, symbol: str, timeframe: str) -> Path:
    """The file of ``symbol`` (``ETH/BTC`` or ``ETH_BTC``) at ``timeframe`` in ``directory``."""
    timeframe_seconds(timeframe)
    names = [market_file_name(symbol, timeframe, ext) for ext in MARKET_FILE_EXTENSIONS]
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise MarketDataNotFoundError(
        f"no market data for {symbol} {timeframe} in {directory} (looked for {', '.join(names)})"
    )


def load_candles(
    path: Path,
    symbol: str | None = None,
    timeframe: str | None = None,
    max_gap_bars: int = DEFAULT_MAX_GAP_BARS,
    start: datetime | None = None,
    end: datetime | None = None,
) -> LoadedCandles:
    """Candles from ``path`` with bar open times in ``[start, end)``, gaps filled.

    ``symbol`` and ``timeframe`` default to those in a freqtrade file name (the pair part as
    written, e.g. ``ETH_BTC``). ``start`` and ``end`` must be timezone-aware and default to the
    whole file.
    """
    symbol, timeframe = _name_parts(path, symbol, timeframe)
    bars = read_market_file(path, symbol, timeframe)
    return candles_in_range(symbol, timeframe, bars, max_gap_bars, start, end)


def candles_in_range(
    symbol: str,
    timeframe: str,
    bars: Bars,
    max_gap_bars: int = DEFAULT_MAX_GAP_BARS,
    start: datetime | None = None,
    end: datetime | None = None,
) -> LoadedCandles:
    """Candles with open times in ``[start, end)`` from bars in increasing time order, gaps
    filled; the checks of ``load_candles`` for the range and the gaps."""
    times, columns = bars
    bar = timeframe_seconds(timeframe) * _NS_PER_SECOND
    first_wanted = times[0] if start is None else _nanoseconds(start)
    end_wanted = times[-1] + bar if end is None else _nanoseconds(end)
    _check_coverage(times, bar, first_wanted, end_wanted, symbol)
    gaps = _gaps(times, bar, first_wanted, end_wanted)
    too_long = [gap for gap in gaps if gap.bars > max_gap_bars]
    if too_long:
        first = too_long[0]
        raise DataGapError(
            f"{symbol} {timeframe}: {len(too_long)} gap(s) longer than {max_gap_bars} bars, "
            f"the first of {first.bars} bars from {first.start:%Y-%m-%d %H:%M} "
            f"to {first.end:%Y-%m-%d %H:%M} UTC"
        )
    grid_times, filled = _fill_gaps(times, columns, bar)
    wanted = slice(*np.searchsorted(grid_times, [first_wanted, end_wanted]))
    candles = Candles(
        symbol,
        timeframe,
        grid_times[wanted].astype("datetime64[ns]"),
        *(filled[name][wanted] for name in _COLUMNS[1:]),
    )
    if not len(candles):
        raise MissingRangeError(f"{symbol} {timeframe}: no bar opens in the requested range")
    return LoadedCandles(candles, tuple(gaps))


def _name_parts(path: Path, symbol: str | None, timeframe: str | None) -> tuple[str, str]:
    match = _FILE_NAME.fullmatch(path.name.removesuffix(path.suffix))
    symbol = symbol or (match["pair"] if match else None)
    timeframe = timeframe or (match["timeframe"] if match else None)
    if symbol is None or timeframe is None:
        raise ValueError(f"{path.name}: pass symbol and timeframe (not a PAIR-TIMEFRAME name)")
    return symbol, timeframe


def read_market_file(path: Path, symbol: str, timeframe: str) -> Bars:
    """The file's bars as stored, checked to be in order on the timeframe's grid."""
    times, columns = _read(path)
    _check_order(times, timeframe_seconds(timeframe) * _NS_PER_SECOND, symbol, path)
    return times, columns


def _read(path: Path) -> Bars:
    """Bar open times (UTC nanoseconds) and float64 OHLCV columns, as stored."""
    frame = _read_frame(path)
    if frame.empty:
        raise CorruptMarketDataError(f"{path.name}: no bars")
    missing = [name for name in _COLUMNS if name not in frame.columns]
    if missing:
        raise CorruptMarketDataError(f"{path.name}: missing column(s) {', '.join(missing)}")
    if frame[list(_COLUMNS)].isna().any(axis=None):
        raise CorruptMarketDataError(f"{path.name}: missing values")
    if path.suffix == ".json":
        dates = pd.to_datetime(frame["date"].astype(np.int64), unit="ms", utc=True)
    else:
        dates = pd.to_datetime(frame["date"], utc=True)
    times = dates.dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    columns = {name: frame[name].to_numpy(dtype=np.float64) for name in _COLUMNS[1:]}
    return times, columns


def _read_frame(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".feather":
            return pd.read_feather(path)
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path)
        if path.suffix == ".json":
            return pd.DataFrame(json.loads(path.read_text()), columns=list(_COLUMNS))
    except ValueError as error:  # includes pyarrow's and json's decoding errors
        raise CorruptMarketDataError(f"{path.name}: unreadable ({error})") from error
    raise MarketDataError(f"{path.name}: unsupported format {path.suffix!r}")


def _check_order(times: IntArray, bar: int, symbol: str, path: Path) -> None:
    steps = np.diff(times)
    problems = (
        (steps == 0, "duplicate timestamp"),
        (steps < 0, "timestamps out of order"),
        (steps % bar != 0, "timestamp off the timeframe grid"),
    )
    for bad, problem in problems:
        if bad.any():
            at = _datetime(times[int(np.argmax(bad)) + 1])
            raise CorruptMarketDataError(
                f"{symbol} ({path.name}): {problem} at {at:%Y-%m-%d %H:%M}"
            )


def _check_coverage(times: IntArray, bar: int, start: int, end: int, symbol: str) -> None:
    if not start < end:
        raise ValueError(f"{symbol}: empty range {_span(start, end)}")
    covered_end = times[-1] + bar
    if start < times[0] or end > covered_end:
        raise MissingRangeError(
            f"{symbol}: requested {_span(start, end)}, "
            f"but the data covers {_span(int(times[0]), int(covered_end))}"
        )


def _gaps(times: IntArray, bar: int, start: int, end: int) -> list[Gap]:
    """Runs of missing bars that overlap ``[start, end)``."""
    after = np.flatnonzero(np.diff(times) > bar)
    first_missing, last_missing = times[after] + bar, times[after + 1] - bar
    overlapping = (first_missing < end) & (last_missing >= start)
    return [
        Gap(_datetime(first), _datetime(last), int((last - first) // bar) + 1)
        for first, last in zip(
            first_missing[overlapping].tolist(), last_missing[overlapping].tolist(), strict=True
        )
    ]


def _fill_gaps(
    times: IntArray, columns: dict[str, FloatArray], bar: int
) -> tuple[IntArray, dict[str, FloatArray]]:
    """Every bar from the first to the last; a missing bar at the previous close, no volume."""
    slot = (times - times[0]) // bar
    bars = int(slot[-1]) + 1
    latest = np.zeros(bars, dtype=np.int64)
    latest[slot] = np.arange(len(times))
    np.maximum.accumulate(latest, out=latest)
    present = np.zeros(bars, dtype=np.bool_)
    present[slot] = True
    previous_close = columns["close"][latest]
    filled = {
        name: np.where(present, columns[name][latest], previous_close) for name in _PRICE_COLUMNS
    }
    filled["volume"] = np.where(present, columns["volume"][latest], 0.0)
    return times[0] + np.arange(bars) * bar, filled


def _nanoseconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"{moment} has no timezone; pass an aware datetime (e.g. UTC)")
    return int(pd.Timestamp(moment).as_unit("ns").value)


def _datetime(nanoseconds: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(nanoseconds) // 1000)


def _span(first: int, last: int) -> str:
    return f"{_datetime(first):%Y-%m-%d %H:%M} .. {_datetime(last):%Y-%m-%d %H:%M} UTC"
