"""The parameter schema: what values are accepted, and what a refusal says."""

import pytest

from core.errors import NotFoundError, ValidationError
from core.params import Scope, effective_params, load_schema

SCHEMA = load_schema()


def test_the_spec_parameters_are_declared_with_their_groups() -> None:
    risk = {s.name for s in SCHEMA if s.group == "risk"}
    strategy = {s.name for s in SCHEMA if s.group == "strategy"}
    assert risk == {"min_confidence", "max_position_size", "stop_loss_pct", "take_profit_pct"}
    assert strategy == {"long_rsi_entry", "long_adx_min", "sl_atr_multiplier", "tp_atr_multiplier"}


@pytest.mark.parametrize(
    ("name", "direction", "low", "high"),
    [
        ("min_confidence", "lower", 10, 20),
        ("max_position_size", "raise", 10, 30),
        ("stop_loss_pct", "raise", 10, 20),
        ("take_profit_pct", "lower", 10, 20),
    ],
)
def test_learning_relax_ranges_follow_the_spec(
    name: str, direction: str, low: int, high: int
) -> None:
    relax = SCHEMA.spec(name).relax
    assert relax is not None
    assert (relax.direction, relax.min_pct, relax.max_pct) == (direction, low, high)


def test_text_is_parsed_to_the_parameter_type() -> None:
    assert SCHEMA.spec("min_confidence").parse("0.6") == 0.6
    assert SCHEMA.spec("long_rsi_entry").parse("35") == 35
    assert isinstance(SCHEMA.spec("long_rsi_entry").parse("35.0"), int)


def test_a_typo_suggests_the_closest_name() -> None:
    with pytest.raises(NotFoundError, match="did you mean 'min_confidence'"):
        SCHEMA.spec("min_confidense")


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(NotFoundError, match="known: min_confidence, max_position_size"):
        SCHEMA.spec("zzz")


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("min_confidence", "1.5", "must be a number from 0 to 1; got 1.5"),
        ("min_confidence", "-0.1", "must be a number from 0 to 1; got -0.1"),
        ("min_confidence", "abc", "must be a number from 0 to 1; got 'abc'"),
        ("min_confidence", "nan", "got 'nan'"),
        ("min_confidence", "inf", "got 'inf'"),
        ("long_rsi_entry", "30.5", "must be a whole number from 5 to 95; got 30.5"),
        ("long_rsi_entry", True, "got True"),
        ("long_rsi_entry", None, "got NoneType"),
    ],
)
def test_bad_values_are_refused_saying_what_is_allowed(
    name: str, raw: object, message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        SCHEMA.spec(name).parse(raw)


def test_an_operator_can_add_a_parameter_and_adjust_a_shipped_one() -> None:
    schema = load_schema(
        {
            "max_daily_trades": {
                "group": "risk",
                "type": "int",
                "default": 20,
                "min": 1,
                "max": 500,
            },
            "min_confidence": {"default": 0.7},
        }
    )
    assert schema.spec("max_daily_trades").parse("40") == 40
    assert schema.spec("min_confidence").default == 0.7
    assert schema.spec("min_confidence").relax is not None


def test_a_schema_extension_with_a_default_out_of_bounds_is_refused() -> None:
    with pytest.raises(ValidationError, match="parameter min_confidence: default"):
        load_schema({"min_confidence": {"default": 2}})


def test_a_schema_extension_with_an_unknown_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown key"):
        load_schema({"min_confidence": {"defualt": 0.5}})


def test_scopes_parse_case_insensitively_and_refuse_unknown_ones() -> None:
    assert Scope.parse("high") is Scope.HIGH
    assert Scope.parse("GLOBAL") is Scope.GLOBAL
    with pytest.raises(ValidationError, match="use one of: global, HIGH, MEDIUM, LOW"):
        Scope.parse("EXTREME")


def test_a_level_inherits_every_global_value_it_does_not_set() -> None:
    values = effective_params(SCHEMA, [{"min_confidence": 0.6}, {"long_rsi_entry": 35}])
    assert values["min_confidence"] == 0.6
    assert values["long_rsi_entry"] == 35
    assert values["long_adx_min"] == SCHEMA.spec("long_adx_min").default
