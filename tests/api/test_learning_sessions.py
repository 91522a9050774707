"""The spec's learning-session endpoints over the live server."""

from __future__ import annotations

from tests.api.conftest import Api, closed


async def start(api: Api, minutes: int = 30, **extra: object) -> tuple[int, dict]:
    body = {"duration_minutes": minutes, "reason": "explore lower confidence", **extra}
    status, session, _ = await api.call("POST", "/start-learning-session", json=body)
    return status, session


async def test_starting_relaxes_the_parameters_the_engine_reads(api: Api) -> None:
    status, session = await start(api, relax_pct={"min_confidence": 20})
    assert status == 201
    assert session["status"] == "ACTIVE"
    assert session["relaxed"]["global"]["min_confidence"] == 0.52
    _, params, _ = await api.call("GET", "/parameters", "engine")
    assert params["parameters"]["min_confidence"] == 0.52


async def test_status_shows_time_left_and_trades_so_far(api: Api) -> None:
    await start(api)
    await api.call("POST", "/trades", "engine", json=closed(exit_time="2099-01-01T00:00:00+00:00"))
    status, body, _ = await api.call("GET", "/learning-session-status", "viewer")
    assert status == 200
    assert body["active"] is True
    assert 29 * 60 < body["time_left_seconds"] <= 30 * 60
    assert body["so_far"]["trades"] == 1


async def test_no_session_is_reported_plainly(api: Api) -> None:
    status, body, _ = await api.call("GET", "/learning-session-status", "viewer")
    assert (status, body["active"], body["session"]) == (200, False, None)


async def test_ending_restores_the_originals_exactly_and_analyses(api: Api) -> None:
    _, before, _ = await api.call("GET", "/parameters", "engine")
    await start(api)
    status, ended, _ = await api.call("POST", "/end-learning-session", json={"reason": "enough"})
    assert status == 200
    assert ended["status"] == "STOPPED"
    assert ended["analysis"]["session"]["trades"] == 0
    assert ended["recommendations"]["withheld"] == (
        "no recommendations from 0 trades: at least 20 are needed"
    )
    _, after, _ = await api.call("GET", "/parameters", "engine")
    assert after["parameters"] == before["parameters"]


async def test_a_second_session_is_refused_with_409(api: Api) -> None:
    await start(api)
    status, body = await start(api)
    assert status == 409
    assert "already" in body["error"]


async def test_a_duration_outside_the_bounds_is_refused(api: Api) -> None:
    status, body = await start(api, minutes=1000)
    assert status == 422
    assert "5" in body["error"] and "240" in body["error"]


async def test_history_lists_sessions_newest_first(api: Api) -> None:
    await start(api)
    await api.call("POST", "/end-learning-session", json={})
    status, body, _ = await api.call("GET", "/learning-sessions?limit=5", "viewer")
    assert status == 200
    assert [s["status"] for s in body["sessions"]] == ["STOPPED"]


async def test_ending_without_a_session_is_409(api: Api) -> None:
    status, body, _ = await api.call("POST", "/end-learning-session", json={})
    assert (status, body["error"]) == (409, "no learning session is running")


async def test_a_start_in_the_cooldown_is_refused_saying_when_the_next_may_start(
    api: Api,
) -> None:
    await start(api)
    await api.call("POST", "/end-learning-session", json={})
    status, body = await start(api)
    assert status == 409
    assert body["error"].startswith("cooling down: learning session 1 ended at")
