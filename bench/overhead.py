"""`--sections metrics`: what recording metrics costs (observability.md, issue 17).

Two imaged processes run side by side, identical but for `--metrics-listen` (the other one
records nothing at all). For each case — W2 and a tiny `PUT /metadata` (a 64×48 PNG, no
flags: almost nothing but HTTP, where a per-request cost shows most) — each of `rounds`
rounds starts a fresh pair (in alternating order) and drives both servers at the same time,
each by its own load generator: whatever else the shared machine does then hits both alike.
The server CPU time per request is pooled per variant over the rounds. A control
pair of two plain servers, measured the same way, shows the noise floor of the run: on the
shared 2-core machine it is a few per cent, larger than what recording costs.

Scraping costs CPU per scrape, not per request; it is measured on its own (CPU of a burst
of scrapes) and charged to each request at Prometheus' default interval of 15 s and the
measured request rate. The figure against the target (< 2 %) is recording plus scraping.

For scale, `recording_us` is the in-process cost of what one request records (an HTTP
request with its engine operation), timed without any HTTP around it.
"""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvips

from bench import loadgen
from bench.procstat import Window, wait_idle
from bench.servers import Imaged, free_port
from bench.workloads import BY_KEY

TARGET = 0.02  # the limit on the extra CPU per request
SCRAPE_INTERVAL = 15.0  # Prometheus' default scrape_interval, seconds


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    target: str  # path and query of the PUT
    body: Path


def cases(directory: Path) -> list[Case]:
    tiny = directory / "tiny.png"
    tiny.write_bytes(bytes((pyvips.Image.black(64, 48, bands=3) + 120).pngsave_buffer()))
    w2 = BY_KEY["W2"]
    return [
        Case("W2", w2.title, w2.imaged_target, w2.path),
        Case("M0", "tiny PUT /metadata (64×48 PNG, no flags)", "/metadata", tiny),
    ]


@dataclass
class Totals:
    requests: int = 0
    cpu: float = 0.0  # seconds of server CPU
    seconds: float = 0.0  # of load
    errors: int = 0

    @property
    def cpu_ms(self) -> float:
        return self.cpu / self.requests * 1000 if self.requests else float("nan")

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _paired_window(
    servers: dict[str, Imaged], case: Case, tool: str, connections: int, duration: float
) -> dict[str, Totals]:
    """Both servers under the same load at the same time; each one's own window."""
    for server in servers.values():
        wait_idle(server.pid)
    found: dict[str, Totals] = {}
    start = threading.Barrier(len(servers))

    def drive(name: str, server: Imaged) -> None:
        load = loadgen.Load("PUT", server.url + case.target, case.body)
        start.wait()
        with Window(server.pid) as window:
            result = loadgen.run(tool, load, connections, duration)
        found[name] = Totals(result.requests, window.cpu, result.duration, result.errors)

    threads = [threading.Thread(target=drive, args=item) for item in servers.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return found


def scrape_cost(server: Imaged, url: str, scrapes: int = 200) -> float:
    """Server CPU milliseconds per scrape of `url`."""
    wait_idle(server.pid)
    with Window(server.pid) as window:
        for _ in range(scrapes):
            with urllib.request.urlopen(url, timeout=30) as response:
                response.read()
    return window.cpu / scrapes * 1000


def recording_us(repeat: int = 20000) -> float:
    """Microseconds to record one request with its engine operation, in-process."""
    from imaged.engine.limiter import Limiter
    from imaged.server.metrics import Metrics

    metrics = Metrics(Limiter(2, 8))
    started = time.process_time()
    for _ in range(repeat):
        metrics.operation_done("transform", "jpeg", True, 0.02)
        metrics.request_done("/transform", "PUT", 200, 0.03, 1000, 250)
    return (time.process_time() - started) / repeat * 1e6


def _pair(
    server_concurrency: int, allocator: str, metrics_first: bool, control: bool
) -> tuple[Imaged, Imaged, str | None]:
    """A fresh (plain, metered, metrics URL) pair, started in the given order: a process's
    own luck (memory layout, which core it lands on) then cancels out over the rounds. The
    `control` pair is two plain servers (no URL): the same measurement's noise floor."""
    port = free_port()
    metered_args = [] if control else ["--metrics-listen", f"127.0.0.1:{port}"]
    if metrics_first:
        metered = Imaged(server_concurrency, allocator, metered_args)
        plain = Imaged(server_concurrency, allocator)
    else:
        plain = Imaged(server_concurrency, allocator)
        metered = Imaged(server_concurrency, allocator, metered_args)
    return plain, metered, None if control else f"http://127.0.0.1:{port}/metrics"


@dataclass
class Comparison:
    without: Totals
    with_metrics: Totals
    per_round: list[float]
    per_scrape: list[float]

    @property
    def difference(self) -> float:
        return self.with_metrics.cpu_ms / self.without.cpu_ms - 1


def _compare(
    case: Case,
    tool: str,
    allocator: str,
    server_concurrency: int,
    connections: int,
    duration: float,
    rounds: int,
    control: bool,
    progress: Any,
) -> Comparison:
    found = Comparison(Totals(), Totals(), [], [])
    for index in range(rounds):
        plain, metered, metrics_url = _pair(server_concurrency, allocator, index % 2 == 1, control)
        with plain, metered:
            servers = {"without": plain, "with": metered}
            _paired_window(servers, case, tool, connections, 1.0)  # warm-up
            window = _paired_window(servers, case, tool, connections, duration)
            if metrics_url is not None:
                found.per_scrape.append(scrape_cost(metered, metrics_url, 50))
        for total, part in (
            (found.without, window["without"]),
            (found.with_metrics, window["with"]),
        ):
            total.requests += part.requests
            total.cpu += part.cpu
            total.seconds += part.seconds
            total.errors += part.errors
        found.per_round.append(window["with"].cpu_ms / window["without"].cpu_ms - 1)
        label = "control" if control else "with"
        progress(
            f"  {case.key} round {index + 1}: without {window['without'].cpu_ms:.3f} "
            f"ms/req, {label} {window['with'].cpu_ms:.3f} ms/req "
            f"({found.per_round[-1] * 100:+.2f} %)"
        )
    return found


def run(
    tool: str,
    allocator: str,
    server_concurrency: int,
    directory: Path,
    *,
    connections: int = 2,
    duration: float = 3.0,
    rounds: int = 8,
    control: bool = True,
    progress: Any = print,
) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for case in cases(directory):
        measured = _compare(
            case, tool, allocator, server_concurrency, connections, duration, rounds, False,
            progress,
        )  # fmt: skip
        noise = (
            _compare(
                case, tool, allocator, server_concurrency, connections, duration, rounds, True,
                progress,
            ).difference
            if control
            else None
        )  # fmt: skip
        without, with_metrics = measured.without, measured.with_metrics
        recording = measured.difference
        scrape_ms = statistics.median(measured.per_scrape)
        # One scrape every 15 s shared by every request of those 15 s.
        scraping_ms = scrape_ms / (with_metrics.rps * SCRAPE_INTERVAL)
        difference = recording + scraping_ms / without.cpu_ms
        results.append(
            {
                "case": case.key,
                "title": case.title,
                "cpu_ms_without": without.cpu_ms,
                "cpu_ms_with": with_metrics.cpu_ms,
                "recording_difference": recording,
                "median_round_difference": statistics.median(measured.per_round),
                "control_difference": noise,
                "scrape_cpu_ms": scrape_ms,
                "scrape_ms_per_request": scraping_ms,
                "difference": difference,
                "requests_without": without.requests,
                "requests_with": with_metrics.requests,
                "errors": without.errors + with_metrics.errors,
                "met": difference < TARGET,
            }
        )
        control_text = "" if noise is None else f" (control pair: {noise * 100:+.2f} %)"
        progress(
            f"  {case.key}: {recording * 100:+.2f} % recording{control_text}, scrape "
            f"{scrape_ms:.2f} ms → {difference * 100:+.2f} % with a scrape every "
            f"{SCRAPE_INTERVAL:g} s"
        )
    return {
        "rounds": rounds,
        "duration": duration,
        "connections": connections,
        "scrape_interval": SCRAPE_INTERVAL,
        "recording_us": recording_us(),
        "cases": results,
    }
