"""One measurement: a server (or the in-process peer) under one load level → one result row."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import urllib.request
from dataclasses import asdict, dataclass, replace
from typing import Any

import pyvips

from bench import loadgen
from bench.procstat import Window, wait_idle
from bench.servers import Server, allocator_env
from bench.workloads import ROOT, Workload


@dataclass
class Row:
    """Everything the tables show for one (workload, peer, concurrency)."""

    workload: str
    peer: str
    concurrency: int
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float | None
    peak_rss_mb: float | None
    out_bytes: int | None
    width: int | None
    height: int | None
    tool: str
    ssimulacra2: float | None = None  # of the probe's output (bench/quality.py)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def merge(rows: list[Row]) -> Row:
    """One row from several rounds of the same (workload, peer, concurrency): requests and
    CPU are pooled (CPU per request over all requests), p50 is the median of the rounds'
    p50s, p99 and peak RSS the worst round's."""
    first = rows[0]
    requests = sum(r.requests for r in rows)
    seconds = sum(r.requests / r.rps for r in rows if r.rps > 0)
    with_cpu = [r for r in rows if r.cpu_ms is not None and r.requests]
    cpu = sum(r.cpu_ms * r.requests for r in with_cpu if r.cpu_ms is not None)
    counted = sum(r.requests for r in with_cpu)
    peaks = [r.peak_rss_mb for r in rows if r.peak_rss_mb is not None]
    return replace(
        first,
        requests=requests,
        errors=sum(r.errors for r in rows),
        rps=requests / seconds if seconds > 0 else 0.0,
        p50_ms=statistics.median(r.p50_ms for r in rows),
        p99_ms=max(r.p99_ms for r in rows),
        cpu_ms=cpu / counted if counted else None,
        peak_rss_mb=max(peaks) if peaks else None,
    )


@dataclass(frozen=True)
class Probe:
    """One request's answer: status, body size and the decoded output size."""

    status: int
    size: int
    width: int | None
    height: int | None
    body: bytes = b""
    ssimulacra2: float | None = None


def probe(url: str, load: loadgen.Load, decode: bool) -> Probe:
    """Send one request (outside any measurement window) and look at the output."""
    data = load.body.read_bytes() if load.body else None
    request = urllib.request.Request(url, data=data, method=load.method)
    if data is not None:
        request.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        return Probe(exc.code, len(exc.read()), None, None)
    if not decode or status != 200:
        return Probe(status, len(body), None, None)
    image = pyvips.Image.new_from_buffer(body, "")
    return Probe(status, len(body), image.width, image.height, body)


def server_load(server: Server, workload: Workload, peer: str) -> loadgen.Load:
    if peer.startswith("thumbor"):
        target = workload.thumbor_target
        assert target is not None
        return loadgen.Load("GET", server.url + target)
    return loadgen.Load("PUT", server.url + workload.imaged_target, workload.path)


def measure_server(
    server: Server,
    workload: Workload,
    peer: str,
    tool: str,
    concurrency: int,
    duration: float,
    out: Probe,
    load: loadgen.Load | None = None,
) -> Row:
    """CPU and peak RSS of the server process while `tool` drives it at `concurrency` with
    `load` (default: the workload's request for `peer`)."""
    load = load or server_load(server, workload, peer)
    wait_idle(server.pid)
    with Window(server.pid) as window:
        result = loadgen.run(tool, load, concurrency, duration)
    done = result.requests
    return Row(
        workload=workload.key,
        peer=peer,
        concurrency=concurrency,
        requests=done,
        errors=result.errors,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        cpu_ms=window.cpu / done * 1000 if done else None,
        peak_rss_mb=window.peak,
        out_bytes=out.size,
        width=out.width,
        height=out.height,
        tool=result.tool,
        ssimulacra2=out.ssimulacra2,
    )


def measure_inproc(
    workload: Workload,
    variant: str,
    concurrency: int,
    duration: float,
    allocator: str,
    ssimulacra2: float | None = None,
) -> Row:
    """The in-process pyvips peer in its own process (bench/inproc.py)."""
    cmd = [sys.executable, "-m", "bench.inproc", workload.key, "--variant", variant]
    cmd += ["--concurrency", str(concurrency), "--duration", str(duration)]
    env = {**_base_env(), **allocator_env(allocator)}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"in-process peer failed: {proc.stderr[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return Row(
        workload=workload.key,
        peer="pyvips-decode" if variant == "decode" else "pyvips",
        concurrency=concurrency,
        requests=data["requests"],
        errors=data["errors"],
        rps=data["rps"],
        p50_ms=data["p50_ms"],
        p99_ms=data["p99_ms"],
        cpu_ms=data["cpu_ms"],
        peak_rss_mb=data["peak_rss_mb"],
        out_bytes=data["out_bytes"] or None,
        width=data["width"] if workload.kind == "transform" else None,
        height=data["height"] if workload.kind == "transform" else None,
        tool="in-process",
        ssimulacra2=ssimulacra2,
    )


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_ARENA_MAX")}
