"""The OpenAPI document describes every endpoint, and the live server keeps to it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.webhook.server import ROUTES
from tests.api.conftest import TOKENS, Api
from tests.process import BotProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


async def test_every_route_is_documented_with_its_auth_and_errors(sqlite_api: Api) -> None:
    status, document, _ = await sqlite_api.call("GET", "/openapi.json", None)
    assert status == 200
    assert document["openapi"] == "3.1.0"
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert documented == {(r.method, r.path) for r in ROUTES}
    ingest = document["paths"]["/blocked-trades"]["post"]
    assert ingest["security"] == [{"bearer": []}]
    assert {"201", "200", "401", "403", "413", "415", "422"} <= set(ingest["responses"])
    assert "X-Paramadapt-Signature" in ingest["description"]


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_response_breaking_the_spec(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = tmp_path / "paramadapt.toml"
    tables = [
        f'[[api_tokens]]\nname = "{s}"\ntoken_env = "{s.upper()}_TOKEN"\nscopes = ["{s}"]'
        for s in TOKENS
    ]
    config.write_text("\n".join(tables))
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'st.db'}",
        "BACKUP_DIR": str(tmp_path / "backups"),
        "PORT": str(port),
        "PARAMADAPT_CONFIG": str(config),
        **{f"{scope.upper()}_TOKEN": token for scope, token in TOKENS.items()},
    }
    bot = BotProcess("run", env=env)
    try:
        bot.wait_for("paramadapt listening")
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"http://127.0.0.1:{port}/openapi.json",
                "--header",
                f"Authorization: Bearer {TOKENS['admin']}",
                "--max-examples",
                "25",
                "--seed",
                "20261123",
                "--no-color",
            ],
            cwd=ROOT,  # picks up schemathesis.toml
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        bot.stop()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
