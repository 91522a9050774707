"""The bot against the fake Slack (tests/e2e) and the live HTTP server (tests/api)."""

from tests.api.conftest import api  # noqa: F401
from tests.e2e.conftest import bot, clock, settings, slack  # noqa: F401
