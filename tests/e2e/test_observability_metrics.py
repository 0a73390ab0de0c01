"""`/metrics` of the real server (observability.md): scraped with the Prometheus client's own
text parser before and after known traffic, the exact changes of requests by route and
status, operations by format and outcome, body bytes, a blocked SSRF fetch and pipeline task
statuses; permits in use and queue depth during a held load and the 503 of a full queue; the
two listeners kept apart; a taken metrics port failing startup like the main port."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.e2e.test_hardening_overload import BLOCKER_REQUEST, LIGHT_REQUEST, SMALL
from tests.hardening import raw_request, read_raw_response, send_request
from tests.pipeline_helpers import MULTIPART, multipart_body, part, sample_image, task
from tests.scrape import Samples, delta, scrape
from tests.serverkit import LINE_TIME, Proc, free_port, ipv6_loopback
from tests.serverproc import CORPUS, ServerProcess
from tests.waiting import wait_until

PNG = (CORPUS / "png-palette-8bit.png").read_bytes()
JPEG = (CORPUS / "jpeg-small-nikon-p6000-gps.jpg").read_bytes()
REQUESTS = "imaged_http_requests_total"
OPERATIONS = "imaged_image_operations_total"


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """A server with every route and a metrics listener; (server, metrics base URL)."""
    port = free_port()
    out = tmp_path_factory.mktemp("out")
    args = ["--concurrency", "2", "--metrics-listen", f"127.0.0.1:{port}", "--enable-fetch"]
    args += ["--enable-pipeline", "--output-dir", str(out), "--pipeline-buckets", "out"]
    with ServerProcess(args) as server:
        yield server, f"http://127.0.0.1:{port}"


def changed(before: Samples, after: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every series of `name` whose value changed, and by how much."""
    keys = set(before.series(name)) | set(after.series(name))
    changes = {k: after.series(name).get(k, 0) - before.series(name).get(k, 0) for k in keys}
    return {k: v for k, v in changes.items() if v}


def labels(**pairs: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(pairs.items()))


def test_exact_deltas_of_known_traffic(observed: tuple[ServerProcess, str]) -> None:
    server, metrics = observed
    before = scrape(metrics)
    with server.client() as client:
        health = [client.get("/healthz") for _ in range(2)]
        webp = client.put("/transform?width=20&format=webp", content=PNG)
        bad_transform = client.put("/transform?format=png", content=b"not an image")
        meta = client.put("/metadata", content=JPEG)
        junk = b"not an image either"
        bad_meta = client.put("/metadata", content=junk)
        missing = client.get("/nope?x=1")
        blocked = client.get("/transform", params={"url": "http://127.0.0.1:1/x.png"})
        config = {
            "tasks": [task("good", "png", "out"), task("elsewhere", "png", "forbidden")],
        }
        form = multipart_body(
            part("config", json.dumps(config)), part("file", sample_image(), filename="s.png")
        )
        pipeline = client.put("/pipeline", content=form, headers={"Content-Type": MULTIPART})
    assert [r.status_code for r in health] == [200, 200]
    assert (webp.status_code, bad_transform.status_code) == (200, 400)
    assert (meta.status_code, bad_meta.status_code, missing.status_code) == (200, 400, 404)
    assert blocked.status_code == 403 and blocked.text.startswith("fetch: host resolves")
    assert pipeline.status_code == 200
    assert [t["status"] for t in pipeline.json()["tasks"]] == ["success", "failed"]
    after = scrape(metrics)

    assert changed(before, after, REQUESTS) == {
        labels(route="/healthz", method="GET", status="200"): 2,
        labels(route="/transform", method="PUT", status="200"): 1,
        labels(route="/transform", method="PUT", status="400"): 1,
        labels(route="/transform", method="GET", status="403"): 1,
        labels(route="/metadata", method="PUT", status="200"): 1,
        labels(route="/metadata", method="PUT", status="400"): 1,
        labels(route="other", method="GET", status="404"): 1,
        labels(route="/pipeline", method="PUT", status="200"): 1,
    }
    assert changed(before, after, OPERATIONS) == {
        labels(operation="transform", format="webp", outcome="ok"): 1,
        labels(operation="transform", format="png", outcome="error"): 1,
        labels(operation="metadata", format="jpeg", outcome="ok"): 1,
        labels(operation="metadata", format="unknown", outcome="error"): 1,
        labels(operation="transform", format="png", outcome="ok"): 1,  # the good task
    }
    # Only operations that got a permit are timed: the two that failed detection are not.
    duration = "imaged_image_operation_duration_seconds_count"
    assert delta(before, after, duration, operation="transform") == 2
    assert delta(before, after, duration, operation="metadata") == 1
    assert changed(before, after, "imaged_http_request_duration_seconds_count") == {
        labels(route="/healthz"): 2,
        labels(route="/transform"): 3,
        labels(route="/metadata"): 2,
        labels(route="other"): 1,
        labels(route="/pipeline"): 1,
    }
    body_in = "imaged_http_request_body_bytes_total"
    body_out = "imaged_http_response_body_bytes_total"
    assert delta(before, after, body_in, route="/transform") == len(PNG) + len(b"not an image")
    assert delta(before, after, body_in, route="/metadata") == len(JPEG) + len(junk)
    assert delta(before, after, body_in, route="/healthz") == 0
    assert delta(before, after, body_in, route="/pipeline") == len(form)
    for route, responses in (
        ("/healthz", health),
        ("/transform", [webp, bad_transform, blocked]),
        ("/metadata", [meta, bad_meta]),
        ("other", [missing]),
        ("/pipeline", [pipeline]),
    ):
        sent = sum(len(r.content) for r in responses)
        assert delta(before, after, body_out, route=route) == sent, route
    assert changed(before, after, "imaged_fetch_requests_total") == {labels(outcome="blocked"): 1}
    assert delta(before, after, "imaged_fetch_duration_seconds_count") == 1
    assert changed(before, after, "imaged_pipeline_tasks_total") == {
        labels(status="success"): 1,
        labels(status="failed"): 1,  # refused before any work: not stored
    }
    puts = "imaged_storage_put_duration_seconds_count"
    assert changed(before, after, puts) == {labels(backend="local"): 1}
    assert delta(before, after, "imaged_rejected_total") == 0
    # The scrapes themselves are not requests of the main listener.
    assert scrape(metrics).values.keys() >= after.values.keys()
    assert changed(after, scrape(metrics), REQUESTS) == {}


def test_unknown_paths_and_methods_never_add_label_values(
    observed: tuple[ServerProcess, str],
) -> None:
    server, metrics = observed
    before = scrape(metrics)
    with server.client() as client:
        for i in range(20):
            assert client.get(f"/random/{i}").status_code == 404
            assert client.request("PROPFIND", f"/x{i}").status_code == 404
        assert client.request("PURGE", "/healthz").status_code == 404
        # A method the HTTP parser does not know is a bad request aiohttp answers itself:
        # counted too, still with bounded labels.
        assert client.request("BREW", "/healthz").status_code == 400
    after = scrape(metrics)
    assert changed(before, after, REQUESTS) == {
        labels(route="other", method="GET", status="404"): 20,
        labels(route="other", method="other", status="404"): 20,
        labels(route="/healthz", method="other", status="404"): 1,
        labels(route="other", method="other", status="400"): 1,
    }
    routes = {dict(k)["route"] for k in after.series(REQUESTS)}
    assert routes <= {"/healthz", "/transform", "/metadata", "/pipeline", "other"}


def test_the_two_listeners_are_separate(observed: tuple[ServerProcess, str]) -> None:
    server, metrics = observed
    with httpx.Client(base_url=metrics, timeout=30) as scraper:
        page = scraper.get("/metrics")
        assert page.status_code == 200
        content_type = page.headers["content-type"]
        assert content_type.startswith("text/plain; version=") and "charset=utf-8" in content_type
        assert "imaged_http_requests_total" in page.text
        assert scraper.head("/metrics").status_code == 200
        for method, path in (
            ("GET", "/healthz"),
            ("GET", "/readyz"),
            ("PUT", "/transform"),
            ("PUT", "/metadata"),
            ("GET", "/transform?url=http://example.com/x.png"),
            ("PUT", "/pipeline"),
            ("POST", "/metrics"),
            ("GET", "/metrics/x"),
            ("GET", "/"),
        ):
            answer = scraper.request(method, path, content=PNG if method == "PUT" else None)
            assert (answer.status_code, answer.text) == (404, "404 Not Found"), (method, path)
    with server.client() as client:
        answer = client.get("/metrics")
        assert (answer.status_code, answer.text) == (404, "404 Not Found")
        assert "x-request-id" in answer.headers  # it is an ordinary request of the main port


def test_gauges_and_the_503_of_a_full_queue_during_a_held_load(
    start_server: Callable[..., ServerProcess],
) -> None:
    port = free_port()
    metrics = f"http://127.0.0.1:{port}"
    server = start_server(
        "--concurrency", "1", "--queue-limit", "2", "--metrics-listen", f"127.0.0.1:{port}"
    )
    idle = scrape(metrics)
    assert (idle.get("imaged_permits"), idle.get("imaged_permits_in_use")) == (1, 0)
    assert idle.get("imaged_queue_depth") == 0

    def gauges() -> tuple[float, float]:
        s = scrape(metrics)
        return s.get("imaged_permits_in_use"), s.get("imaged_queue_depth")

    with ThreadPoolExecutor(max_workers=4) as pool:
        blocker = pool.submit(read_raw_response, send_request(server.port, BLOCKER_REQUEST), "PUT")
        wait_until(lambda: gauges() == (1, 0), "the blocker to hold the only permit")
        queued = [
            pool.submit(read_raw_response, send_request(server.port, LIGHT_REQUEST), "PUT")
            for _ in range(2)
        ]
        wait_until(lambda: gauges() == (1, 2), "two requests waiting for the permit")
        full = raw_request(
            server.port, "PUT", "/metadata", SMALL, headers={"X-Request-Id": "busy-1"}
        )
        assert (full.status, full.text) == (503, "server busy, retry later")
        assert full.header("x-request-id") == "busy-1"
        assert [f.result().status for f in queued] == [200, 200]
        assert blocker.result().status == 200
    wait_until(lambda: gauges() == (0, 0), "the permit to be free again")
    after = scrape(metrics)
    assert delta(idle, after, "imaged_rejected_total") == 1
    assert changed(idle, after, REQUESTS) == {
        labels(route="/transform", method="PUT", status="200"): 3,
        labels(route="/metadata", method="PUT", status="503"): 1,
    }
    assert changed(idle, after, OPERATIONS) == {
        # `/transform?width=16` of a PNG and the blur: JPEG, the default output
        labels(operation="transform", format="jpeg", outcome="ok"): 3,  # not the refused one
    }
    # The blocker held its permit for a while; the histogram saw all three holds.
    held = "imaged_image_operation_duration_seconds"
    assert delta(idle, after, f"{held}_count", operation="transform") == 3
    assert delta(idle, after, f"{held}_sum", operation="transform") > 0.1
    assert after.get("imaged_vips_memory_highwater_bytes") > 10_000_000  # the 12 MP image


def test_an_ipv6_metrics_address_and_the_startup_lines(
    start_server: Callable[..., ServerProcess],
) -> None:
    port = free_port()
    host = "[::1]" if ipv6_loopback() else "127.0.0.1"  # the IPv6 form where there is IPv6
    server = start_server("--metrics-listen", f"{host}:{port}")
    assert scrape(f"http://{host}:{port}").get("imaged_permits") >= 1
    lines = server.lines()
    at = next(i for i, line in enumerate(lines) if " metrics listening " in line)
    assert lines[at].endswith(f"INFO metrics listening url=http://{host}:{port}")
    assert " server listening " in lines[at + 1]  # ready only once both listen


def test_a_taken_metrics_port_fails_startup_like_the_main_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        main = free_port()
        with Proc(
            ["-H", "127.0.0.1", "-p", str(main), "--metrics-listen", f"127.0.0.1:{port}"],
            wait=False,
        ) as proc:
            assert proc.wait(60) == 1
    last = proc.lines()[-1]
    url = f"http://127.0.0.1:{port}"
    assert re.fullmatch(f"{LINE_TIME} FATAL Error starting server url={url} err=.+", last), last
    assert "listening" not in proc.log()
