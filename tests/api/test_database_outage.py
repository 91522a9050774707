"""While PostgreSQL is unreachable (a proxy the test controls cuts it away, as in
tests/faults), monitoring keeps working: /metrics answers with every series, and /readyz
says not ready and when to ask again."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from bot.config import Settings
from tests.api.conftest import Api, blocked
from tests.faults.tcp_proxy import TcpProxy, proxy_to, through

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

ALERT_DEPTH = 'paramadapt_outbox_pending{topic="slack.blocked_trade"}'


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    async with proxy_to(database_url) as running:
        yield running


@pytest.fixture
def settings(settings: Settings, proxy: TcpProxy) -> Settings:
    """The server reaches PostgreSQL only through the proxy."""
    return through(settings, proxy)


def series(text: str, name: str) -> float | None:
    for line in text.splitlines():
        labels, _, value = line.rpartition(" ")
        if labels == name:
            return float(value)
    return None


async def test_metrics_are_served_while_the_database_is_down_with_the_last_queue_depth(
    api: Api, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    await api.call("POST", "/blocked-trades", "engine", json=blocked("queued"))
    _, before, _ = await api.call("GET", "/metrics", "viewer")
    assert series(before, ALERT_DEPTH) == 1.0

    await proxy.take_down()
    status, during, response = await api.call("GET", "/metrics", "viewer")

    assert (status, response.content_type) == (200, "text/plain")
    assert series(during, ALERT_DEPTH) == 1.0  # as last read, not dropped nor zeroed
    assert "paramadapt_http_requests_total" in during
    warnings = [
        r for r in caplog.records if r.name == "bot.webhook.server" and r.levelno >= logging.WARNING
    ]
    assert [(r.levelno, r.getMessage().split(" (")[0]) for r in warnings] == [
        (logging.WARNING, "/metrics: outbox depth not read, queue gauges left as they were")
    ]


async def test_not_ready_while_the_database_is_down_says_when_to_ask_again(
    api: Api, proxy: TcpProxy
) -> None:
    await proxy.take_down()
    status, body, response = await api.call("GET", "/readyz", None)
    assert (status, body["database"]) == (503, False)
    assert int(response.headers["Retry-After"]) > 0
