"""`paramadapt optimize` and `paramadapt backtest` as an operator meets them, on SQLite and
PostgreSQL, on the real candles of ../shared/data (which end 2018-01-30 04:55 UTC)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from core.backtest import BacktestSettings, run_backtest
from storage.marketdata import load_candles

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
ETH = DATA / "ETH_BTC-5m.feather"
UNTIL = "2018-01-30T04:55Z"
CONFIG = """
[optimizer]
lookback_days = 19
seed = 11

[optimizer.symbols]
ETH_BTC = "HIGH"
LTC_BTC = "HIGH"
"""
BASELINE = {
    "long_rsi_entry": "40",
    "long_adx_min": "22",
    "sl_atr_multiplier": "1.0",
    "tp_atr_multiplier": "2.0",
}


@pytest.fixture
def env(database_url: str, backup_dir: Path, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "paramadapt.toml"
    config.write_text(CONFIG)
    return {
        "DATABASE_URL": database_url,
        "BACKUP_DIR": str(backup_dir),
        "MARKET_DATA_DIR": str(DATA),
        "PARAMADAPT_CONFIG": str(config),
    }


def run(env: dict[str, str], *argv: str) -> int:
    try:
        return main(list(argv), env)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def set_baseline(env: dict[str, str]) -> None:
    for name, value in BASELINE.items():
        assert run(env, "params", "set", name, value, "--scope", "HIGH", "--reason", "b") == 0


def test_a_dry_run_prints_candidates_and_results_and_changes_nothing(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    set_baseline(env)
    capsys.readouterr()
    assert run(env, "optimize", "--scope", "HIGH", "--until", UNTIL, "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.startswith("optimization dry run (nothing stored or applied): seed 11")
    assert "data: ETH_BTC, LTC_BTC 5m 2018-01-11 04:55 .. 2018-01-30 04:55 UTC" in out
    assert "baseline  adx=22 rsi=40 sl=1 tp=2" in out
    assert "#8" in out and "<- best in-sample" in out
    assert "deflated Sharpe ratio" in out and "probability of backtest overfitting" in out
    assert out.rstrip().endswith("dry run: would apply; nothing was stored or applied")
    assert run(env, "params", "show", "long_rsi_entry", "--scope", "HIGH", "--json") == 0
    assert json.loads(capsys.readouterr().out)["version"] == 4


def test_a_run_applies_its_winner_and_says_how(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    set_baseline(env)
    capsys.readouterr()
    assert run(env, "optimize", "--scope", "HIGH", "--until", UNTIL) == 0
    out = capsys.readouterr().out
    assert out.startswith("optimization opt_")
    assert "APPLIED: HIGH version 4 -> 5 (backup HIGH-" in out


def test_a_range_the_data_does_not_cover_is_a_clear_error(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(env, "optimize", "--scope", "HIGH", "--lookback-days", "25", "--until", UNTIL)
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "paramadapt: error: ETH_BTC: requested 2018-01-05 04:55 .. 2018-01-30 04:55 UTC, "
        "but the data covers 2018-01-10 04:55 .. 2018-01-30 04:55 UTC"
    )


def test_backtest_prints_statistics_and_every_trade_as_json(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["backtest", "--data", str(ETH), "--set", "long_rsi_entry=35", "--cash", "5000"]
    assert run(env, *argv, "--commission", "0.001", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    params = {"long_rsi_entry": 35, "long_adx_min": 22, "sl_atr_multiplier": 1.5}
    expected = run_backtest(
        load_candles(ETH).candles,
        {**params, "tp_atr_multiplier": 2.5},
        BacktestSettings(**shown["settings"]),
    )
    assert shown["parameters"] == {**params, "tp_atr_multiplier": 2.5}
    assert (shown["symbol"], shown["timeframe"], shown["bars"]) == ("ETH_BTC", "5m", 5760)
    assert shown["stats"]["trades"] == expected.stats.trades == len(shown["trades"])
    first, reference = shown["trades"][0], expected.trades[0]
    assert (first["entry_bar"], first["exit_bar"], first["size"]) == (
        reference.entry_bar,
        reference.exit_bar,
        reference.size,
    )
    assert first["pnl"] == pytest.approx(reference.pnl)
    assert set(first) >= {"entry_time", "exit_time", "entry_price", "exit_price", "pnl_pct"}


def test_backtest_prints_a_table_by_default(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(env, "backtest", "--data", str(ETH)) == 0
    out = capsys.readouterr().out
    assert out.startswith("backtest ETH_BTC 5m: 5760 bars, adx=22 rsi=30 sl=1.5 tp=2.5")
    assert "win_rate" in out and "entry time" in out and "take_profit" in out


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--set", "min_confidence=0.5"], "the strategy has no parameter 'min_confidence'"),
        (["--set", "long_rsi_entry=500"], "long_rsi_entry must be a whole number from 5 to 95"),
        (["--cash", "-1"], "cash must be positive"),
    ],
)
def test_backtest_refuses_bad_input_with_one_line(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    assert run(env, "backtest", "--data", str(ETH), *argv) == 2
    assert error in capsys.readouterr().err


def test_backtest_refuses_data_with_a_long_gap(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(env, "backtest", "--data", str(DATA / "ADA_BTC-5m.feather")) == 2
    assert "ADA_BTC 5m: 1 gap(s) longer than 12 bars" in capsys.readouterr().err
