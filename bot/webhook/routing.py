"""Routes declare what they need; one wrapper enforces it for every route.

Order of checks, the same everywhere: authentication (401), authorization (403), content
type (415), size (413), signature of the engine's requests (401), body and query
validation (422). Only then does the handler call its use case.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from bot.config import TOKEN_SCOPES, ApiToken
from bot.runtime import Runtime
from bot.webhook.auth import SCHEME, authenticate, is_engine
from bot.webhook.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from core.authz import Action, Actor, Role
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

    def __init__(
        self,
        status: int,
        message: str,
        problems: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.problems = problems
        self.headers = dict(headers or {})


def invalid(field: str, problem: str, message: str = "invalid request") -> ApiError:
    """A 422 naming one field."""
    return ApiError(422, message, [{"field": field, "problem": problem}])


# What every 401 says about how to authenticate (RFC 7235 requires the header; the error
# middleware adds it).
WWW_AUTHENTICATE = {"WWW-Authenticate": f'{SCHEME} realm="paramadapt"'}
_dumps = functools.partial(json.dumps, allow_nan=False)


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """Every JSON answer: NaN or Infinity cannot slip into one (json.dumps would write them,
    which is not JSON); such a value is a bug, answered as a logged 500 instead."""
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def printable(text: str) -> str:
    """Text fit for one log line: control and other unprintable characters escaped
    (\\n, \\x00, \\u2028), so what a client sent cannot forge a line of the log."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def loggable(request: web.Request) -> str:
    """`METHOD /path?query` as received (still percent-encoded), safe to log."""
    return printable(f"{request.method} {request.raw_path}")


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
            f"{route.method} {route.path} needs a token with the "
            f"{_scopes_allowing(route.action)} scope; token '{token.name}' has "
            f"{', '.join(token.scopes)}"
        )
    return actor, token


def _scopes_allowing(action: Action) -> str:
    """The token scopes that may do `action` (a person's operator role is no token scope)."""
    scopes = [s for s in TOKEN_SCOPES if Actor.having("token", "api", Role(s)).may(action)]
    return " or ".join(scopes) or "no"


async def _read_body(route: Route, request: web.Request) -> bytes:
    """The raw body, as signed. No body at all needs no Content-Type: it is read as {}."""
    if not route.body:
        # Nothing is taken from it, but an engine request's signature covers the body as
        # sent, which may well be `{}`: verified over those very bytes.
        return await _read(request) if route.signed else b""
    is_json = request.content_type == "application/json"
    if not is_json and request.content_length:  # refused before reading it
        raise _unsupported_type(request)
    raw = await _read(request)
    if not is_json and raw:  # sent without a length (chunked)
        raise _unsupported_type(request)
    return raw


async def _read(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[RUNTIME].settings.max_body_bytes
        raise ApiError(413, f"the body is larger than the {limit}-byte limit") from None


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


class _NotJsonNumber(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    """json.loads reads NaN, Infinity and -Infinity, which JSON does not have."""
    raise _NotJsonNumber(f"{name} is not a JSON number (JSON has no NaN or Infinity)")


def _parse_body(route: Route, raw: bytes) -> BaseModel:
    """Strict JSON validation: "0.5" is not a number and true is not 1."""
    raw = raw or b"{}"  # no body: every field takes its default, or is named as missing
    try:
        document = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise _malformed_json(str(error)) from None
    except RecursionError:
        raise _malformed_json("nested too deeply") from None
    if (unstorable := _unstorable(document)) is not None:
        raise invalid(*unstorable)
    model = _choose_model(route.body, document)
    return _validated(lambda: model.model_validate_json(raw, strict=True))


def _malformed_json(problem: str) -> ApiError:
    return invalid("body", problem, f"the body is not valid JSON: {problem}")


_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")
_TEXT_PROBLEM = (
    "must not contain the NUL character (\\u0000) or an unpaired surrogate (\\ud800-\\udfff)"
)


def _unstorable(document: Any) -> tuple[str, str] | None:
    """Where the document holds what no database column can take, and what: text with
    U+0000 or a lone surrogate (PostgreSQL cannot store the one, neither database the
    other: refused on both, so a payload means the same on either), or a number too large
    for a float (1e400 reads as infinity; free-form objects such as `data` included)."""
    pending: list[tuple[Any, tuple[int | str, ...]]] = [(document, ())]
    while pending:
        node, path = pending.pop()
        if isinstance(node, str) and _UNSTORABLE_TEXT.search(node):
            return field_name(path), _TEXT_PROBLEM
        if isinstance(node, float) and not math.isfinite(node):
            return field_name(path), "must be a finite number (this one is too large)"
        if isinstance(node, dict):
            children: list[tuple[int | str, Any]] = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        else:
            continue
        for key, value in children:
            if isinstance(key, str) and _UNSTORABLE_TEXT.search(key):
                return field_name(path), f"a key {_TEXT_PROBLEM}"
            pending.append((value, (*path, key)))
    return None


def _validated(validate: Callable[[], BaseModel]) -> BaseModel:
    """A request's pydantic refusal as a 422 naming each field. Only the request's: a
    model failing later, in a handler, is a bug (500), not the client's doing."""
    try:
        return validate()
    except PydanticValidationError as error:
        raise ApiError(422, "invalid request", problems_of(error)) from None


def problems_of(error: PydanticValidationError) -> list[dict[str, str]]:
    return [{"field": field_name(e["loc"]), "problem": e["msg"]} for e in error.errors()]


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
        if _has_control_characters(raw):
            raise invalid(name, CONTROL_PROBLEM, "invalid path")
        # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
        digits = raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_ID))
        if kind is int and not (digits and 1 <= int(raw) <= MAX_ID):
            raise invalid(name, f"must be a whole number from 1 to {MAX_ID}", "invalid path")
        values[name] = kind(raw)
    return values


CONTROL_PROBLEM = "must not contain control characters (such as %00 or %0A)"
# The same rule as a JSON Schema pattern, for the OpenAPI document: no C0 or C1 control.
NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"


def _has_control_characters(text: str) -> bool:
    """NUL, a newline, …: no id or name has them; PostgreSQL cannot even compare NUL."""
    return any(unicodedata.category(char) in ("Cc", "Cs") for char in text)


def _parse_query(route: Route, request: web.Request) -> BaseModel | None:
    """Every parameter known and given once: a typo (`windw=7d`) must not silently fall back
    to the default, nor one of two values silently win."""
    if route.query is None:
        return None
    known = route.query.model_fields
    problems = []
    for name in dict.fromkeys(request.query):
        if name not in known:
            problem = f"unknown query parameter; known: {', '.join(known) or 'none'}"
        elif len(request.query.getall(name)) > 1:
            problem = "must be given once"
        elif _has_control_characters(request.query[name]):
            problem = CONTROL_PROBLEM
        else:
            continue
        problems.append({"field": printable(name), "problem": problem})
    if problems:
        raise ApiError(422, "invalid query", problems)
    query = route.query
    return _validated(lambda: query.model_validate(dict(request.query)))
