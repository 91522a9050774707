"""The backup directory cannot be written: every change is refused with a clear error and
never applied, since no change may happen without its backup; it works again as soon as
the directory does, without a restart."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.api.conftest import Api
from tests.e2e.conftest import ADMIN, on_sqlite, param
from tests.fakeslack import FakeSlack
from tests.fuzz.stored import row_counts


def read_only_directory(backup_dir: Path) -> None:
    backup_dir.mkdir(parents=True, exist_ok=True)
    backup_dir.chmod(0o500)


def file_in_its_place(backup_dir: Path) -> None:
    backup_dir.parent.mkdir(parents=True, exist_ok=True)
    backup_dir.write_text("not a directory")


def writable_again(backup_dir: Path) -> None:
    if backup_dir.is_dir():
        backup_dir.chmod(0o700)
    else:
        backup_dir.unlink()


SCOPES = ["global", "HIGH", "MEDIUM", "LOW"]
BREAKAGES = [
    pytest.param(
        read_only_directory,
        marks=pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders"),
    ),
    file_in_its_place,
]


async def effective(api: Api, scope: str = "global") -> dict[str, object]:
    status, body, _ = await api.call("GET", f"/parameters?scope={scope}", "viewer")
    assert status == 200
    return body


@pytest.mark.parametrize("break_it", BREAKAGES)
async def test_an_api_change_is_refused_with_503_and_not_applied(
    api: Api, backup_dir: Path, break_it: Callable[[Path], None]
) -> None:
    before, stored = await effective(api), await row_counts(api.runtime.engine)
    break_it(backup_dir)
    change = {"value": 0.6, "reason": "backup dir broken"}

    status, body, response = await api.call("POST", "/parameters/min_confidence", json=change)

    assert status == 503 and response.headers["Retry-After"]
    assert "backup of global could not be written" in body["error"]
    assert "nothing was changed" in body["error"]
    assert await effective(api) == before
    assert await row_counts(api.runtime.engine) == stored
    assert not any(backup_dir.parent.rglob("*.json"))
    writable_again(backup_dir)
    status, _, _ = await api.call("POST", "/parameters/min_confidence", json=change)
    assert status == 200
    assert (await effective(api))["parameters"]["min_confidence"] == 0.6


@on_sqlite
@pytest.mark.usefixtures("bot")
async def test_a_slack_change_is_refused_to_the_asker_and_not_announced(
    slack: FakeSlack, api: Api, backup_dir: Path
) -> None:
    before = await effective(api)
    file_in_its_place(backup_dir)

    answer = await param(slack, "set min_confidence 0.6 backup dir broken", ADMIN)

    assert answer.response_type == "ephemeral"
    assert "could not be written" in answer.text and "nothing was changed" in answer.text
    assert await effective(api) == before


@pytest.mark.parametrize("break_it", BREAKAGES)
async def test_a_learning_session_that_cannot_back_up_does_not_start(
    api: Api, backup_dir: Path, break_it: Callable[[Path], None]
) -> None:
    before = {scope: await effective(api, scope) for scope in SCOPES}
    break_it(backup_dir)
    start = {"duration_minutes": 60, "reason": "backup dir broken"}

    status, body, _ = await api.call("POST", "/start-learning-session", json=start)

    assert status == 503, body
    assert "could not be written" in body["error"]
    assert {scope: await effective(api, scope) for scope in SCOPES} == before
    _, running, _ = await api.call("GET", "/learning-session-status", "viewer")
    assert running["active"] is False
