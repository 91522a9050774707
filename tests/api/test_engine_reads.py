"""GET /parameters with ETags; overrides the engine reads and uses up exactly once."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from core import trades
from core.authz import Actor, Role
from core.models import Side
from tests.api.conftest import Api, Shifted

OPERATOR = Actor.having("U0OPS", "slack", Role.OPERATOR)


async def test_parameters_are_the_effective_values_with_version_and_etag(api: Api) -> None:
    status, body, response = await api.call("GET", "/parameters?scope=HIGH", "engine")
    assert status == 200
    assert body["scope"] == "HIGH" and body["version"] == 0
    assert body["parameters"]["min_confidence"] == 0.65
    assert response.headers["ETag"] == body["etag"]


async def test_an_unchanged_etag_answers_304(api: Api) -> None:
    _, body, _ = await api.call("GET", "/parameters", "engine")
    status, _, _ = await api.call(
        "GET", "/parameters", "engine", headers={"If-None-Match": body["etag"]}
    )
    assert status == 304


async def test_a_global_change_changes_a_level_scopes_etag(api: Api) -> None:
    _, before, _ = await api.call("GET", "/parameters?scope=LOW", "engine")
    await api.call(
        "POST", "/parameters/min_confidence", "admin", json={"value": 0.6, "reason": "test"}
    )
    status, after, _ = await api.call(
        "GET", "/parameters?scope=LOW", "engine", headers={"If-None-Match": before["etag"]}
    )
    assert status == 200
    assert after["parameters"]["min_confidence"] == 0.6
    assert after["etag"] != before["etag"]


async def test_an_unknown_scope_is_refused(api: Api) -> None:
    status, body, _ = await api.call("GET", "/parameters?scope=EXTREME", "engine")
    assert status == 422
    assert body["problems"][0]["field"] == "scope"


async def grant(api: Api, symbol: str = "BTCUSDC", side: Side = Side.BUY) -> int:
    override = await trades.grant_override(api.runtime.deps, OPERATOR, symbol, side, "FOMC dip")
    return override.id


async def test_active_overrides_are_listed_by_symbol_and_side(api: Api) -> None:
    wanted = await grant(api, "BTCUSDC", Side.BUY)
    await grant(api, "BTCUSDC", Side.SELL)
    await grant(api, "ETHUSDC", Side.BUY)
    status, body, _ = await api.call("GET", "/overrides?symbol=btcusdc&side=BUY", "engine")
    assert status == 200
    assert [o["id"] for o in body["overrides"]] == [wanted]
    assert body["overrides"][0]["approved_by"] == "U0OPS"


async def test_an_override_is_consumed_exactly_once_under_concurrent_calls(api: Api) -> None:
    override_id = await grant(api)
    results = await asyncio.gather(
        *(api.call("POST", f"/overrides/{override_id}/consume", "engine") for _ in range(10))
    )
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] + [409] * 9
    refusals = {body["error"] for status, body, _ in results if status == 409}
    assert len(refusals) == 1 and "was already used" in refusals.pop()
    _, listed, _ = await api.call("GET", "/overrides", "engine")
    assert listed["overrides"] == []


async def test_an_expired_override_cannot_be_consumed(api: Api) -> None:
    override_id = await grant(api)
    api.runtime.deps = replace(api.runtime.deps, clock=Shifted(api.runtime.deps.clock, minutes=16))
    status, body, _ = await api.call("POST", f"/overrides/{override_id}/consume", "engine")
    assert status == 409
    assert "expired at" in body["error"]


async def test_consuming_an_unknown_override_is_404(api: Api) -> None:
    status, body, _ = await api.call("POST", "/overrides/999/consume", "engine")
    assert status == 404
    assert body["error"] == "no override 999"
