"""The OpenAPI document describes every endpoint, and the live server keeps to it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

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


async def document(api: Api) -> dict[str, Any]:
    _, found, _ = await api.call("GET", "/openapi.json", None)
    return cast(dict[str, Any], found)


def headers_of(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation["parameters"] if p["in"] == "header"}


async def test_a_not_ready_answer_is_documented_as_the_readiness_body(sqlite_api: Api) -> None:
    readyz = (await document(sqlite_api))["paths"]["/readyz"]["get"]["responses"]
    assert readyz["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReadyOut"
    }


async def test_metrics_are_documented_as_prometheus_text(sqlite_api: Api) -> None:
    metrics = (await document(sqlite_api))["paths"]["/metrics"]["get"]["responses"]["200"]
    assert list(metrics["content"]) == ["text/plain"]
    _, _, response = await sqlite_api.call("GET", "/metrics", "viewer")
    assert response.content_type == "text/plain"


async def test_parameters_document_if_none_match_and_the_etag_of_200_and_304(
    sqlite_api: Api,
) -> None:
    parameters = (await document(sqlite_api))["paths"]["/parameters"]["get"]
    assert "If-None-Match" in headers_of(parameters)
    assert "ETag" in parameters["responses"]["200"]["headers"]
    assert "ETag" in parameters["responses"]["304"]["headers"]
    assert "content" not in parameters["responses"]["304"]


async def test_every_engine_route_documents_its_signature_headers(sqlite_api: Api) -> None:
    paths = (await document(sqlite_api))["paths"]
    signing = {"X-Paramadapt-Timestamp", "X-Paramadapt-Signature"}
    for route in ROUTES:
        operation = paths[route.path][route.method.lower()]
        documented = signing <= headers_of(operation)
        assert documented == route.signed, f"{route.method} {route.path}"
        if route.signed:
            assert "engine scope" in operation["description"]
            assert not any(p["required"] for p in operation["parameters"] if p["in"] == "header")


@pytest.mark.parametrize("path", ["/blocked-trades", "/trades"])
async def test_a_batch_is_documented_as_all_or_nothing(sqlite_api: Api, path: str) -> None:
    ingest = (await document(sqlite_api))["paths"][path]["post"]
    assert "all or nothing" in ingest["description"]
    assert "none of the batch is stored" in ingest["description"]


async def test_a_body_is_optional_exactly_where_every_field_is(sqlite_api: Api) -> None:
    paths = (await document(sqlite_api))["paths"]
    assert paths["/end-learning-session"]["post"]["requestBody"]["required"] is False
    assert paths["/backup-configuration"]["post"]["requestBody"]["required"] is False
    assert paths["/parameters/{name}"]["post"]["requestBody"]["required"] is True
    assert paths["/blocked-trades"]["post"]["requestBody"]["required"] is True


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
            env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks"},
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        bot.stop()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
