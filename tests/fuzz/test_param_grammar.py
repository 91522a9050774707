"""The /param grammar under 100,000 random and mutated inputs: every text is either a
valid typed command or a usage error (CommandError) saying what is wrong; nothing else."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from core import commands as c
from core.models import Side
from core.params import Scope

ALL = frozenset(c.USAGES)
VALID = [
    "help",
    "show min_confidence --scope HIGH",
    "show --scope=LOW",
    'set stop_loss_pct 2.5 --scope MEDIUM "wider stops"',
    "set min_confidence 0.6",
    "reset min_confidence --scope HIGH back to normal",
    "override BTCUSDC buy strategic opportunity",
    "learning start 60 explore lower confidence",
    "learning start 30",
    "learning stop enough data",
    "learning status",
    "history min_confidence --limit 5 --scope LOW",
    "diff 3 4 --scope HIGH",
    "diff 0 1",
    "restore 3 --scope LOW bad change",
    "blocked 7d",
    "optimize high",
    "jobs",
    "digest",
    "notifications",
]
# What people (and attackers) type: other subcommands, flags, quotes, odd digits, markup.
ODD_TOKENS = [
    *(usage.name for usage in c.USAGES.values()),
    "--scope",
    "--scope=",
    "--scope=HIGH",
    "--limit",
    "--limit=0",
    "--limit=-1",
    "--",
    "-",
    "--x",
    "--Scope",
    "--scope=EXTREME",
    "global",
    "HIGH",
    "buy",
    "SELL",
    "HOLD",
    '"',
    "'",
    "“",
    "”",
    "‘",
    "’",
    '""',
    "''",
    "\\",
    '\\"',
    "0",
    "-1",
    "1.5",
    "1e9",
    "9" * 30,
    "9" * 5000,
    "2147483648",
    "²",
    "١٢",
    "٣m",
    "Ⅻ",
    "0x10",
    "30m",
    "24h",
    "90d",
    "91d",
    "99999999999d",
    "1w",
    "0m",
    "",
    "\x00",
    "\t",
    "\n",
    "\u200b",
    "\ufeff",
    "🚀",
    "é",
    "ß",
    "İ",
    "ﬁ",
    "<!channel>",
    "<@U123>",
    "<https://evil|click>",
    "&lt;",
    "'; DROP TABLE trades; --",
]


def check(text: str) -> None:
    """The property: a well-formed command, or a usage error; any other exception escapes."""
    try:
        command = c.parse(text, ALL)
    except c.CommandError as error:
        assert str(error), f"an empty usage error for {text!r}"
        assert error.usage is None or error.usage in c.USAGES.values()
        return
    assert type(command) in c.NAMES, f"{text!r} parsed to {command!r}"
    well_formed(command)


def well_formed(command: c.Command) -> None:
    """Every field holds a value of its declared kind, within what the grammar promises."""
    for field in dataclasses.fields(command):
        value = getattr(command, field.name)
        if field.name == "scope":
            assert isinstance(value, Scope) or (isinstance(command, c.Optimize) and value is None)
        elif field.name == "limit":
            assert isinstance(value, int) and 1 <= value <= c.MAX_WHOLE
        elif field.name in ("old", "new", "version"):  # version 0: the defaults
            assert isinstance(value, int) and 0 <= value <= c.MAX_WHOLE
        elif field.name == "duration_minutes":
            assert value is None or 1 <= value <= c.MAX_WHOLE
        elif field.name == "side":
            assert isinstance(value, Side)
        elif field.name == "window":
            assert timedelta(0) < value <= c.MAX_WINDOW
        else:
            assert value is None or isinstance(value, str)
    if isinstance(command, c.Override):  # set's and learning start's: optional in Slack
        assert command.reason.strip(), "an override without a reason"


def mutate(rng: random.Random, text: str) -> str:
    words = text.split()
    for _ in range(rng.randint(1, 4)):
        pick = rng.randrange(7)
        spot = rng.randrange(len(words) + 1)
        if pick == 0 and len(words) > 1:  # swap two tokens
            i, j = rng.sample(range(len(words)), 2)
            words[i], words[j] = words[j], words[i]
        elif pick == 1 and words:  # delete one
            del words[rng.randrange(len(words))]
        elif pick == 2:  # insert an odd token
            words.insert(spot, rng.choice(ODD_TOKENS))
        elif pick == 3 and words:  # replace one
            words[rng.randrange(len(words))] = rng.choice(ODD_TOKENS)
        elif pick == 4 and words:  # glue an odd token onto one
            i = rng.randrange(len(words))
            words[i] += rng.choice(ODD_TOKENS)
        elif pick == 5:  # a random code point anywhere
            words.insert(spot, chr(rng.randrange(0x110000)))
        elif words:  # change the case
            i = rng.randrange(len(words))
            words[i] = words[i].swapcase()
    return rng.choice([" ", "  ", "\t"]).join(words)


def test_a_hundred_thousand_mutated_commands_parse_or_are_usage_errors() -> None:
    rng = random.Random(20261123)
    for _ in range(100_000):
        check(mutate(rng, rng.choice(VALID)))


@settings(max_examples=2000, deadline=None)
@given(st.text())
def test_any_text_parses_or_is_a_usage_error(text: str) -> None:
    check(text)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(ODD_TOKENS) | st.text(max_size=8), max_size=8))
def test_any_sequence_of_tokens_parses_or_is_a_usage_error(tokens: list[str]) -> None:
    check(" ".join(tokens))


def test_numbers_python_reads_but_the_grammar_does_not_are_usage_errors() -> None:
    for text in ["diff ² 3", "history --limit " + "9" * 5000, "blocked 99999999999d"]:
        check(text)
        try:
            c.parse(text, ALL)
        except c.CommandError as error:
            assert "must be" in str(error)
        else:
            raise AssertionError(f"{text[:30]!r} was accepted")


@dataclasses.dataclass(frozen=True)
class Bounds:
    name: str
    min_pct: float = 0.0
    max_pct: float = 50.0


FORM_CHOICES = [Bounds("min_confidence"), Bounds("stop_loss_pct", 5.0, 20.0)]


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["45", "²", "9" * 5000, "5"])),
    st.one_of(st.none(), st.text(max_size=8), st.sampled_from(["12.5", "nan", "inf", "1e400"])),
    st.one_of(st.none(), st.text(max_size=8)),
)
def test_any_learning_form_is_a_valid_form_or_errors_by_field(
    duration: str | None, relax: str | None, reason: str | None
) -> None:
    fields = {c.relax_field(choice.name): relax for choice in FORM_CHOICES}
    try:
        form = c.parse_learning_form(duration, fields, reason, FORM_CHOICES, (5, 240))
    except c.FormError as error:
        assert error.errors and set(error.errors) <= {c.DURATION_FIELD, c.REASON_FIELD, *fields}
        return
    assert 5 <= form.duration_minutes <= 240 and form.reason == form.reason.strip()
    assert all(b.min_pct <= form.relax_pct[b.name] <= b.max_pct for b in FORM_CHOICES)
