"""Routes declare what they need; one wrapper enforces it for every route.

Order of checks, the same everywhere: authentication (401), authorization (403), content
type (415), size (413), signature of the engine's requests (401), body and query
validation (422). Only then does the handler call its use case.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from bot.config import ApiToken
from bot.runtime import Runtime
from bot.webhook.auth import authenticate, is_engine
from bot.webhook.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from core.authz import Action, Actor, needed_role
from core.errors import PermissionDeniedError

RUNTIME = web.AppKey("runtime", Runtime)


@dataclass(frozen=True)
class Call:
    """What a handler gets: the request, who is calling, and the validated inputs."""

    request: web.Request
    runtime: Runtime
    actor: Actor
    body: Any = None
    query: Any = None
    path: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Call], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    action: Action | None  # None: public, no token needed
    tag: str
    responses: dict[int, type[BaseModel] | None]
    body: tuple[type[BaseModel], ...] = ()  # several: chosen by BODY_CHOOSERS
    query: type[BaseModel] | None = None
    path_params: dict[str, type] = field(default_factory=dict)
    # An engine route: the engine's requests are signed when ENGINE_WEBHOOK_SECRET is set.
    signed: bool = False
    media_type: str = "application/json"  # of the 2xx answers, for the OpenAPI document


class ApiError(Exception):
    """An HTTP-level refusal (401, 413, 415, 422) with a JSON body."""

    def __init__(self, status: int, message: str, problems: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.problems = problems


ANONYMOUS = Actor.having("anonymous", "api")


def wrap(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        runtime = request.app[RUNTIME]
        actor, token = _authorize(route, request, runtime.settings.api_tokens)
        raw = await _read_body(route, request)
        if route.signed and is_engine(token) and runtime.settings.engine_webhook_secret:
            _check_signature(request, raw, runtime.settings.engine_webhook_secret)
        call = Call(
            request=request,
            runtime=runtime,
            actor=actor,
            body=_parse_body(route, raw) if route.body else None,
            query=_parse_query(route, request),
            path=_parse_path(route, request),
        )
        return await route.handler(call)

    return endpoint


def _authorize(
    route: Route, request: web.Request, tokens: tuple[ApiToken, ...]
) -> tuple[Actor, ApiToken | None]:
    """Who calls, and with which token (None on a public route)."""
    if route.action is None:
        return ANONYMOUS, None
    token = authenticate(request.headers.get("Authorization"), tokens)
    if token is None:
        raise ApiError(401, "missing or unknown bearer token (Authorization: Bearer <token>)")
    actor = Actor.having(f"token:{token.name}", "api", *token.roles)
    if not actor.may(route.action):
        raise PermissionDeniedError(
            f"{route.method} {route.path} needs a token with the {needed_role(route.action)} "
            f"scope; token '{token.name}' has {', '.join(token.scopes)}"
        )
    return actor, token


async def _read_body(route: Route, request: web.Request) -> bytes:
    """The raw body, as signed. No body at all needs no Content-Type: it is read as {}."""
    if not route.body:
        return b""
    is_json = request.content_type == "application/json"
    if not is_json and request.content_length:  # refused before reading it
        raise _unsupported_type(request)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[RUNTIME].settings.max_body_bytes
        raise ApiError(413, f"the body is larger than the {limit}-byte limit") from None
    if not is_json and raw:  # sent without a length (chunked)
        raise _unsupported_type(request)
    return raw


def _unsupported_type(request: web.Request) -> ApiError:
    content_type = request.content_type
    return ApiError(
        415,
        f"the body must be JSON (Content-Type: application/json), not {content_type or 'none'}",
    )


def _check_signature(request: web.Request, raw: bytes, secret: str) -> None:
    """A request seen before is not refused: the signature covers only the timestamp and the
    body, so an engine's retry (or two GETs in one second) looks the same, and every engine
    write is idempotent (ingest by event id, an override consumed once in the database)."""
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER)
    problem = verify(secret, timestamp, signature, raw, time.time())
    if problem:
        raise ApiError(401, f"invalid request signature: {problem}")


def _parse_body(route: Route, raw: bytes) -> BaseModel:
    """Strict JSON validation: "0.5" is not a number and true is not 1."""
    raw = raw or b"{}"  # no body: every field takes its default, or is named as missing
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise _malformed_json(str(error)) from None
    except RecursionError:
        raise _malformed_json("nested too deeply") from None
    if (where := _nul_location(document)) is not None:
        problem = "must not contain the NUL character (\\u0000)"
        raise ApiError(422, "invalid request", [{"field": where, "problem": problem}])
    model = _choose_model(route.body, document)
    return model.model_validate_json(raw, strict=True)


def _malformed_json(problem: str) -> ApiError:
    return ApiError(
        422, f"the body is not valid JSON: {problem}", [{"field": "body", "problem": problem}]
    )


def _nul_location(document: Any) -> str | None:
    """Where a text holds U+0000, which PostgreSQL cannot store (SQLite could: refused on
    both, so a payload means the same on either database)."""
    pending: list[tuple[Any, tuple[int | str, ...]]] = [(document, ())]
    while pending:
        node, path = pending.pop()
        if isinstance(node, str) and "\x00" in node:
            return field_name(path)
        if isinstance(node, dict):
            children: list[tuple[int | str, Any]] = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        else:
            continue
        for key, value in children:
            if isinstance(key, str) and "\x00" in key:
                return field_name(path)
            pending.append((value, (*path, key)))
    return None


def field_name(path: Sequence[int | str]) -> str:
    """A JSON location as people write it: events[0].symbol; "body" for the whole body."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part or '""'  # an empty key is still a key someone sent
            text += f".{name}" if text else name
    return text or "body"


def _choose_model(models: tuple[type[BaseModel], ...], document: Any) -> type[BaseModel]:
    """A single event or a batch `{"events": [...]}`: the batch is recognised by its key."""
    if len(models) == 1:
        return models[0]
    single, batch = models
    return batch if isinstance(document, dict) and "events" in document else single


MAX_ID = 2**63 - 1  # the largest id a database row can have


def _parse_path(route: Route, request: web.Request) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, kind in route.path_params.items():
        raw = request.match_info[name]
        # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
        digits = raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_ID))
        if kind is int and not (digits and 1 <= int(raw) <= MAX_ID):
            problem = f"must be a whole number from 1 to {MAX_ID}"
            raise ApiError(422, "invalid path", [{"field": name, "problem": problem}])
        values[name] = kind(raw)
    return values


def _parse_query(route: Route, request: web.Request) -> BaseModel | None:
    if route.query is None:
        return None
    return route.query.model_validate(dict(request.query))
