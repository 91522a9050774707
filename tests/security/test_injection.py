"""SQL and Slack-markup injection strings in every text field the engine sends are stored
verbatim and shown escaped: engine data never pings a channel, mentions someone or links."""

from __future__ import annotations

from typing import Any

import pytest

from bot.runtime import Runtime
from tests.api.conftest import Api, blocked
from tests.e2e.conftest import VIEWER, alert_for, param
from tests.fakeslack import FakeSlack

INJECTIONS = [
    "'; DROP TABLE blocked_trades; --",
    "<!channel> look",
    "<!here|here>",
    "<@U0ADMIN> hi",
    "<https://evil.example|click>",
    "&lt;!channel&gt;",
    "*bold* _it_ `code`",
]
# A mrkdwn text holding one of these is a ping, a mention or a link made of engine data.
MARKUP = ["<!channel", "<!here", "<@U0ADMIN", "<https://evil"]


def mrkdwn_texts(node: Any) -> list[str]:
    """Every text Slack parses as mrkdwn: the fallback `text` and mrkdwn text objects
    (plain_text, as in headers, is shown literally and cannot ping)."""
    if isinstance(node, dict):
        found = [str(node["text"])] if node.get("type") == "mrkdwn" else []
        return found + [t for k, v in node.items() if k != "text" for t in mrkdwn_texts(v)]
    if isinstance(node, list):
        return [t for item in node for t in mrkdwn_texts(item)]
    return []


def assert_escaped(message: dict[str, Any], injected: str) -> None:
    texts = [str(message.get("text", "")), *mrkdwn_texts(message.get("blocks", []))]
    for text in texts:
        for markup in MARKUP:
            assert markup not in text, f"{markup!r} from {injected!r} shown raw in {text!r}"
    escaped = injected.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert any(escaped in text for text in texts), f"{injected!r} not shown at all"


@pytest.mark.usefixtures("bot")
@pytest.mark.parametrize("injected", INJECTIONS)
async def test_engine_text_is_stored_verbatim_and_alerted_escaped(
    api: Api, slack: FakeSlack, runtime: Runtime, injected: str
) -> None:
    event = blocked("evt-" + injected, block_reason=injected, risk_level=injected[:32])
    event["data"] = {"note": injected, injected: 1}
    status, _, _ = await api.call("POST", "/blocked-trades", "engine", json=event)
    assert status == 201

    [stored] = (await api.call("GET", "/blocked-trades?window=7d", "viewer"))[1]["items"]
    assert (stored["event_id"], stored["block_reason"]) == ("evt-" + injected, injected)
    trade = await runtime.deps.trades.blocked_trade(stored["id"])
    assert trade is not None and trade.data == {"note": injected, injected: 1}
    assert_escaped(await alert_for(slack), injected)
    assert_escaped((await param(slack, "blocked 7d", VIEWER)).body, injected)
    await slack.open_home(VIEWER)
    await slack.wait_until(lambda: slack.home_view(VIEWER) is not None, what="App Home")
    home = slack.home_view(VIEWER)
    assert home is not None
    for text in mrkdwn_texts(home["blocks"]):
        assert not any(markup in text for markup in MARKUP), text
