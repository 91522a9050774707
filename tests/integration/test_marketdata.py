"""Loading the real market data files in ../shared/data (next to the repository)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from storage.marketdata import (
    CorruptMarketDataError,
    DataGapError,
    MarketDataNotFoundError,
    MissingRangeError,
    find_market_file,
    load_candles,
)

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
ETH = DATA / "ETH_BTC-5m.feather"
ADA = DATA / "ADA_BTC-5m.feather"
LTC = DATA / "LTC_BTC-5m.json"
CSV = DATA / "UNITTEST_BTC-30m.csv"
FIRST_BAR = np.datetime64("2018-01-10T04:55", "ns")
LAST_BAR = np.datetime64("2018-01-30T04:50", "ns")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_freqtrade_feather_file_loads_with_symbol_and_timeframe_from_its_name() -> None:
    candles, gaps = load_candles(ETH)
    assert (candles.symbol, candles.timeframe, len(candles), gaps) == ("ETH_BTC", "5m", 5760, ())
    assert (candles.times[0], candles.times[-1]) == (FIRST_BAR, LAST_BAR)
    assert np.array_equal(candles.close, pd.read_feather(ETH)["close"].to_numpy())


def test_a_freqtrade_json_file_loads_its_epoch_millisecond_rows() -> None:
    candles, _ = load_candles(LTC, symbol="LTC/BTC")
    first_row = json.loads(LTC.read_text())[0]
    assert (candles.symbol, len(candles), candles.times[0]) == ("LTC/BTC", 5760, FIRST_BAR)
    assert [candles.open[0], candles.high[0], candles.low[0], candles.close[0]] == first_row[1:5]


def test_a_csv_file_with_offset_timestamps_loads_in_utc() -> None:
    candles, _ = load_candles(CSV)
    assert (candles.timeframe, len(candles), candles.bar_seconds) == ("30m", 1920, 1800)
    assert candles.times[0] == np.datetime64("2017-12-03T13:00", "ns")


def test_a_parquet_file_loads_like_the_file_it_was_written_from(tmp_path: Path) -> None:
    parquet = tmp_path / "UNITTEST_BTC-30m.parquet"
    pd.read_csv(CSV, parse_dates=["date"]).to_parquet(parquet)
    from_parquet, from_csv = load_candles(parquet).candles, load_candles(CSV).candles
    assert np.array_equal(from_parquet.times, from_csv.times)
    assert np.array_equal(from_parquet.close, from_csv.close)


def test_a_gap_longer_than_the_limit_is_an_error_naming_symbol_and_range() -> None:
    with pytest.raises(
        DataGapError, match=r"ADA_BTC 5m: .*33 bars from 2018-01-15 12:00 to 2018-01-15 14:40"
    ):
        load_candles(ADA)


def test_gaps_within_the_limit_are_filled_at_the_previous_close_and_reported() -> None:
    candles, gaps = load_candles(ADA, max_gap_bars=33)
    assert len(candles) == 5760
    assert [(gap.start, gap.bars) for gap in gaps] == [
        (utc("2018-01-15T10:10"), 1),
        (utc("2018-01-15T10:30"), 1),
        (utc("2018-01-15T11:10"), 4),
        (utc("2018-01-15T11:45"), 1),
        (utc("2018-01-15T12:00"), 33),
    ]
    filled = np.flatnonzero(candles.times == np.datetime64("2018-01-15T12:00", "ns"))[0]
    previous_close = candles.close[filled - 1]
    assert [
        candles.open[filled],
        candles.high[filled],
        candles.low[filled],
        candles.close[filled],
    ] == [previous_close] * 4
    assert candles.volume[filled] == 0.0


def test_a_long_gap_outside_the_requested_range_does_not_matter() -> None:
    candles, gaps = load_candles(ADA, start=utc("2018-01-20T00:00"), end=utc("2018-01-21T00:00"))
    assert (len(candles), gaps) == (288, ())


def test_a_requested_range_keeps_the_bars_that_open_in_it() -> None:
    candles, _ = load_candles(ETH, start=utc("2018-01-12T00:00"), end=utc("2018-01-12T01:00"))
    assert len(candles) == 12
    assert candles.times[0] == np.datetime64("2018-01-12T00:00", "ns")


def test_a_range_beyond_the_data_is_an_error_naming_symbol_and_range() -> None:
    with pytest.raises(
        MissingRangeError, match=r"ETH_BTC: requested 2018-01-29 00:00 \.\. 2018-02-01 00:00 UTC"
    ):
        load_candles(ETH, start=utc("2018-01-29T00:00"), end=utc("2018-02-01T00:00"))


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        load_candles(ETH, start=datetime(2018, 1, 12))


def copy_rows(source: Path, target: Path, order: list[int]) -> Path:
    lines = source.read_text().splitlines()
    target.write_text("\n".join([lines[0]] + [lines[1 + row] for row in order]) + "\n")
    return target


def test_a_duplicated_timestamp_is_an_error(tmp_path: Path) -> None:
    csv = copy_rows(CSV, tmp_path / "UNITTEST_BTC-30m.csv", [0, 1, 1, 2])
    with pytest.raises(
        CorruptMarketDataError, match=r"UNITTEST_BTC .*duplicate timestamp at 2017-12-03 13:30"
    ):
        load_candles(csv)


def test_timestamps_out_of_order_are_an_error(tmp_path: Path) -> None:
    csv = copy_rows(CSV, tmp_path / "UNITTEST_BTC-30m.csv", [0, 2, 1, 3])
    with pytest.raises(CorruptMarketDataError, match="out of order at 2017-12-03 13:30"):
        load_candles(csv)


def test_timestamps_off_the_timeframe_grid_are_an_error() -> None:
    with pytest.raises(CorruptMarketDataError, match="off the timeframe grid"):
        load_candles(CSV, timeframe="1h")


def test_missing_values_are_an_error(tmp_path: Path) -> None:
    csv = copy_rows(CSV, tmp_path / "UNITTEST_BTC-30m.csv", [0, 1, 2])
    csv.write_text(csv.read_text().replace(",0.04082286,1309", ",,1309"))
    with pytest.raises(CorruptMarketDataError, match="missing values"):
        load_candles(csv)


@pytest.mark.parametrize(
    ("symbol", "expected"), [("ETH/BTC", ETH), ("ETH_BTC", ETH), ("LTC/BTC", LTC)]
)
def test_market_files_are_found_by_pair_and_timeframe(symbol: str, expected: Path) -> None:
    assert find_market_file(DATA, symbol, "5m") == expected


def test_a_pair_without_a_file_is_an_error_naming_the_files_looked_for() -> None:
    with pytest.raises(MarketDataNotFoundError, match=r"XRP_BTC-5m\.feather"):
        find_market_file(DATA, "XRP/BTC", "5m")
