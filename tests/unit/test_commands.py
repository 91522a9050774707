"""The /param grammar: what each text means, and what bad input is told."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from core import commands as c
from core.authz import Actor, Role, granted_roles
from core.models import Side
from core.params import Scope

ALL = set(c.USAGES)


def parse(text: str) -> c.Command:
    return c.parse(text, ALL)


def refusal(text: str, available: set[str] = ALL) -> c.CommandError:
    with pytest.raises(c.CommandError) as caught:
        c.parse(text, available)
    return caught.value


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("", c.Help()),
        ("help", c.Help()),
        ("HELP me", c.Help()),
        ("show", c.Show(None, Scope.GLOBAL)),
        ("show all", c.Show(None, Scope.GLOBAL)),
        ("show min_confidence --scope high", c.Show("min_confidence", Scope.HIGH)),
        ("show --scope=LOW", c.Show(None, Scope.LOW)),
        (
            "set min_confidence 0.6 too many good BUYs blocked",
            c.Set("min_confidence", "0.6", Scope.GLOBAL, "too many good BUYs blocked"),
        ),
        (
            'set stop_loss_pct 2.5 --scope MEDIUM "wider stops"',
            c.Set("stop_loss_pct", "2.5", Scope.MEDIUM, "wider stops"),
        ),
        ("set x 1 “quoted” reason", c.Set("x", "1", Scope.GLOBAL, "quoted reason")),
        ("set min_confidence 0.6", c.Set("min_confidence", "0.6", Scope.GLOBAL, "")),
        ("reset min_confidence", c.Reset("min_confidence", Scope.GLOBAL, "")),
        ("reset x --scope HIGH back to normal", c.Reset("x", Scope.HIGH, "back to normal")),
        (
            "override BTCUSDC buy strategic_opportunity",
            c.Override("BTCUSDC", Side.BUY, "strategic_opportunity"),
        ),
        ("learning start", c.LearningStart(None, "")),
        (
            "learning start 60 explore lower confidence",
            c.LearningStart(60, "explore lower confidence"),
        ),
        ("learning start 30", c.LearningStart(30, "")),
        ("learning stop", c.LearningStop("")),
        ("learning stop enough data", c.LearningStop("enough data")),
        ("Learning Status", c.LearningStatusQuery()),
        ("history", c.History(None, Scope.GLOBAL, 20)),
        ("history min_confidence --limit 5 --scope LOW", c.History("min_confidence", Scope.LOW, 5)),
        ("diff 3 4", c.Diff(3, 4, Scope.GLOBAL)),
        ("diff 1 2 --scope HIGH", c.Diff(1, 2, Scope.HIGH)),
        ("diff 0 1", c.Diff(0, 1, Scope.GLOBAL)),
        ("restore 3", c.Restore(3, Scope.GLOBAL, "")),
        ("restore 3 --scope LOW bad change", c.Restore(3, Scope.LOW, "bad change")),
        ("restore 0 back to the defaults", c.Restore(0, Scope.GLOBAL, "back to the defaults")),
        ("blocked", c.Blocked(timedelta(hours=24))),
        ("blocked 30m", c.Blocked(timedelta(minutes=30))),
        ("blocked 7d", c.Blocked(timedelta(days=7))),
        ("optimize", c.Optimize(None)),
        ("optimize high", c.Optimize(Scope.HIGH)),
        ("jobs", c.Jobs()),
        ("digest", c.Digest()),
        ("notifications", c.Notifications()),
    ],
)
def test_each_subcommand_parses_into_its_typed_command(text: str, command: c.Command) -> None:
    assert parse(text) == command


@pytest.mark.parametrize(
    ("text", "message", "usage"),
    [
        ("frobnicate", "unknown command 'frobnicate'", None),
        ("set min_confidence", "set needs a parameter and a value", "set"),
        ("set x 1 --scope", "--scope needs a value", "set"),
        ("set x 1 --scope EXTREME why", "unknown scope 'EXTREME'", "set"),
        ("set min_confidence 0.6 --scope HIGH --scope LOW", "--scope given twice", "set"),
        ("history --limit 5 --limit=6", "--limit given twice", "history"),
        ("show a b", "unexpected 'b'", "show"),
        ("show --verbose", "unknown option --verbose", "show"),
        ("reset", "reset needs the parameter to reset", "reset"),
        ("override BTCUSDC", "override needs a symbol, a side", "override"),
        ("override BTCUSDC HOLD why", "side must be BUY or SELL; got 'HOLD'", "override"),
        ("override BTCUSDC SELL", "a reason is required", "override"),
        ("learning", "learning takes start, stop or status", "learning start"),
        ("learning pause", "learning takes start, stop or status", "learning start"),
        ("learning start soon", "DURATION_MINUTES must be a whole number", "learning start"),
        ("learning start 0 why", "DURATION_MINUTES must be a whole number", "learning start"),
        ("learning status now", "unexpected 'now'", "learning status"),
        ("history --limit many", "--limit must be a whole number", "history"),
        ("history --limit 0", "--limit must be a whole number from 1", "history"),
        ("diff 3", "diff needs two version numbers", "diff"),
        ("diff 3 latest", "a version must be a whole number", "diff"),
        ("diff -1 2", "a version must be a whole number from 0", "diff"),
        ("restore", "restore needs the version to restore", "restore"),
        ("restore v3", "VERSION must be a whole number", "restore"),
        ("restore -1", "VERSION must be a whole number from 0", "restore"),
        ("blocked 2w", "WINDOW must be like 30m, 24h or 7d", "blocked"),
        ("blocked 91d", "at most 90d", "blocked"),
        ("jobs now", "unexpected 'now'", "jobs"),
    ],
)
def test_malformed_input_says_what_is_wrong_and_the_syntax(
    text: str, message: str, usage: str | None
) -> None:
    error = refusal(text)

    assert message in str(error)
    assert (error.usage.name if error.usage else None) == usage


POLICY_MINUTES = (5, 240)  # core.learning_model.LearningPolicy's defaults


@pytest.mark.parametrize("minutes", ["0", "4", "241", "999", "99999999999", "soon"])
def test_a_duration_outside_the_policy_is_refused_in_the_policys_words(minutes: str) -> None:
    with pytest.raises(c.CommandError) as caught:
        c.parse(f"learning start {minutes} why", ALL, learning_minutes=POLICY_MINUTES)

    assert str(caught.value).startswith(
        "a learning session lasts 5 to 240 minutes (a whole number); got "
    )
    assert caught.value.usage == c.USAGES["learning start"]


def test_a_duration_within_the_policy_parses() -> None:
    command = c.parse("learning start 240 why", ALL, learning_minutes=POLICY_MINUTES)

    assert command == c.LearningStart(240, "why")


def test_usage_lines_show_the_whole_command() -> None:
    assert c.USAGES["set"].line == "/param set PARAM VALUE [--scope S] [REASON...]"
    assert c.USAGES["learning start"].line == "/param learning start [DURATION_MINUTES [REASON...]]"
    assert c.USAGES["learning status"].line == "/param learning status"


def test_a_subcommand_the_entry_point_cannot_answer_is_unknown() -> None:
    error = refusal("optimize HIGH", available=ALL - {"optimize"})

    assert str(error) == "unknown command 'optimize'"


def test_the_reference_lists_only_what_the_actor_may_run_and_the_entry_point_answers() -> None:
    available = {"help", "show", "set", "override", "learning start", "learning status"}

    def names(*roles: Role) -> list[str]:
        return [u.name for u in c.reference(Actor.having("U1", "slack", *roles), available)]

    assert names() == ["help"]
    assert names(Role.VIEWER) == ["help", "show", "learning status"]
    assert names(Role.OPERATOR) == [
        "help",
        "show",
        "override",
        "learning start",
        "learning status",
    ]
    assert names(Role.ADMIN) == [
        "help",
        "show",
        "set",
        "override",
        "learning start",
        "learning status",
    ]


def test_roles_come_from_the_person_their_groups_or_everyone() -> None:
    assignments = {"admin": ["U0ADMIN"], "operator": ["S0TRADERS"], "viewer": ["*"]}

    assert granted_roles("U0ADMIN", [], assignments) == [Role.ADMIN, Role.VIEWER]
    assert granted_roles("U0BOB", ["S0TRADERS"], assignments) == [Role.OPERATOR, Role.VIEWER]
    assert granted_roles("U0EVE", [], {"admin": ["U0ADMIN"]}) == []


@dataclass(frozen=True)
class Choice:
    name: str
    min_pct: float
    max_pct: float


CHOICES = [Choice("min_confidence", 10, 20), Choice("max_position_size", 10, 30)]
RELAX_OK = {"relax:min_confidence": "15", "relax:max_position_size": "30"}


def test_a_valid_form_becomes_a_learning_request() -> None:
    form = c.parse_learning_form(" 60 ", RELAX_OK, " explore ", CHOICES, (5, 240))

    assert form == c.LearningForm(
        60, {"min_confidence": 15.0, "max_position_size": 30.0}, "explore"
    )


def test_the_reason_of_the_form_is_optional_as_in_slack_commands() -> None:
    for reason in (None, "", "  "):
        form = c.parse_learning_form("60", RELAX_OK, reason, CHOICES, (5, 240))

        assert form.reason == ""


def test_every_invalid_field_of_the_form_is_reported_next_to_it() -> None:
    relax = {"relax:min_confidence": "25", "relax:max_position_size": "lots"}

    with pytest.raises(c.FormError) as caught:
        c.parse_learning_form("4", relax, "  ", CHOICES, (5, 240))

    assert caught.value.errors == {
        "duration": "a whole number of minutes from 5 to 240",
        "relax:min_confidence": "a percentage from 10 to 20",
        "relax:max_position_size": "a percentage from 10 to 30",
    }
