"""The aiohttp HTTP server: the engine's and operators' API, on one port."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import version

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.metrics import HTTP_LATENCY, HTTP_REQUESTS, QUEUE_DEPTH, REGISTRY
from bot.runtime import Runtime
from bot.webhook import (
    engine_routes,
    idempotency,
    learning_routes,
    learning_session_routes,
    market_routes,
    operator_routes,
    slack_routes,
)
from bot.webhook import schemas as s
from bot.webhook.openapi import build_openapi
from bot.webhook.routing import (
    RUNTIME,
    WWW_AUTHENTICATE,
    ApiError,
    Call,
    Route,
    json_response,
    loggable,
    printable,
    wrap,
)
from core.authz import Action
from core.errors import (
    BackupFailedError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UserError,
    ValidationError,
)
from core.models import AuditEntry, Outcome
from storage.db import mask_url

log = logging.getLogger(__name__)

Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATUS_OF: list[tuple[type[UserError], int]] = [
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (ValidationError, 422),
    (BackupFailedError, 503),
]
DATABASE_ERRORS = (OperationalError, DBAPIError, ConnectionError, TimeoutError, OSError)


async def healthz(_call: Call) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(call: Call) -> web.Response:
    database = await call.runtime.database_ready()
    slack = call.runtime.slack_status()
    ready = database and slack != "disconnected"
    out = s.ReadyOut(
        status="ready" if ready else "not ready",
        database=database,
        slack=slack,
        lease="held" if call.runtime.holds_lease() else "standby",
    )
    if ready:
        return json_response(out.model_dump())
    return json_response(out.model_dump(), status=503, headers={"Retry-After": "5"})


async def metrics(call: Call) -> web.Response:
    """The registry, always: while the database is down the queue depths keep the values
    last read (a warning says so), and Prometheus keeps every other series."""
    try:
        pending = await call.runtime.outbox.pending()  # only the topics with something waiting
    except DATABASE_ERRORS as error:
        log.warning(
            "/metrics: outbox depth not read, queue gauges left as they were "
            "(database unavailable: %s)",
            printable(str(error)),
        )
    else:
        shown = {
            sample.labels["topic"] for metric in QUEUE_DEPTH.collect() for sample in metric.samples
        }
        for topic in shown | pending.keys():  # a topic that drained reads 0 again
            QUEUE_DEPTH.labels(topic).set(pending.get(topic, 0))
    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def openapi(call: Call) -> web.Response:
    return json_response(call.request.app[OPENAPI])


OPS_ROUTES = [
    Route("GET", "/healthz", healthz, "Liveness", None, "operations", {200: s.HealthOut}),
    Route(
        "GET",
        "/readyz",
        readyz,
        "Readiness: database reachable, Slack connected when configured",
        None,
        "operations",
        {200: s.ReadyOut, 503: s.ReadyOut},
    ),
    Route(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics, in the Prometheus text format",
        Action.READ,
        "operations",
        {200: None},
        media_type="text/plain",
    ),
    Route("GET", "/openapi.json", openapi, "This document", None, "operations", {200: None}),
]
ROUTES: list[Route] = [
    *OPS_ROUTES,
    *engine_routes.ROUTES,
    *market_routes.ROUTES,
    *operator_routes.ROUTES,
    *learning_routes.ROUTES,
    *slack_routes.ROUTES,
    *learning_session_routes.ROUTES,
]
OPENAPI = web.AppKey("openapi", dict)


def build_http_app(runtime: Runtime, routes: Sequence[Route] = ROUTES) -> web.Application:
    app = web.Application(
        client_max_size=runtime.settings.max_body_bytes,
        middlewares=[_observe, idempotency.settle, _errors],
    )
    app[RUNTIME] = runtime
    app[OPENAPI] = build_openapi(routes, version("paramadapt"))
    for route in routes:
        app.router.add_route(route.method, route.path, wrap(idempotency.guarded(route)))
    return app


@web.middleware
async def _observe(request: web.Request, handler: Endpoint) -> web.StreamResponse:
    """Counts and times every answer; the last net for an exception nothing else caught."""
    started = time.perf_counter()
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else "unmatched"

    def count(status: int) -> None:
        HTTP_REQUESTS.labels(template, request.method, str(status)).inc()
        HTTP_LATENCY.labels(template).observe(time.perf_counter() - started)

    try:
        response = await handler(request)
    except web.HTTPException as error:  # raised, not returned: a redirect, say
        count(error.status)
        raise
    except Exception as error:
        response = _internal_error(request, error)
    count(response.status)
    return response


@web.middleware
async def _errors(request: web.Request, handler: Endpoint) -> web.StreamResponse:
    """Every refusal is a JSON body saying what was wrong; nothing leaks a stack trace."""
    try:
        return await handler(request)
    except ApiError as error:
        return _error(request, error.status, str(error), error.problems, error.headers)
    except PermissionDeniedError as error:
        await _audit_refusal(request, str(error))
        return _error(request, 403, str(error))
    except ValidationError as error:
        problem = {"field": error.field or "body", "problem": str(error)}
        return _error(request, 422, str(error), [problem])
    except UserError as error:
        status = next(code for kind, code in STATUS_OF if isinstance(error, kind))
        headers = {"Retry-After": "30"} if status == 503 else None
        return _error(request, status, str(error), headers=headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return _error(request, error.status, error.reason, headers=allow)
    except DATABASE_ERRORS as error:
        log.warning("database unavailable during %s: %s", loggable(request), printable(str(error)))
        return _error(
            request, 503, "database unavailable; retry later", headers={"Retry-After": "5"}
        )
    except Exception as error:
        return _internal_error(request, error)


def _internal_error(request: web.Request, error: Exception) -> web.Response:
    """A bug: logged with its traceback under a reference the client gets, nothing more."""
    reference = uuid.uuid4().hex[:12]
    log.error("internal error %s during %s", reference, loggable(request), exc_info=error)
    return _error(request, 500, "internal error", reference=reference)


def _error(
    request: web.Request,
    status: int,
    message: str,
    problems: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    reference: str | None = None,
) -> web.Response:
    """The JSON answer of a refusal. Every 422 names at least one field (`body` when no
    single field is at fault), and every 401 says how to authenticate."""
    log.info("%s -> %d: %s", loggable(request), status, printable(message))
    if status == 422 and not problems:
        problems = [{"field": "body", "problem": message}]
    if status == 401:
        headers = {**WWW_AUTHENTICATE, **(headers or {})}
    body = s.ErrorOut(
        error=message,
        problems=[s.Problem(**p) for p in problems] if problems else None,
        reference=reference,
    )
    return json_response(body.model_dump(exclude_none=True), status=status, headers=headers)


async def _audit_refusal(request: web.Request, message: str) -> None:
    runtime = request.app[RUNTIME]
    path = printable(request.path)  # no NUL: PostgreSQL could not store it
    entry = AuditEntry(
        at=runtime.deps.clock.now(),
        actor="api",
        source="api",
        action=f"{request.method} {path}"[:32],
        target=path[:128],
        outcome=Outcome.REFUSED,
        detail={"error": message},
    )
    try:
        await runtime.store.record(entry)
    except DATABASE_ERRORS:
        log.warning("could not audit a refused request", exc_info=True)


class HttpServer:
    def __init__(self, runtime: Runtime) -> None:
        self.app = build_http_app(runtime)
        self._runtime = runtime
        self._runner = web.AppRunner(self.app, access_log=None)

    async def start(self) -> None:
        await self._runner.setup()
        settings = self._runtime.settings
        await web.TCPSite(self._runner, settings.host, settings.port).start()
        log.info(
            "paramadapt listening on http://%s:%d (database %s)",
            settings.host,
            settings.port,
            mask_url(settings.database_url),
        )

    async def stop(self) -> None:
        await self._runner.cleanup()
