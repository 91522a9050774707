"""The OpenAPI 3.1 document, generated from the route table and its pydantic models."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from bot.webhook import schemas as s
from bot.webhook.routing import MAX_ID, Route

REF = "#/components/schemas/{model}"
ERRORS = {
    401: "Missing or unknown bearer token, or a bad engine signature",
    403: "The token's scopes do not allow this",
    404: "Not found",
    409: "Conflict with the current state (stale version, override already used, …)",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Invalid input; `problems` names each bad field",
    503: "Database unavailable or backup failed; retry after the Retry-After header",
}


def build_openapi(routes: Sequence[Route], version: str) -> dict[str, Any]:
    models = _models(routes)
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "paramadapt",
            "version": version,
            "description": "The trading engine's and operators' API of paramadapt.",
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "API token from the configuration; scopes engine, viewer, admin",
                }
            },
        },
    }


def _models(routes: Sequence[Route]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [s.ErrorOut]
    for route in routes:
        candidates = [*route.body, route.query, *route.responses.values()]
        found += [m for m in candidates if m is not None and m not in found]
    return found


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": _operation_id(route),
        "tags": [route.tag],
        "parameters": _path_parameters(route) + _query_parameters(route),
        "responses": _responses(route),
    }
    if route.action is not None:
        operation["security"] = [{"bearer": []}]
    else:
        operation["security"] = []
    if route.body:
        schema = (
            _ref(route.body[0])
            if len(route.body) == 1
            else {"oneOf": [_ref(m) for m in route.body]}
        )
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    if route.signed:
        operation["description"] = (
            "When ENGINE_WEBHOOK_SECRET is set, the request must carry X-Paramadapt-Timestamp "
            'and X-Paramadapt-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">.'
        )
    return operation


def _operation_id(route: Route) -> str:
    words = re.sub(r"[{}]", "", route.path).replace("-", "_").strip("/").split("/")
    return "_".join([route.method.lower(), *[w for w in words if w]]) or route.method.lower()


def _path_parameters(route: Route) -> list[dict[str, Any]]:
    kinds = {
        int: {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        str: {"type": "string", "minLength": 1},
    }
    return [
        {"name": name, "in": "path", "required": True, "schema": kinds[kind]}
        for name, kind in route.path_params.items()
    ]


def _query_parameters(route: Route) -> list[dict[str, Any]]:
    if route.query is None:
        return []
    schema = route.query.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": _inline(prop)}
        for name, prop in schema.get("properties", {}).items()
    ]


def _inline(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prop.items() if k != "title"}


def _responses(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, model in route.responses.items():
        entry: dict[str, Any] = {"description": "OK" if status < 300 else "Not modified"}
        if model is not None:
            entry["content"] = {"application/json": {"schema": _ref(model)}}
        responses[str(status)] = entry
    for status, description in ERRORS.items():
        if _may_answer(route, status):
            responses[str(status)] = {
                "description": description,
                "content": {"application/json": {"schema": _ref(s.ErrorOut)}},
            }
    return responses


def _may_answer(route: Route, status: int) -> bool:
    if status in (401, 403):
        return route.action is not None
    if status in (413, 415):
        return bool(route.body)
    return status != 409 or route.method == "POST"
