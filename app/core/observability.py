"""One access line per request, request metrics, and the last word on unexpected errors.

The access line says: method, route template (never the path: paths carry children's
ids), status, duration, request id. An exception that nothing else handled is logged by
type and place (core/logging.py drops its message) and answered with the one internal
problem document; it never travels further up to the server, which would log its message.
This middleware sits inside RequestContextMiddleware, so that answer still carries the
security headers and X-Request-ID.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter,
                               Histogram, generate_latest)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import internal_problem_response
from app.core.logging import get_logger

log = get_logger("childvoice.access")
errors_log = get_logger("childvoice.error")

REQUEST_SECONDS = Histogram(
    "childvoice_request_duration_seconds", "Time to answer a request, by route template.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
SYNC_ITEMS = Counter("childvoice_sync_items_total", "Sync batch items, by result.",
                     ["result"])


def count_sync_results(statuses: Iterable[str]) -> None:
    for status in statuses:
        SYNC_ITEMS.labels(status).inc()


def route_template(scope: Scope) -> str:
    """The matched route's template (`/api/v1/children/{child_id}/plan`), or a fixed word
    for what matched nothing: never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path:
        return "unmatched"
    # An included router's routes know their path below its prefix (/api/v1): find the
    # prefix as the part of the request path before where the route's pattern matched.
    full = scope.get("path", "")
    regex = getattr(route, "path_regex", None)
    if regex is not None and not regex.match(full):
        for index in range(1, len(full)):
            if full[index] == "/" and regex.match(full[index:]):
                return full[:index] + path
    return path


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_status(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except Exception as exc:  # noqa: BLE001 - the last place an error can be answered
            errors_log.error("unhandled error", exc_info=exc, method=scope.get("method"),
                             route=route_template(scope),
                             request_id=scope.get("state", {}).get("request_id"))
            status = 500
            if not response_started:
                await internal_problem_response()(scope, receive, send)
        finally:
            duration = time.perf_counter() - started
            route = route_template(scope)
            REQUEST_SECONDS.labels(scope.get("method", ""), route, str(status)).observe(duration)
            if self.access_log:
                log.info("request", method=scope.get("method"), route=route, status=status,
                         duration_ms=round(duration * 1000, 2),
                         request_id=scope.get("state", {}).get("request_id"))


class _Figures:
    """A one-scrape collector for figures read just now (database, this process)."""

    def __init__(self, figures: object, media_jobs_waiting: int) -> None:
        self.figures, self.media_jobs_waiting = figures, media_jobs_waiting

    def collect(self):  # noqa: ANN201
        f = self.figures
        yield GaugeMetricFamily("childvoice_outbox_pending", "Webhook notifications waiting "
                                "to be delivered.", value=f.outbox_pending)
        yield GaugeMetricFamily("childvoice_outbox_oldest_age_seconds", "Age of the oldest "
                                "notification still waiting.", value=f.outbox_oldest_seconds)
        yield GaugeMetricFamily("childvoice_alerts_open", "Safeguarding alerts not yet "
                                "acknowledged.", value=f.alerts_open)
        yield GaugeMetricFamily("childvoice_alerts_overdue", "Open alerts past their "
                                "escalation time.", value=f.alerts_overdue)
        yield GaugeMetricFamily("childvoice_media_jobs_waiting", "Media jobs (decode, "
                                "transcode) waiting for a slot in this process.",
                                value=self.media_jobs_waiting)


def render_metrics(figures: object, media_jobs_waiting: int) -> tuple[bytes, str]:
    """The Prometheus text: this process's metrics (or, with PROMETHEUS_MULTIPROC_DIR set,
    every process's), then the figures read for this scrape."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process_registry = CollectorRegistry()
        MultiProcessCollector(process_registry)
    else:
        process_registry = REGISTRY
    scrape = CollectorRegistry()
    scrape.register(_Figures(figures, media_jobs_waiting))
    return generate_latest(process_registry) + generate_latest(scrape), CONTENT_TYPE_LATEST
