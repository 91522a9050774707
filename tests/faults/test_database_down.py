"""PostgreSQL goes away under the running webhook (a proxy the test controls cuts every
connection and refuses new ones): requests are answered 503 with Retry-After and a JSON
body, nothing is half-written, and the server recovers by itself once the database is back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.config import Settings
from storage.db import create_engine
from tests.api.conftest import Api, blocked
from tests.faults.tcp_proxy import TcpProxy, proxy_to, through
from tests.fuzz.stored import row_counts

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

BATCH = {"events": [blocked(f"db-down-{n}") for n in range(20)]}


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    async with proxy_to(database_url) as running:
        yield running


@pytest.fixture
def settings(settings: Settings, proxy: TcpProxy) -> Settings:
    """The bot reaches PostgreSQL only through the proxy."""
    return through(settings, proxy)


async def stored(database_url: str) -> dict[str, int]:
    """Counted straight from PostgreSQL, not through the proxy."""
    engine = create_engine(database_url)
    try:
        return await row_counts(engine, ("blocked_trades", "outbox"))
    finally:
        await engine.dispose()


async def test_while_the_database_is_down_requests_are_503_with_retry_after(
    api: Api, proxy: TcpProxy, database_url: str
) -> None:
    await proxy.take_down()

    change = {"value": 0.6, "reason": "while the database is down"}
    for method, path, scope, body in [
        ("POST", "/blocked-trades", "engine", BATCH),
        ("GET", "/parameters", "engine", None),
        ("POST", "/parameters/min_confidence", "admin", change),
        ("GET", "/blocked-trades", "viewer", None),
    ]:
        status, answer, response = await api.call(method, path, scope, json=body)
        assert status == 503, (path, answer)
        assert int(response.headers["Retry-After"]) > 0
        assert answer == {"error": "database unavailable; retry later"}
    ready_status, readiness, _ = await api.call("GET", "/readyz", None)
    assert (ready_status, readiness["database"]) == (503, False)
    assert (await api.call("GET", "/healthz", None))[0] == 200  # alive: do not restart it

    await proxy.bring_back()

    status, answer, _ = await api.call("POST", "/blocked-trades", "engine", json=BATCH)
    assert (status, answer["created"]) == (201, 20)
    assert await stored(database_url) == {"blocked_trades": 20, "outbox": 20}
    _, live, _ = await api.call("GET", "/parameters", "engine")
    assert (live["version"], live["parameters"]["min_confidence"]) == (0, 0.65)


async def test_a_connection_lost_at_commit_leaves_nothing_half_written(
    api: Api, proxy: TcpProxy, database_url: str
) -> None:
    proxy.cut_on = b"COMMIT"

    status, answer, response = await api.call("POST", "/blocked-trades", "engine", json=BATCH)

    assert proxy.cuts == 1
    assert status == 503 and response.headers["Retry-After"], answer
    assert await stored(database_url) == {"blocked_trades": 0, "outbox": 0}
    proxy.cut_on = None
    status, answer, _ = await api.call("POST", "/blocked-trades", "engine", json=BATCH)
    assert (status, answer["created"]) == (201, 20)  # the engine's retry stores all of it
    assert await stored(database_url) == {"blocked_trades": 20, "outbox": 20}
