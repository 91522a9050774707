"""The [learning] section: limits on learning sessions, checked at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from core.learning_model import LearningPolicy


def settings_from(tmp_path: Path, text: str) -> LearningPolicy:
    path = tmp_path / "paramadapt.toml"
    path.write_text(text)
    return load_settings({"PARAMADAPT_CONFIG": str(path)}).learning


def test_without_a_section_the_documented_defaults_apply() -> None:
    assert load_settings({}).learning == LearningPolicy(
        cooldown_minutes=60,
        min_duration_minutes=5,
        max_duration_minutes=240,
        min_trades_for_recommendations=20,
    )


def test_the_section_sets_each_limit(tmp_path: Path) -> None:
    policy = settings_from(
        tmp_path,
        "[learning]\ncooldown_minutes = 30\nmin_duration_minutes = 10\n"
        "max_duration_minutes = 120\nmin_trades_for_recommendations = 50\n",
    )
    assert policy == LearningPolicy(30, 10, 120, 50)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[learning]\ncooldown_minute = 5\n", "unknown key(s) cooldown_minute"),
        ("[learning]\ncooldown_minutes = 0\n", "learning.cooldown_minutes: must be a whole number"),
        ("[learning]\nmax_duration_minutes = 1.5\n", "max_duration_minutes: must be a whole"),
        (
            "[learning]\nmin_duration_minutes = 60\nmax_duration_minutes = 30\n",
            "min_duration_minutes is greater than max_duration_minutes",
        ),
    ],
)
def test_a_bad_limit_stops_the_start_with_one_clear_line(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match="learning") as error:
        settings_from(tmp_path, text)
    assert message in str(error.value)
