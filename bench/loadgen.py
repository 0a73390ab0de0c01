"""Load generators: `wrk` (the real one) and a small threaded Python client as a fallback.

Both are closed-loop: `connections` clients each send the next request as soon as the
previous answer is in, for `duration` seconds or until `max_requests` answers arrived.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

LUA_SCRIPT = Path(__file__).with_name("load.lua")
WRK_HINT = "wrk not found: install it with `apt-get update && apt-get install -y wrk` (Debian)"


@dataclass(frozen=True)
class Load:
    """What to send: method, target URL, an optional body file and extra request headers."""

    method: str
    url: str
    body: Path | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    duration: float
    p50_ms: float
    p99_ms: float
    tool: str

    @property
    def rps(self) -> float:
        return self.requests / self.duration if self.duration > 0 else 0.0


def wrk_path() -> str | None:
    return shutil.which("wrk")


def choose(name: str) -> str:
    """`auto` → wrk when installed, else the Python client (with a hint on stderr)."""
    if name == "auto":
        if wrk_path():
            return "wrk"
        print(f"note: {WRK_HINT}; using the Python load generator", flush=True)
        return "python"
    if name == "wrk" and not wrk_path():
        raise SystemExit(WRK_HINT)
    return name


def parse_wrk(output: str) -> dict[str, float]:
    """The BENCHJSON line printed by load.lua's done()."""
    for line in output.splitlines():
        if line.startswith("BENCHJSON "):
            data: dict[str, float] = json.loads(line[len("BENCHJSON ") :])
            return data
    raise ValueError(f"no BENCHJSON line in wrk output:\n{output}")


def wrk_result(data: dict[str, float]) -> LoadResult:
    errors = sum(int(data[k]) for k in ("connect", "read", "write", "status", "timeout"))
    return LoadResult(
        requests=int(data["requests"]),
        errors=errors,
        duration=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        tool="wrk",
    )


def run_wrk(load: Load, connections: int, duration: float, max_requests: int = 0) -> LoadResult:
    """One wrk thread (enough for these rates; leaves the cores to the server)."""
    seconds = max(1, math.ceil(duration))
    cmd = [
        wrk_path() or "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "120s",
        *(arg for name, value in load.headers for arg in ("-H", f"{name}: {value}")),
        "-s",
        str(LUA_SCRIPT),
        load.url,
        "--",
        load.method,
        str(load.body) if load.body else "-",
        str(max_requests),
    ]
    env = dict(os.environ, BENCH_WRK_LIMITED="1" if max_requests else "0")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    try:
        return _collect_wrk(proc, lines, max_requests, seconds)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _collect_wrk(
    proc: subprocess.Popen[str], lines: list[str], max_requests: int, seconds: int
) -> LoadResult:
    if max_requests:
        # load.lua prints BENCHDONE after the last response; SIGINT makes wrk print its
        # summary at once instead of idling until the end of its duration.
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("BENCHDONE"):
                proc.send_signal(signal.SIGINT)
                break
    try:
        rest, errors = proc.communicate(timeout=seconds + 180)
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, errors = proc.communicate()
    output = "".join(lines) + rest
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {errors or output}")
    return wrk_result(parse_wrk(output))


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (as wrk reports it); 0 for no values."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class _Counter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.issued = 0
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.limit and self.issued >= self.limit:
                return False
            self.issued += 1
            return True


def run_python(load: Load, connections: int, duration: float, max_requests: int = 0) -> LoadResult:
    """Threads with keep-alive `http.client` connections; latency per request."""
    parts = urlsplit(load.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    body = load.body.read_bytes() if load.body else None
    headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
    headers.update(load.headers)
    counter = _Counter(max_requests)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + (duration if not max_requests else 24 * 3600)

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
        try:
            while time.monotonic() < deadline and counter.take():
                started = time.perf_counter()
                try:
                    conn.request(load.method, target, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    ok = 200 <= response.status < 400
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if not ok:
                        errors[0] += 1
        finally:
            conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    ordered = sorted(latencies)
    return LoadResult(
        requests=len(ordered),
        errors=errors[0],
        duration=elapsed,
        p50_ms=percentile(ordered, 50) * 1000,
        p99_ms=percentile(ordered, 99) * 1000,
        tool="python",
    )


def run(
    tool: str, load: Load, connections: int, duration: float, max_requests: int = 0
) -> LoadResult:
    if tool == "wrk":
        return run_wrk(load, connections, duration, max_requests)
    return run_python(load, connections, duration, max_requests)
