"""Prometheus metrics (observability.md): the definitions, one registry per server and the
recording seams the engine, fetch client and pipeline call. The separate listener that serves
them is `server/app.py`'s `metrics_app`, started by `server/listen.py`.

Adding a metric is one definition below (`counter`, `gauge` or `histogram`, with its labels);
every server creates it in its own registry. Code that has the server `State` records into it:

    state.metrics.inc(CACHE_REQUESTS, "hit")               # a counter, by label values
    state.metrics.observe(SOME_HISTOGRAM, seconds, "x")    # a histogram
    state.metrics.set(SOME_GAUGE, value)                   # a gauge set now …
    state.metrics.gauge_from(SOME_GAUGE, read)             # … or read at scrape time

Without `--metrics-listen`, `state.metrics` is `DISABLED`, whose methods do nothing, and the
engine, fetch client and pipeline get no observer at all, so an unscraped server pays nothing.
Recording takes microseconds: label children are looked up once and then reused, nothing is
locked across an await, and the gauges that mirror live state (permits, queue, libvips memory)
are read only when scraped.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from imaged import __version__
from imaged.engine import vips
from imaged.engine.limiter import Limiter
from imaged.pipeline import FAILED, SUCCESS

# `_created` series double every counter and histogram for a timestamp nobody graphs.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

METRICS_PATH = "/metrics"
CONTENT_TYPE = CONTENT_TYPE_LATEST  # the text exposition format, as the library writes it
#: The `route` label: the known routes; any other path is `other`, so clients cannot grow
#: the label set.
ROUTES = frozenset(("/healthz", "/transform", "/metadata", "/pipeline"))
OTHER = "other"
#: The `method` label likewise: the standard methods, any other token is `other`.
METHODS = frozenset(("GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"))
#: Seconds; the spec's buckets for request durations, used by every duration histogram.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def route_label(path: str) -> str:
    return path if path in ROUTES else OTHER


def method_label(method: str) -> str:
    return method if method in METHODS else OTHER


# --- definitions --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Metric:
    """One metric of the contract; `kind` is `counter`, `gauge` or `histogram`."""

    kind: str
    name: str
    doc: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = BUCKETS


DEFINED: list[Metric] = []


def _define(metric: Metric) -> Metric:
    DEFINED.append(metric)
    return metric


def counter(name: str, doc: str, *labels: str) -> Metric:
    return _define(Metric("counter", name, doc, labels))


def gauge(name: str, doc: str, *labels: str) -> Metric:
    return _define(Metric("gauge", name, doc, labels))


def histogram(name: str, doc: str, *labels: str, buckets: tuple[float, ...] = BUCKETS) -> Metric:
    return _define(Metric("histogram", name, doc, labels, buckets))


BUILD_INFO = gauge(
    "imaged_build_info", "Build information (always 1).", "version", "vips", "pyvips", "python"
)
HTTP_REQUESTS = counter(
    "imaged_http_requests_total", "Finished HTTP requests.", "route", "method", "status"
)
HTTP_DURATION = histogram(
    "imaged_http_request_duration_seconds",
    "Time from the request head to the end of the response.",
    "route",
)
HTTP_REQUEST_BYTES = counter(
    "imaged_http_request_body_bytes_total", "Request body bytes read.", "route"
)
HTTP_RESPONSE_BYTES = counter(
    "imaged_http_response_body_bytes_total", "Response body bytes sent.", "route"
)
OPERATIONS = counter(
    "imaged_image_operations_total",
    "Engine operations by kind, format (output for transform, input for metadata) and outcome.",
    "operation",
    "format",
    "outcome",
)
OPERATION_DURATION = histogram(
    "imaged_image_operation_duration_seconds", "Time an operation held a permit.", "operation"
)
PERMITS = gauge("imaged_permits", "Permits of the image limiter (--concurrency).")
PERMITS_IN_USE = gauge("imaged_permits_in_use", "Permits held now.")
QUEUE_DEPTH = gauge("imaged_queue_depth", "Operations waiting for a permit.")
REJECTED = counter("imaged_rejected_total", "Requests answered 503 because the queue was full.")
# resources.md: the memory budget beside the permits.
MEMORY_BUDGET = gauge(
    "imaged_memory_budget_bytes", "The memory budget (--memory-budget; 0 = none)."
)
MEMORY_RESERVED = gauge(
    "imaged_memory_reserved_bytes",
    "Bytes reserved now: running operations' estimates plus bodies waiting for a permit.",
)
MEMORY_WAITS = counter(
    "imaged_memory_waits_total", "Operations that waited because the memory budget was full."
)
FETCHES = counter("imaged_fetch_requests_total", "Outbound fetches by outcome.", "outcome")
FETCH_DURATION = histogram("imaged_fetch_duration_seconds", "Fetch time including redirects.")
PIPELINE_TASKS = counter("imaged_pipeline_tasks_total", "Pipeline tasks by status.", "status")
STORAGE_PUT_DURATION = histogram(
    "imaged_storage_put_duration_seconds", "Time of one storage write.", "backend"
)
VIPS_MEMORY = gauge("imaged_vips_memory_bytes", "libvips tracked memory now.")
VIPS_MEMORY_HIGHWATER = gauge(
    "imaged_vips_memory_highwater_bytes", "libvips tracked memory high-water mark."
)
VIPS_OPEN_FILES = gauge("imaged_vips_open_files", "libvips tracked open files.")

# caching.md: every image GET counts once, by what the caching layer did for it.
CACHE_REQUESTS = counter(
    "imaged_cache_requests_total",
    "Image GETs: hit (result cache), miss, revalidated (origin 304), not_modified (a 304).",
    "result",
)
COALESCED = counter(
    "imaged_coalesced_requests_total", "Image GETs that joined identical work in progress."
)

FETCH_OUTCOMES = ("ok", "http_error", "blocked", "timeout", "too_large", "error")
TASK_STATUSES = (SUCCESS, FAILED)
CACHE_RESULTS = ("hit", "miss", "revalidated", "not_modified")


def _create(metric: Metric, registry: CollectorRegistry) -> Any:
    if metric.kind == "counter":
        return Counter(metric.name, metric.doc, metric.labels, registry=registry)
    if metric.kind == "gauge":
        return Gauge(metric.name, metric.doc, metric.labels, registry=registry)
    return Histogram(
        metric.name, metric.doc, metric.labels, registry=registry, buckets=metric.buckets
    )


# --- recording ----------------------------------------------------------------------------


class Metrics:
    """The metrics of one server: its own registry (never the library's global one) with
    every definition, the process and Python collectors, and the gauges of the engine.

    Implements the observer seams of the engine (`operation_done`, `rejected`), the fetch
    client (`fetch_done`) and the pipeline (`task_done`, `stored`), and records finished
    HTTP requests (`request_done`). Use it from the event loop's thread."""

    enabled = True

    def __init__(self, limiter: Limiter) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._metrics: dict[Metric, Any] = {m: _create(m, self.registry) for m in DEFINED}
        self._children: dict[Metric, dict[tuple[str, ...], Any]] = {m: {} for m in DEFINED}
        # The four series of one (route, method, status), found with one lookup per request.
        self._http: dict[tuple[str, str, int], tuple[Any, Any, Any, Any]] = {}
        self.set(
            BUILD_INFO,
            1,
            __version__,
            vips.vips_version(),
            vips.pyvips_version(),
            platform.python_version(),
        )
        self.set(PERMITS, limiter.permits)
        self.gauge_from(PERMITS_IN_USE, lambda: limiter.in_use)
        self.gauge_from(QUEUE_DEPTH, lambda: limiter.waiting)
        self.set(MEMORY_BUDGET, limiter.budget)
        self.gauge_from(MEMORY_RESERVED, lambda: limiter.reserved)
        self._child(MEMORY_WAITS, ())
        limiter.on_memory_wait = self._memory_waited
        if vips.tracking_available():
            self.gauge_from(VIPS_MEMORY, vips.tracked_memory)
            self.gauge_from(VIPS_MEMORY_HIGHWATER, vips.tracked_memory_highwater)
            self.gauge_from(VIPS_OPEN_FILES, vips.tracked_files)
        for outcome in FETCH_OUTCOMES:  # every series exists from the start (rate() needs it)
            self._child(FETCHES, (outcome,))
        for status in TASK_STATUSES:
            self._child(PIPELINE_TASKS, (status,))
        for result in CACHE_RESULTS:
            self._child(CACHE_REQUESTS, (result,))

    def _child(self, metric: Metric, labels: tuple[str, ...]) -> Any:
        children = self._children[metric]
        child = children.get(labels)
        if child is None:
            parent = self._metrics[metric]
            child = children[labels] = parent.labels(*labels) if labels else parent
        return child

    # The general interface, for every definition.

    def inc(self, metric: Metric, *labels: str, amount: float = 1.0) -> None:
        self._child(metric, labels).inc(amount)

    def observe(self, metric: Metric, value: float, *labels: str) -> None:
        self._child(metric, labels).observe(value)

    def set(self, metric: Metric, value: float, *labels: str) -> None:
        self._child(metric, labels).set(value)

    def gauge_from(self, metric: Metric, read: Callable[[], float]) -> None:
        """A gauge (without labels) whose value is `read()` at each scrape."""
        self._metrics[metric].set_function(read)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # The seams.

    def request_done(
        self, route: str, method: str, status: int, seconds: float, bytes_in: int, bytes_out: int
    ) -> None:
        series = self._http.get((route, method, status))
        if series is None:
            series = self._http[(route, method, status)] = (
                self._child(HTTP_REQUESTS, (route, method_label(method), str(status))),
                self._child(HTTP_DURATION, (route,)),
                self._child(HTTP_REQUEST_BYTES, (route,)),
                self._child(HTTP_RESPONSE_BYTES, (route,)),
            )
        requests, duration, body_in, body_out = series
        requests.inc()
        duration.observe(seconds)
        if bytes_in:
            body_in.inc(bytes_in)
        if bytes_out:
            body_out.inc(bytes_out)

    def operation_done(self, operation: str, fmt: str, ok: bool, held: float | None) -> None:
        self._child(OPERATIONS, (operation, fmt, "ok" if ok else "error")).inc()
        if held is not None:
            self._child(OPERATION_DURATION, (operation,)).observe(held)

    def rejected(self) -> None:
        self._child(REJECTED, ()).inc()

    def _memory_waited(self) -> None:
        self._child(MEMORY_WAITS, ()).inc()

    def fetch_done(self, outcome: str, seconds: float) -> None:
        self._child(FETCHES, (outcome,)).inc()
        self._child(FETCH_DURATION, ()).observe(seconds)

    def task_done(self, status: str) -> None:
        self._child(PIPELINE_TASKS, (status,)).inc()

    def stored(self, backend: str, seconds: float) -> None:
        self._child(STORAGE_PUT_DURATION, (backend,)).observe(seconds)


class DisabledMetrics:
    """`state.metrics` without `--metrics-listen`: records nothing."""

    enabled = False

    def inc(self, metric: Metric, *labels: str, amount: float = 1.0) -> None:
        return None

    def observe(self, metric: Metric, value: float, *labels: str) -> None:
        return None

    def set(self, metric: Metric, value: float, *labels: str) -> None:
        return None

    def gauge_from(self, metric: Metric, read: Callable[[], float]) -> None:
        return None

    def request_done(
        self, route: str, method: str, status: int, seconds: float, bytes_in: int, bytes_out: int
    ) -> None:
        return None


DISABLED = DisabledMetrics()
Recorder = Metrics | DisabledMetrics  # what `state.metrics` is
