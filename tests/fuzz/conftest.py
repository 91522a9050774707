"""The live HTTP server of tests/api and the bot against the fake Slack of tests/e2e."""

from tests.api.conftest import api  # noqa: F401
from tests.e2e.conftest import bot, settings, slack  # noqa: F401
