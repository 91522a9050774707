"""Prometheus metrics of this process, served at GET /metrics."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "paramadapt_http_requests",
    "HTTP requests by route template, method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "paramadapt_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
EVENTS_INGESTED = Counter(
    "paramadapt_events_ingested",
    "Engine events stored (duplicates not counted)",
    ["kind"],
    registry=REGISTRY,
)
ALERTS_SENT = Counter(
    "paramadapt_alerts_sent",
    "Blocked trades shown in a Slack alert: a new message, or an update adding them to one",
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "paramadapt_outbox_pending",
    "Undelivered outbox messages by topic",
    ["topic"],
    registry=REGISTRY,
)
