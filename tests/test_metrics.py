"""The metrics module (server/metrics.py) in-process: the definitions are the spec's table
(names, types and labels are a contract), labels stay bounded, each server has its own
registry with the process and Python collectors, and every seam records what it is told.
Read back with the client library's own text parser."""

from __future__ import annotations

import asyncio
import platform

import prometheus_client
import pytest
import pyvips

from imaged import __version__
from imaged.engine import vips
from imaged.engine.limiter import Limiter
from imaged.server import metrics as m
from tests.scrape import parse
from tests.waiting import await_until

# observability.md, the metrics table: name → (type, labels).
SPEC = {
    "imaged_build_info": ("gauge", ("version", "vips", "pyvips", "python")),
    "imaged_http_requests_total": ("counter", ("route", "method", "status")),
    "imaged_http_request_duration_seconds": ("histogram", ("route",)),
    "imaged_http_request_body_bytes_total": ("counter", ("route",)),
    "imaged_http_response_body_bytes_total": ("counter", ("route",)),
    "imaged_image_operations_total": ("counter", ("operation", "format", "outcome")),
    "imaged_image_operation_duration_seconds": ("histogram", ("operation",)),
    "imaged_permits": ("gauge", ()),
    "imaged_permits_in_use": ("gauge", ()),
    "imaged_queue_depth": ("gauge", ()),
    "imaged_rejected_total": ("counter", ()),
    "imaged_fetch_requests_total": ("counter", ("outcome",)),
    "imaged_fetch_duration_seconds": ("histogram", ()),
    "imaged_pipeline_tasks_total": ("counter", ("status",)),
    "imaged_storage_put_duration_seconds": ("histogram", ("backend",)),
    "imaged_vips_memory_bytes": ("gauge", ()),
    "imaged_vips_memory_highwater_bytes": ("gauge", ()),
    "imaged_vips_open_files": ("gauge", ()),
}
BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]


def family(name: str) -> str:
    """The family name the parser reports for a metric (counters drop `_total`)."""
    return name.removesuffix("_total")


def test_the_definitions_are_the_spec_table() -> None:
    # Other extensions add theirs (caching.md, resources.md); the spec's are all here, exactly.
    defined = {d.name: (d.kind, d.labels) for d in m.DEFINED}
    assert {name: defined.get(name) for name in SPEC} == SPEC
    assert all(d.name.startswith("imaged_") for d in m.DEFINED)
    assert len(defined) == len(m.DEFINED)  # no name defined twice


def test_every_definition_is_exposed_with_its_type_and_the_spec_buckets() -> None:
    samples = parse(m.Metrics(Limiter(3, 9)).exposition().decode())
    for name, (kind, _) in SPEC.items():
        assert samples.types[family(name)] == kind, name
    m_ = m.Metrics(Limiter(1, 1))
    m_.observe(m.HTTP_DURATION, 0.02, "/healthz")
    samples = parse(m_.exposition().decode())
    buckets = samples.series("imaged_http_request_duration_seconds_bucket")
    bounds = sorted(float(dict(labels)["le"]) for labels in buckets)
    assert bounds == [*BUCKETS, float("inf")]
    assert all(d.buckets == tuple(BUCKETS) for d in m.DEFINED if d.kind == "histogram")


def test_labels_stay_bounded() -> None:
    for route in ("/healthz", "/transform", "/metadata", "/pipeline"):
        assert m.route_label(route) == route
    for path in ("/", "/readyz", "/metrics", "/transform/", "/TRANSFORM", "/x" * 100, ""):
        assert m.route_label(path) == "other"
    for method in ("GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"):
        assert m.method_label(method) == method
    for method in ("get", "BREW", "PROPFIND", "X" * 50):
        assert m.method_label(method) == "other"


def test_each_server_has_its_own_registry_with_the_standard_collectors() -> None:
    first, second = m.Metrics(Limiter(2, 4)), m.Metrics(Limiter(5, 4))
    first.rejected()
    a, b = parse(first.exposition().decode()), parse(second.exposition().decode())
    assert (a.get("imaged_rejected_total"), b.get("imaged_rejected_total")) == (1, 0)
    assert (a.get("imaged_permits"), b.get("imaged_permits")) == (2, 5)
    global_names = {f.name for f in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("imaged_") for name in global_names)
    assert a.get("process_resident_memory_bytes") > 0
    assert a.get("process_cpu_seconds_total") > 0
    assert "python_gc_collections" in a.types
    info = a.series("python_info")
    assert [dict(labels)["version"] for labels in info] == [platform.python_version()]
    build = a.series("imaged_build_info")
    assert build == {
        tuple(
            sorted(
                {
                    "version": __version__,
                    "vips": vips.vips_version(),
                    "pyvips": pyvips.__version__,
                    "python": platform.python_version(),
                }.items()
            )
        ): 1.0
    }


async def test_the_limiter_gauges_are_read_at_scrape_time() -> None:
    limiter = Limiter(1, 4)
    metrics = m.Metrics(limiter)

    def gauges() -> tuple[float, float]:
        s = parse(metrics.exposition().decode())
        return s.get("imaged_permits_in_use"), s.get("imaged_queue_depth")

    assert gauges() == (0, 0)
    await limiter.acquire()
    waiters = [asyncio.create_task(limiter.acquire()) for _ in range(3)]
    await await_until(lambda: limiter.waiting == 3, "three waiters")
    assert gauges() == (1, 3)
    for _ in range(4):  # hands the permit to each waiter in turn, then frees it
        limiter.release()
    await asyncio.gather(*waiters)
    assert gauges() == (0, 0)


def test_libvips_memory_gauges_follow_libvips() -> None:
    metrics = m.Metrics(Limiter(1, 1))
    image = pyvips.Image.black(1000, 1000).copy_memory()  # 1 MB tracked by libvips
    s = parse(metrics.exposition().decode())
    assert s.get("imaged_vips_memory_bytes") >= 1_000_000
    assert s.get("imaged_vips_memory_highwater_bytes") >= s.get("imaged_vips_memory_bytes")
    assert s.get("imaged_vips_open_files") >= 0
    del image
    after = parse(metrics.exposition().decode())
    assert after.get("imaged_vips_memory_bytes") < s.get("imaged_vips_memory_bytes")


def test_the_seams_record_what_they_are_told() -> None:
    metrics = m.Metrics(Limiter(2, 4))
    metrics.request_done("/transform", "PUT", 200, 0.03, 1000, 250)
    metrics.request_done("/transform", "PUT", 200, 0.2, 10, 0)
    metrics.request_done("other", "BREW", 404, 0.001, 0, 13)
    metrics.operation_done("transform", "webp", True, 0.02)
    metrics.operation_done("metadata", "unknown", False, None)
    metrics.rejected()
    metrics.fetch_done("blocked", 0.001)
    metrics.task_done("failed")
    metrics.task_done("success")
    metrics.task_done("success")
    metrics.stored("s3", 0.4)
    s = parse(metrics.exposition().decode())
    assert s.get("imaged_http_requests_total", route="/transform", method="PUT", status="200") == 2
    assert s.get("imaged_http_requests_total", route="other", method="other", status="404") == 1
    assert s.get("imaged_http_request_duration_seconds_count", route="/transform") == 2
    assert s.get("imaged_http_request_duration_seconds_bucket", route="/transform", le="0.05") == 1
    assert s.get("imaged_http_request_duration_seconds_sum", route="/transform") == pytest.approx(
        0.23
    )
    assert s.get("imaged_http_request_body_bytes_total", route="/transform") == 1010
    assert s.get("imaged_http_response_body_bytes_total", route="/transform") == 250
    assert s.get("imaged_http_response_body_bytes_total", route="other") == 13
    ops = s.series("imaged_image_operations_total")
    assert ops == {
        (("format", "webp"), ("operation", "transform"), ("outcome", "ok")): 1,
        (("format", "unknown"), ("operation", "metadata"), ("outcome", "error")): 1,
    }
    assert s.get("imaged_image_operation_duration_seconds_count", operation="transform") == 1
    assert s.get("imaged_image_operation_duration_seconds_count", operation="metadata") == 0
    assert s.get("imaged_rejected_total") == 1
    fetches = s.series("imaged_fetch_requests_total")
    assert {dict(labels)["outcome"]: v for labels, v in fetches.items()} == {
        "ok": 0,  # every outcome exists from the start
        "http_error": 0,
        "blocked": 1,
        "timeout": 0,
        "too_large": 0,
        "error": 0,
    }
    assert s.get("imaged_fetch_duration_seconds_count") == 1
    assert s.get("imaged_pipeline_tasks_total", status="success") == 2
    assert s.get("imaged_pipeline_tasks_total", status="failed") == 1
    assert s.get("imaged_storage_put_duration_seconds_count", backend="s3") == 1
    assert not any(name.endswith("_created") for name, _ in s.values)


def test_the_general_interface_serves_any_definition() -> None:
    metrics = m.Metrics(Limiter(2, 4))
    metrics.inc(m.REJECTED, amount=3)
    metrics.inc(m.PIPELINE_TASKS, "failed")
    metrics.observe(m.STORAGE_PUT_DURATION, 7.0, "local")
    metrics.set(m.PERMITS, 11)
    metrics.gauge_from(m.VIPS_OPEN_FILES, lambda: 42)
    s = parse(metrics.exposition().decode())
    assert s.get("imaged_rejected_total") == 3
    assert s.get("imaged_pipeline_tasks_total", status="failed") == 1
    assert s.get("imaged_storage_put_duration_seconds_bucket", backend="local", le="5.0") == 0
    assert s.get("imaged_storage_put_duration_seconds_bucket", backend="local", le="10.0") == 1
    assert s.get("imaged_permits") == 11
    assert s.get("imaged_vips_open_files") == 42


def test_disabled_metrics_accept_everything_and_record_nothing() -> None:
    disabled = m.DISABLED
    assert not disabled.enabled and m.Metrics(Limiter(1, 1)).enabled
    disabled.inc(m.REJECTED)
    disabled.inc(m.PIPELINE_TASKS, "failed", amount=2)
    disabled.observe(m.FETCH_DURATION, 1.0)
    disabled.set(m.PERMITS, 1)
    disabled.gauge_from(m.QUEUE_DEPTH, lambda: 1)
    disabled.request_done("/healthz", "GET", 200, 0.1, 0, 10)
    assert not hasattr(disabled, "registry")
