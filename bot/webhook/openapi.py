"""The OpenAPI 3.1 document, generated from the route table and its pydantic models."""

from __future__ import annotations

import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from bot.webhook import idempotency
from bot.webhook import schemas as s
from bot.webhook.routing import MAX_ID, NO_CONTROL_CHARACTERS, Route
from bot.webhook.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER

REF = "#/components/schemas/{model}"
ERRORS = {
    401: "Missing or unknown bearer token, or a bad signature on the engine's request",
    403: "The token's scopes do not allow this",
    404: "Not found",
    409: (
        "Conflict with the current state (stale version, override already used, …), "
        "or a request with this Idempotency-Key still in progress"
    ),
    413: "Body too large",
    415: "A body that is not JSON (Content-Type: application/json)",
    422: (
        "Invalid input; `problems` names each bad field (`body` when no single field is at "
        "fault; an invalid Idempotency-Key, or one reused for a different request, included). "
        "Unknown or repeated query parameters are refused too"
    ),
    500: "An unexpected error (a bug): logged with the `reference` the body gives",
    503: "Database unavailable or backup failed; retry after the Retry-After header",
}
DECLARED = {
    200: "OK",
    201: "Created",
    304: "Not modified: the If-None-Match ETag still matches",
    503: "Unavailable; the body says what is down",
}
SIGNING = (
    f"When ENGINE_WEBHOOK_SECRET is set, a request made with a token holding the engine scope "
    f"must carry {TIMESTAMP_HEADER} (Unix seconds, at most 5 minutes off) and "
    f'{SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">, or it is 401. '
    "The same signed request sent again is accepted (a retry; every engine write is "
    "idempotent). Viewer and admin tokens need no signature."
)
SIGNATURE_PARAMETERS = [
    {
        "name": TIMESTAMP_HEADER,
        "in": "header",
        "required": False,
        "description": "The engine's requests, when ENGINE_WEBHOOK_SECRET is set: Unix seconds",
        "schema": {"type": "string"},  # checked only when a signature is due
    },
    {
        "name": SIGNATURE_HEADER,
        "in": "header",
        "required": False,
        "description": 'The engine\'s requests, when ENGINE_WEBHOOK_SECRET is set: "sha256=" + '
        'hex HMAC-SHA256 of "<timestamp>.<raw body>"',
        "schema": {"type": "string"},  # checked only when a signature is due
    },
]
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of the answer you hold: 304 and no body while it still matches",
    "schema": {"type": "string"},
}
ETAG = {
    "ETag": {
        "description": "Changes whenever the answer changes; send it back in If-None-Match",
        "schema": {"type": "string"},
    }
}
BATCH = (
    'A batch {"events": [...]} is all or nothing: when any event is invalid the answer is 422 '
    "naming each bad field (events[3].price) and none of the batch is stored; already-stored "
    'keys are reported with "created": false.'
)


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
        "parameters": _path_parameters(route)
        + _query_parameters(route)
        + _header_parameters(route),
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
            # No body at all is read as {}: optional when {} is a valid body.
            "required": any(f.is_required() for f in route.body[0].model_fields.values()),
            "content": {"application/json": {"schema": schema}},
        }
    description = [BATCH] if len(route.body) > 1 else []
    if route.signed:
        description.append(SIGNING)
    if description:
        operation["description"] = " ".join(description)
    return operation


def _operation_id(route: Route) -> str:
    words = re.sub(r"[{}]", "", route.path).replace("-", "_").strip("/").split("/")
    return "_".join([route.method.lower(), *[w for w in words if w]]) or route.method.lower()


def _path_parameters(route: Route) -> list[dict[str, Any]]:
    kinds = {
        int: {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        str: {"type": "string", "minLength": 1, "pattern": NO_CONTROL_CHARACTERS},
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


def _header_parameters(route: Route) -> list[dict[str, Any]]:
    conditional = [IF_NONE_MATCH] if 304 in route.responses else []
    retry = [idempotency.OPENAPI_PARAMETER] if idempotency.accepts_key(route) else []
    return conditional + retry + (SIGNATURE_PARAMETERS if route.signed else [])


def _inline(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prop.items() if k != "title"}


def _responses(route: Route) -> dict[str, Any]:
    """What the route declares, then the refusals every route of its kind may answer."""
    responses: dict[str, Any] = {}
    for status, model in route.responses.items():
        described = DECLARED.get(status, HTTPStatus(status).phrase)
        entry: dict[str, Any] = {"description": described}
        if model is not None:
            entry["content"] = {"application/json": {"schema": _ref(model)}}
        elif status < 300:
            text = route.media_type.startswith("text/")
            entry["content"] = {
                route.media_type: {"schema": {"type": "string" if text else "object"}}
            }
        if 304 in route.responses and status in (200, 304):
            entry["headers"] = ETAG
        elif idempotency.accepts_key(route) and status < 300:
            entry["headers"] = idempotency.OPENAPI_REPLAYED_HEADER
        responses[str(status)] = entry
    for status, description in ERRORS.items():
        if str(status) not in responses and _may_answer(route, status):
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
