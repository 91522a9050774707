"""The spec's optimizer-service endpoints: backups, restore, parameter changes, statistics;
how their bodies are read; and what /metrics shows of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.webhook.server import ROUTES
from tests.api.conftest import Api, api_settings, blocked, serve
from tests.e2e.conftest import APP_TOKEN, BOT_TOKEN, RISK, alert_for, outbox_drained, running_bot
from tests.fakeslack import FakeSlack

ALERT_DEPTH = 'paramadapt_outbox_pending{topic="slack.blocked_trade"}'


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


async def sample(api: Api, series: str) -> float | None:
    """The value /metrics shows for one series; None when it does not show it."""
    _, text, _ = await api.call("GET", "/metrics", "viewer")
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return None


@pytest.fixture
async def slack_api(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[Api]:
    """The API of a process whose Slack side (Socket Mode, to the fake Slack) runs on demand."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'slack.db'}",
        backup_dir=tmp_path / "backups",
        slack_bot_token=BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_api_url=slack.api_url,
        risk_channel=RISK,
    )
    async for client in serve(api_settings(settings)):
        yield client


async def test_metrics_count_each_blocked_trade_alerted_in_slack(
    slack_api: Api, slack: FakeSlack
) -> None:
    before = await sample(slack_api, "paramadapt_alerts_sent_total")
    async with running_bot(slack_api.runtime):
        await slack.wait_for_connections(1)
        await slack_api.call("POST", "/blocked-trades", "engine", json=blocked("alerted"))
        await alert_for(slack)
        await outbox_drained(slack_api.runtime)
    after = await sample(slack_api, "paramadapt_alerts_sent_total")
    assert before is not None and after == before + 1


async def test_the_outbox_depth_reads_0_again_once_slack_has_the_alert(
    slack_api: Api, slack: FakeSlack
) -> None:
    await slack_api.call("POST", "/blocked-trades", "engine", json=blocked("queued"))
    assert await sample(slack_api, ALERT_DEPTH) == 1
    async with running_bot(slack_api.runtime):
        await slack.wait_for_connections(1)
        await outbox_drained(slack_api.runtime)
    assert await sample(slack_api, ALERT_DEPTH) == 0


# ------------------------------------------------------------- reading request bodies


async def test_a_backup_without_a_body_backs_up_the_global_scope(api: Api) -> None:
    """As `curl -X POST -H 'Authorization: Bearer …' …/backup-configuration` sends it."""
    status, backup, _ = await api.call("POST", "/backup-configuration", "admin")
    assert status == 201
    assert backup["scope"] == "global"


async def test_ending_a_learning_session_without_a_body_ends_it(api: Api) -> None:
    body = {"duration_minutes": 30, "reason": "explore"}
    await api.call("POST", "/start-learning-session", "admin", json=body)
    status, ended, _ = await api.call("POST", "/end-learning-session", "admin")
    assert status == 200
    assert ended["status"] == "STOPPED"


async def test_no_body_where_fields_are_required_is_422_naming_them(api: Api) -> None:
    status, body, _ = await api.call("POST", "/parameters/min_confidence", "admin")
    assert status == 422
    assert {p["field"] for p in body["problems"]} == {"value", "reason"}
    _, params, _ = await api.call("GET", "/parameters", "viewer")
    assert params["version"] == 0


async def test_a_body_that_is_not_json_is_415_even_where_every_field_is_optional(
    api: Api,
) -> None:
    status, body, _ = await api.call(
        "POST",
        "/backup-configuration",
        "admin",
        data="reason=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 415
    assert "must be JSON" in body["error"]


def concrete(path: str) -> str:
    return path.replace("{id}", "1").replace("{name}", "min_confidence")


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r.body], ids=lambda r: f"{r.method} {r.path}"
)
async def test_malformed_json_is_422_with_the_body_named_as_the_problem(
    sqlite_api: Api, route: object
) -> None:
    status, body, _ = await sqlite_api.call(
        route.method,  # type: ignore[attr-defined]
        concrete(route.path),  # type: ignore[attr-defined]
        "admin",
        data="{",
        headers={"Content-Type": "application/json"},
    )
    assert status == 422
    assert body["error"].startswith("the body is not valid JSON: ")
    assert [p["field"] for p in body["problems"]] == ["body"]
    assert body["problems"][0]["problem"] in body["error"]


async def test_an_invalid_backup_request_is_422_naming_the_field_and_backs_up_nothing(
    api: Api,
) -> None:
    status, body, _ = await api.call(
        "POST", "/backup-configuration", "admin", json={"scope": "EXTREME"}
    )
    assert status == 422
    assert [p["field"] for p in body["problems"]] == ["scope"]
    _, listing, _ = await api.call("GET", "/configuration-backups", "viewer")
    assert listing["backups"] == []


async def test_an_invalid_restore_request_is_422_naming_the_field_and_restores_nothing(
    api: Api,
) -> None:
    await set_value(api, "long_rsi_entry", 35)
    _, backup, _ = await api.call("POST", "/backup-configuration", "admin", json={})
    await set_value(api, "long_rsi_entry", 40)
    status, body, _ = await api.call(
        "POST", f"/configuration-backups/{backup['id']}/restore", "admin", json={"based_on": "2"}
    )
    assert status == 422
    assert [p["field"] for p in body["problems"]] == ["based_on"]
    _, params, _ = await api.call("GET", "/parameters", "viewer")
    assert (params["version"], params["parameters"]["long_rsi_entry"]) == (2, 40)


async def test_an_invalid_message_is_422_naming_the_field(api: Api) -> None:
    """Checked before Slack is needed: this process has no Slack, yet the answer is 422."""
    status, body, _ = await api.call(
        "POST", "/send-message", "admin", json={"channel": "#risk blocked", "text": "hello"}
    )
    assert status == 422
    assert [p["field"] for p in body["problems"]] == ["channel"]


async def test_an_invalid_end_request_is_422_naming_the_field_and_the_session_runs_on(
    api: Api,
) -> None:
    body = {"duration_minutes": 30, "reason": "explore"}
    await api.call("POST", "/start-learning-session", "admin", json=body)
    status, refused, _ = await api.call(
        "POST", "/end-learning-session", "admin", json={"reason": 42}
    )
    assert status == 422
    assert [p["field"] for p in refused["problems"]] == ["reason"]
    _, state, _ = await api.call("GET", "/learning-session-status", "viewer")
    assert state["active"] is True
