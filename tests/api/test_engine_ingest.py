"""POST /blocked-trades and POST /trades: stored once, queued for alerting, validated."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.tables import BlockedTradeRow, OutboxRow, TradeCounterRow, TradeRow
from tests.api.conftest import Api, blocked, closed


async def count(api: Api, table: type) -> int:
    async with api.runtime.engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_blocked_trade_is_stored_and_queued_for_an_alert(api: Api) -> None:
    status, body, _ = await api.call("POST", "/blocked-trades", "engine", json=blocked())
    assert status == 201
    assert body["results"] == [{"key": "e1", "id": 1, "created": True}]
    assert await count(api, BlockedTradeRow) == 1
    async with api.runtime.engine.connect() as connection:
        topics = (await connection.execute(select(OutboxRow.topic))).scalars().all()
    assert topics == ["slack.blocked_trade"]


async def test_a_repeated_event_id_answers_200_with_the_original_id_and_stores_nothing(
    api: Api,
) -> None:
    await api.call("POST", "/blocked-trades", "engine", json=blocked())
    status, body, _ = await api.call("POST", "/blocked-trades", "engine", json=blocked(price=1.0))
    assert status == 200
    assert body["results"] == [{"key": "e1", "id": 1, "created": False}]
    assert await count(api, BlockedTradeRow) == 1
    assert await count(api, OutboxRow) == 1


async def test_a_batch_stores_each_new_event_and_reports_duplicates(api: Api) -> None:
    await api.call("POST", "/blocked-trades", "engine", json=blocked("e1"))
    batch = {"events": [blocked("e1"), blocked("e2"), blocked("e3")]}
    status, body, _ = await api.call("POST", "/blocked-trades", "engine", json=batch)
    assert status == 201
    assert [(r["key"], r["created"]) for r in body["results"]] == [
        ("e1", False),
        ("e2", True),
        ("e3", True),
    ]
    assert (body["created"], body["duplicates"]) == (2, 1)


async def test_a_batch_with_one_invalid_event_stores_none_of_them(api: Api) -> None:
    """All or nothing: the engine fixes the named event and resends the whole batch."""
    batch = {"events": [blocked("e1"), blocked("e2", confidence=1.5), blocked("e3")]}
    status, body, _ = await api.call("POST", "/blocked-trades", "engine", json=batch)
    assert status == 422
    assert body["problems"] == [
        {"field": "events[1].confidence", "problem": "Input should be less than or equal to 1"}
    ]
    assert await count(api, BlockedTradeRow) == 0


async def test_every_bad_field_is_named(api: Api) -> None:
    bad = blocked(timestamp="2026-11-23T03:00:00", signal="HOLD", price=-1, confidnce=0.5)
    del bad["symbol"]
    status, body, _ = await api.call("POST", "/blocked-trades", "engine", json=bad)
    assert status == 422
    assert {p["field"] for p in body["problems"]} == {
        "timestamp",
        "symbol",
        "signal",
        "price",
        "confidnce",
    }


async def test_a_batch_over_1000_events_is_refused(api: Api) -> None:
    batch = {"events": [blocked(f"e{i}") for i in range(1001)]}
    status, body, _ = await api.call("POST", "/blocked-trades", "engine", json=batch)
    assert status == 422
    assert body["problems"][0]["field"] == "events"
    assert await count(api, BlockedTradeRow) == 0


async def test_a_body_that_is_not_json_is_refused_with_415(api: Api) -> None:
    status, body, _ = await api.call(
        "POST",
        "/blocked-trades",
        "engine",
        data="event_id=e1",
        headers={"Content-Type": "text/plain"},
    )
    assert status == 415
    assert "must be JSON" in body["error"]


async def test_malformed_json_is_refused_with_422(api: Api) -> None:
    status, body, _ = await api.call(
        "POST", "/blocked-trades", "engine", data="{", headers={"Content-Type": "application/json"}
    )
    assert status == 422
    assert "not valid JSON" in body["error"]


async def test_a_body_over_the_size_limit_is_refused_with_413(api: Api) -> None:
    huge = blocked(data={"blob": "x" * 2_000_000})
    status, body, _ = await api.call("POST", "/blocked-trades", "engine", json=huge)
    assert status == 413
    assert "larger than" in body["error"]
    assert await count(api, BlockedTradeRow) == 0


async def test_a_closed_trade_is_stored_once_and_counted_for_its_level(api: Api) -> None:
    status, _, _ = await api.call("POST", "/trades", "engine", json=closed("t1"))
    assert status == 201
    status, _, _ = await api.call("POST", "/trades", "engine", json=closed("t1"))
    assert status == 200
    await api.call("POST", "/trades", "engine", json={"events": [closed("t2"), closed("t3")]})
    assert await count(api, TradeRow) == 3
    async with api.runtime.engine.connect() as connection:
        counter = (
            await connection.execute(
                select(
                    TradeCounterRow.volatility_level,
                    TradeCounterRow.count,
                    TradeCounterRow.threshold,
                )
            )
        ).one()
    assert tuple(counter) == ("HIGH", 3, 200)


async def test_a_trade_that_exits_before_it_enters_is_refused(api: Api) -> None:
    trade = closed(exit_time="2026-11-23T00:00:00+00:00")
    status, body, _ = await api.call("POST", "/trades", "engine", json=trade)
    assert status == 422
    assert body["problems"] == [
        {
            "field": "exit_time",
            "problem": "Value error, is before entry_time: a trade exits after it enters",
        }
    ]
    assert await count(api, TradeRow) == 0


async def test_a_trade_repeated_in_one_batch_moves_its_levels_counter_by_one(api: Api) -> None:
    batch = {"events": [closed("t2"), closed("t2")]}
    status, body, _ = await api.call("POST", "/trades", "engine", json=batch)
    assert status == 201  # something new was stored
    first, repeat = body["results"]
    assert (first["created"], repeat["created"], repeat["id"]) == (True, False, first["id"])
    assert (body["created"], body["duplicates"]) == (1, 1)
    _, counters, _ = await api.call("GET", "/api/learning/counters/", "viewer")
    assert {c["volatility_level"]: c["count"] for c in counters["counters"]}["HIGH"] == 1


async def test_a_blocked_trade_repeated_in_one_batch_is_ingested_once(api: Api) -> None:
    before = await ingested_metric(api, "blocked_trade")
    batch = {"events": [blocked("e1"), blocked("e1")]}
    status, body, _ = await api.call("POST", "/blocked-trades", "engine", json=batch)
    assert status == 201
    assert [r["created"] for r in body["results"]] == [True, False]
    assert await ingested_metric(api, "blocked_trade") == before + 1
    assert await count(api, OutboxRow) == 1  # one alert


async def ingested_metric(api: Api, kind: str) -> float:
    _, text, _ = await api.call("GET", "/metrics", "viewer")
    prefix = f'paramadapt_events_ingested_total{{kind="{kind}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0
