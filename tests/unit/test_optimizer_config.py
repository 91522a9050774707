"""The [optimizer] section of the configuration and MARKET_DATA_DIR."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from core.optimization_model import ApplyMode
from core.optimizer import GridShape, Method, WalkForwardMode
from core.params import Scope


def settings_from(tmp_path: Path, toml: str, **env: str) -> object:
    config = tmp_path / "paramadapt.toml"
    config.write_text(toml)
    return load_settings({"PARAMADAPT_CONFIG": str(config), **env})


def test_defaults_follow_the_specification(tmp_path: Path) -> None:
    settings = load_settings({})
    policy = settings.optimizer.policy
    assert (policy.trade_threshold, policy.lookback_days, policy.performance_drop_pct) == (
        200,
        30,
        15.0,
    )
    cycle = policy.cycle
    assert (cycle.method, cycle.grid, cycle.min_improvement_pct, cycle.min_trades) == (
        Method.GRID,
        GridShape.SPEC,
        5.0,
        30,
    )
    assert settings.market_data_dir is None
    assert settings.optimizer.journal_path(Path("var/backups")) == Path("var/optuna-studies.log")


def test_a_full_section_is_read(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        """
[optimizer]
method = "bayes"
grid = "full"
walk_forward = "anchored"
min_improvement_pct = 7.5
trade_threshold = 50
seed = 42
workers = 3
atr_low_pct = 1.0
atr_high_pct = 4.0
commission = 0.001
study_journal = "/tmp/studies.log"

[optimizer.symbols]
"ETH/BTC" = "HIGH"
"LTC/BTC" = "auto"

[optimizer.apply_mode]
HIGH = "approve"
""",
        MARKET_DATA_DIR="/data/candles",
    )
    optimizer = settings.optimizer  # type: ignore[attr-defined]
    policy = optimizer.policy
    assert (policy.cycle.method, policy.cycle.grid) == (Method.BAYES, GridShape.FULL)
    assert policy.cycle.walk_forward is WalkForwardMode.ANCHORED
    assert (policy.cycle.min_improvement_pct, policy.trade_threshold, policy.seed) == (7.5, 50, 42)
    assert policy.cycle.backtest.commission == 0.001
    assert (policy.volatility.low_below, policy.volatility.high_from) == (1.0, 4.0)
    assert policy.symbols == {"ETH/BTC": Scope.HIGH, "LTC/BTC": None}
    assert policy.apply_mode(Scope.HIGH) is ApplyMode.APPROVE
    assert policy.apply_mode(Scope.LOW) is ApplyMode.AUTO
    assert (optimizer.workers, optimizer.study_journal) == (3, Path("/tmp/studies.log"))
    assert settings.market_data_dir == Path("/data/candles")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ("[optimizer]\nmethod = 'genetic'", "method: must be one of grid, bayes"),
        ("[optimizer]\npbo_blocks = 7", "pbo_blocks must be an even number"),
        ("[optimizer]\nmin_trades = 0", "min_trades: must be a whole number of at least 1"),
        ("[optimizer]\ntimeframe = '7x'", "timeframe: unsupported timeframe"),
        ("[optimizer]\nthreshold = 5", "unknown key(s) threshold"),
        ("[optimizer.symbols]\n'ETH/BTC' = 'EXTREME'", "symbols.ETH/BTC: 'EXTREME' is not"),
        ("[optimizer.apply_mode]\nHIGH = 'maybe'", "apply_mode.HIGH"),
        ("[optimizer]\natr_low_pct = 6.0", "cut-offs"),
    ],
)
def test_a_bad_setting_names_itself(tmp_path: Path, toml: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="optimizer") as raised:
        settings_from(tmp_path, toml)
    assert problem in str(raised.value)


def test_config_check_shows_the_optimizer(tmp_path: Path) -> None:
    masked = load_settings({"MARKET_DATA_DIR": "/data"}).masked()
    assert masked["MARKET_DATA_DIR"] == "/data"
    assert masked["optimizer"]["trade_threshold"] == 200
