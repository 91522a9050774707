"""The parameter schema: every parameter paramadapt manages, its type, bounds and defaults.

Values are validated here once, for every entry point. Scopes: `global` plus one per
volatility level; a level inherits every global value it does not set itself.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from importlib import resources
from typing import Any, Literal

from core.errors import NotFoundError, ValidationError

ParamValue = int | float
Params = dict[str, ParamValue]


class Scope(StrEnum):
    GLOBAL = "global"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"

    @classmethod
    def parse(cls, text: str) -> Scope:
        for scope in cls:
            if scope.value.lower() == text.strip().lower():
                return scope
        allowed = ", ".join(s.value for s in cls)
        raise ValidationError(f"unknown scope '{text}'; use one of: {allowed}")


VOLATILITY_LEVELS = (Scope.HIGH, Scope.MEDIUM, Scope.LOW)


@dataclass(frozen=True)
class RelaxRange:
    """How a learning session loosens a parameter: a percentage of its current value."""

    direction: Literal["lower", "raise"]
    min_pct: float
    max_pct: float

    @property
    def middle_pct(self) -> float:
        return (self.min_pct + self.max_pct) / 2


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: Literal["int", "float"]
    default: ParamValue
    min: ParamValue
    max: ParamValue
    group: Literal["risk", "strategy"]
    unit: str = ""
    description: str = ""
    relax: RelaxRange | None = None
    step: ParamValue | None = None

    def bounds_text(self) -> str:
        kind = "a whole number" if self.type == "int" else "a number"
        return f"{kind} from {format_value(self.min)} to {format_value(self.max)}"

    def parse(self, raw: object) -> ParamValue:
        """Turn user input (text or JSON number) into a value of this parameter, or refuse.
        A refusal names the field `value`: what was given for the parameter."""
        number = _to_number(self.name, raw, self.bounds_text())
        if self.type == "int":
            if not float(number).is_integer():
                raise ValidationError(
                    f"{self.name} must be {self.bounds_text()}; got {format_value(number)}",
                    field="value",
                )
            value: ParamValue = int(number)
        else:
            value = float(number)
        if not self.min <= value <= self.max:
            raise ValidationError(
                f"{self.name} must be {self.bounds_text()}; got {format_value(value)}",
                field="value",
            )
        return value


def _to_number(name: str, raw: object, allowed: str) -> float:
    def refused(got: str) -> ValidationError:
        return ValidationError(f"{name} must be {allowed}; got {got}", field="value")

    if isinstance(raw, bool):
        raise refused(repr(raw))
    if isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError:  # an int beyond any float, e.g. 400 digits
            raise refused(_abridged(raw)) from None
    elif isinstance(raw, str):
        try:
            number = float(raw.strip())
        except ValueError:
            raise refused(f"'{_abridged(raw)}'") from None
    else:
        raise refused(type(raw).__name__)
    if not math.isfinite(number):
        raise refused(f"'{_abridged(raw)}'" if isinstance(raw, str) else _abridged(raw))
    return number


def _abridged(raw: object, limit: int = 40) -> str:
    """An input as the refusal quotes it: a 5,000-digit number is cut short."""
    try:
        text = str(raw) if isinstance(raw, str | int) else repr(raw)
    except ValueError:  # an int too long to print (sys.get_int_max_str_digits)
        return "a number of thousands of digits"
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """The hint of every refusal of an unknown name (a parameter, a key or a section of the
    configuration): "did you mean 'X'? " for the known name closest to it, or nothing."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def format_value(value: object) -> str:
    """Short human form: 0.65, 30, 1.5 (no float noise such as 0.6000000000000001)."""
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


class ParamSchema:
    """The set of parameter specs, in declaration order."""

    def __init__(self, specs: Iterable[ParamSpec]) -> None:
        self._specs = {spec.name: spec for spec in specs}

    def __iter__(self) -> Iterator[ParamSpec]:
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def spec(self, name: str) -> ParamSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise NotFoundError(self._unknown_message(name)) from None

    def _unknown_message(self, name: str) -> str:
        hint = did_you_mean(name, self._specs)
        return f"unknown parameter '{name}'; {hint}known: {', '.join(self._specs)}"

    def defaults(self) -> Params:
        return {spec.name: spec.default for spec in self}

    def validate(self, params: Mapping[str, object]) -> Params:
        """Validate a whole parameter mapping, e.g. a restored backup. A refusal names the
        parameter at fault."""
        valid: Params = {}
        for name, value in params.items():
            try:
                valid[name] = self.spec(name).parse(value)
            except ValidationError as error:
                raise ValidationError(str(error), field=name) from None
        return valid

    def relaxable(self) -> list[ParamSpec]:
        return [spec for spec in self if spec.relax is not None]


def load_schema(extra: Mapping[str, Mapping[str, Any]] | None = None) -> ParamSchema:
    """The shipped schema, with an operator's additions or adjustments applied."""
    shipped = tomllib.loads(resources.files("core").joinpath("parameters.toml").read_text())
    specs = {name: _spec_from_table(name, table) for name, table in shipped.items()}
    for name, table in (extra or {}).items():
        specs[name] = _merge_spec(specs.get(name), name, table)
    return ParamSchema(specs.values())


_SPEC_KEYS = {"group", "type", "unit", "default", "min", "max", "description", "relax", "step"}


def _spec_from_table(name: str, table: Mapping[str, Any]) -> ParamSpec:
    unknown = sorted(set(table) - _SPEC_KEYS)
    if unknown:
        raise ValidationError(
            f"parameter {name}: unknown key(s) {', '.join(unknown)}; "
            f"{did_you_mean(unknown[0], _SPEC_KEYS)}allowed: {', '.join(sorted(_SPEC_KEYS))}"
        )
    missing = {"type", "default", "min", "max", "group"} - set(table)
    if missing:
        raise ValidationError(f"parameter {name}: missing {', '.join(sorted(missing))}")
    kind = table["type"]
    if kind not in ("int", "float"):
        raise ValidationError(f"parameter {name}: type must be 'int' or 'float', got {kind!r}")
    group = table["group"]
    if group not in ("risk", "strategy"):
        raise ValidationError(f"parameter {name}: group must be 'risk' or 'strategy'")
    spec = ParamSpec(
        name=name,
        type=kind,
        default=table["default"],
        min=table["min"],
        max=table["max"],
        group=group,
        unit=str(table.get("unit", "")),
        description=str(table.get("description", "")),
        relax=_relax_from(name, table.get("relax")),
        step=table.get("step"),
    )
    return _checked(spec)


def _relax_from(name: str, raw: object) -> RelaxRange | None:
    if raw is None:
        return None
    if (
        not isinstance(raw, list)
        or len(raw) != 3
        or raw[0] not in ("lower", "raise")
        or not all(isinstance(p, int | float) for p in raw[1:])
        or not 0 <= raw[1] <= raw[2] < 100
    ):
        raise ValidationError(
            f'parameter {name}: relax must be ["lower"|"raise", min_pct, max_pct] '
            "with 0 <= min_pct <= max_pct < 100"
        )
    return RelaxRange(raw[0], float(raw[1]), float(raw[2]))


def _merge_spec(base: ParamSpec | None, name: str, table: Mapping[str, Any]) -> ParamSpec:
    if base is None:
        return _spec_from_table(name, table)
    merged: dict[str, Any] = {
        "group": base.group,
        "type": base.type,
        "unit": base.unit,
        "default": base.default,
        "min": base.min,
        "max": base.max,
        "description": base.description,
    }
    if base.step is not None:
        merged["step"] = base.step
    if base.relax is not None:
        merged["relax"] = [base.relax.direction, base.relax.min_pct, base.relax.max_pct]
    merged.update(table)
    return _spec_from_table(name, merged)


def _checked(spec: ParamSpec) -> ParamSpec:
    for field in ("min", "max"):
        _to_number(f"parameter {spec.name}: {field}", getattr(spec, field), "a number")
    if spec.min > spec.max:
        raise ValidationError(f"parameter {spec.name}: min is greater than max")
    try:
        default = spec.parse(spec.default)
    except ValidationError as error:
        raise ValidationError(f"parameter {spec.name}: default: {error}") from None
    return replace(spec, default=default)


def effective_params(schema: ParamSchema, layers: Iterable[Mapping[str, ParamValue]]) -> Params:
    """Defaults overlaid by each layer in turn (global, then a level's own values)."""
    values = schema.defaults()
    for layer in layers:
        values.update({k: v for k, v in layer.items() if k in schema})
    return values
