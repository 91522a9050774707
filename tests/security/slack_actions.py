"""Every Slack button the bot handles, found in the code rather than listed by hand, with
what core requires of whoever clicks it and a value that names nothing (so an allowed
click is answered "not found" rather than changing anything)."""

from __future__ import annotations

import importlib
import pkgutil

import bot.blocks
from core.authz import Action

# By convention each button's action_id is a `..._ACTION` constant of a bot.blocks module.
ACTION_IDS = sorted(
    {
        value
        for info in pkgutil.iter_modules(bot.blocks.__path__)
        for name, value in vars(importlib.import_module(f"bot.blocks.{info.name}")).items()
        if name.endswith("_ACTION") and isinstance(value, str)
    }
)

# As documented in README.md: operators decide alerts; admins apply and reject changes.
NEEDS: dict[str, Action] = {
    "override_approve": Action.OVERRIDE,
    "override_deny": Action.OVERRIDE,
    "learning_apply_recommendation": Action.APPLY,
    "optimization_apply_winner": Action.APPLY,
    "optimization_reject_winner": Action.APPLY,
}
NAMING_NOTHING: dict[str, str] = {
    "override_approve": "999999",
    "override_deny": "999999",
    "learning_apply_recommendation": (
        '{"session": 999999, "scope": "global", "parameter": "min_confidence"}'
    ),
    "optimization_apply_winner": "opt_19700101T000000Z_000000",
    "optimization_reject_winner": "opt_19700101T000000Z_000000",
}
