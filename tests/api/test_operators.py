"""The spec's optimizer-service endpoints: backups, restore, parameter changes, statistics."""

from __future__ import annotations

from tests.api.conftest import Api, blocked


async def set_value(api: Api, name: str, value: object, **extra: object) -> tuple[int, dict]:
    status, body, _ = await api.call(
        "POST", f"/parameters/{name}", "admin", json={"value": value, "reason": "test", **extra}
    )
    return status, body


async def test_setting_a_parameter_reports_the_change_and_its_backup(api: Api) -> None:
    status, body = await set_value(api, "min_confidence", 0.6)
    assert status == 200
    assert body["outcome"] == "applied"
    assert (body["based_on"], body["version"]) == (0, 1)
    assert body["changes"] == [{"parameter": "min_confidence", "old": 0.65, "new": 0.6}]
    assert body["backup_id"].startswith("global-")


async def test_a_stale_based_on_is_409_and_changes_nothing(api: Api) -> None:
    await set_value(api, "min_confidence", 0.6)
    status, body = await set_value(api, "min_confidence", 0.5, based_on=0)
    assert status == 409
    assert "active version is 1" in body["error"]
    _, params, _ = await api.call("GET", "/parameters", "engine")
    assert params["parameters"]["min_confidence"] == 0.6


async def test_an_out_of_bounds_value_is_422_naming_the_bounds(api: Api) -> None:
    status, body = await set_value(api, "min_confidence", 3)
    assert status == 422
    assert body["error"] == "min_confidence must be a number from 0 to 1; got 3"


async def test_an_unknown_parameter_is_404_with_a_suggestion(api: Api) -> None:
    status, body = await set_value(api, "min_confidense", 0.5)
    assert status == 404
    assert "did you mean 'min_confidence'" in body["error"]


async def test_backup_list_and_restore_round_trip(api: Api) -> None:
    await set_value(api, "long_rsi_entry", 35)
    status, backup, _ = await api.call(
        "POST", "/backup-configuration", "admin", json={"reason": "before the FOMC"}
    )
    assert status == 201
    assert (backup["version"], backup["parameters"]["long_rsi_entry"]) == (1, 35)
    await set_value(api, "long_rsi_entry", 40)
    _, listing, _ = await api.call("GET", "/configuration-backups", "viewer")
    assert backup["id"] in [b["id"] for b in listing["backups"]]
    status, restored, _ = await api.call(
        "POST", f"/configuration-backups/{backup['id']}/restore", "admin", json={}
    )
    assert status == 200
    assert restored["changes"] == [{"parameter": "long_rsi_entry", "old": 40, "new": 35}]


async def test_restoring_an_unknown_backup_is_404(api: Api) -> None:
    status, body, _ = await api.call(
        "POST", "/configuration-backups/global-20200101T000000000000Z_v1/restore", "admin", json={}
    )
    assert status == 404
    assert "no backup" in body["error"]


async def test_parameter_changes_are_listed_newest_first(api: Api) -> None:
    await set_value(api, "min_confidence", 0.6)
    await set_value(api, "long_adx_min", 20)
    status, body, _ = await api.call("GET", "/parameter-changes?limit=5", "viewer")
    assert status == 200
    assert [(c["parameter"], c["to_version"]) for c in body["changes"]] == [
        ("long_adx_min", 2),
        ("min_confidence", 1),
    ]
    assert body["changes"][0]["actor"] == "token:admin"


async def test_blocked_trade_statistics_count_by_reason_symbol_and_signal(api: Api) -> None:
    events = [
        blocked("a", symbol="BTCUSDC", block_reason="min_confidence"),
        blocked("b", symbol="BTCUSDC", block_reason="max_position_size", signal="SELL"),
        blocked("c", symbol="ETHUSDC", block_reason="min_confidence"),
    ]
    await api.call("POST", "/blocked-trades", "engine", json={"events": events})
    status, body, _ = await api.call(
        "GET",
        "/blocked-trades?since=2026-11-23T00:00:00Z&until=2026-11-24T00:00:00Z&limit=2",
        "viewer",
    )
    assert status == 200
    assert body["total"] == 3
    assert body["by_reason"] == {"min_confidence": 2, "max_position_size": 1}
    assert body["by_symbol"] == {"BTCUSDC": 2, "ETHUSDC": 1}
    assert body["by_signal"] == {"BUY": 2, "SELL": 1}
    assert [i["event_id"] for i in body["items"]] == ["c", "b"]
    _, page2, _ = await api.call(
        "GET",
        "/blocked-trades?since=2026-11-23T00:00:00Z&until=2026-11-24T00:00:00Z&limit=2&offset=2",
        "viewer",
    )
    assert [i["event_id"] for i in page2["items"]] == ["a"]


async def test_a_malformed_window_is_422(api: Api) -> None:
    status, body, _ = await api.call("GET", "/blocked-trades?window=yesterday", "viewer")
    assert status == 422
    assert body["problems"][0]["field"] == "window"


async def test_readiness_reports_the_database(api: Api) -> None:
    status, body, _ = await api.call("GET", "/readyz", None)
    assert (status, body) == (
        200,
        {"status": "ready", "database": True, "slack": "not configured", "lease": "standby"},
    )


async def test_metrics_count_requests_and_ingested_events(api: Api) -> None:
    await api.call("POST", "/blocked-trades", "engine", json=blocked("m1"))
    status, text, response = await api.call("GET", "/metrics", "viewer")
    assert status == 200
    assert response.content_type == "text/plain"
    assert (
        'paramadapt_http_requests_total{method="POST",route="/blocked-trades",status="201"}' in text
    )
    assert 'paramadapt_events_ingested_total{kind="blocked_trade"}' in text
    assert 'paramadapt_outbox_pending{topic="slack.blocked_trade"} 1.0' in text
