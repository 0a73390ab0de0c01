"""The decode-once section of `make bench` (batch.md, "Decode once for many outputs"): the
server CPU of one `PUT /pipeline` with four tasks (WebP 1600, 800, 400 and 200 px wide) on
the 12 MP corpus JPEG against the same four `PUT /transform` requests, bar 0.6×.

One fresh server (`--enable-pipeline`, the local-directory back-end in a temporary
directory). After a warm-up of each, every run measures one pipeline request and then the
four transform requests, one request at a time on one keep-alive connection; the CPU of
each is the server process's own (bench/procstat.py: utime + stime from /proc, read after
the server is idle again), so the client never counts. The row gives the medians over the
runs and their ratio.
"""

from __future__ import annotations

import http.client
import json
import statistics
import tempfile
import time
from typing import Any

from bench.procstat import cpu_seconds, wait_idle
from bench.servers import Imaged
from bench.workloads import CORPUS

SOURCE = CORPUS / "jpeg-12mp-olympus-ep3.jpg"
WIDTHS = (1600, 800, 400, 200)
BAR = 0.6
BOUNDARY = "imaged-bench-decodeonce"


def config() -> dict[str, Any]:
    return {
        "tasks": [
            {
                "id": f"w{width}",
                "transform": {"format": "webp", "width": width},
                "output": {"bucket": "bench", "key": f"decodeonce/{width}.webp"},
            }
            for width in WIDTHS
        ]
    }


def pipeline_body(image: bytes) -> bytes:
    parts = [
        b'Content-Disposition: form-data; name="config"\r\n\r\n' + json.dumps(config()).encode(),
        b'Content-Disposition: form-data; name="file"; filename="source.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + image,
    ]
    body = b"".join(f"--{BOUNDARY}\r\n".encode() + part + b"\r\n" for part in parts)
    return body + f"--{BOUNDARY}--\r\n".encode()


class _Client:
    """One keep-alive connection to the server."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def put(self, target: str, body: bytes, content_type: str) -> bytes:
        self.connection.request("PUT", target, body, {"Content-Type": content_type})
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"PUT {target}: {response.status} {data[:200]!r}")
        return data

    def close(self) -> None:
        self.connection.close()


def _measured(pid: int, work: Any) -> tuple[float, float]:
    """(server CPU seconds, wall seconds) of `work()`, from an idle server to an idle one."""
    wait_idle(pid)
    cpu = cpu_seconds(pid)
    started = time.monotonic()
    work()
    wall = time.monotonic() - started
    wait_idle(pid)
    return cpu_seconds(pid) - cpu, wall


def run(allocator: str, concurrency: int, runs: int) -> dict[str, Any]:
    image = SOURCE.read_bytes()
    body = pipeline_body(image)
    multipart = f"multipart/form-data; boundary={BOUNDARY}"

    with tempfile.TemporaryDirectory(prefix="bench-decodeonce-") as out:
        args = ["--enable-pipeline", "--output-dir", out]
        with Imaged(concurrency, allocator, args) as server:
            client = _Client(server.port)

            def pipeline() -> None:
                answer = json.loads(client.put("/pipeline", body, multipart))
                assert all(t["status"] == "success" for t in answer["tasks"]), answer

            def transforms() -> None:
                for width in WIDTHS:
                    client.put(f"/transform?format=webp&width={width}", image, "image/jpeg")

            try:
                pipeline()  # warm-up
                transforms()
                samples = [
                    (_measured(server.pid, pipeline), _measured(server.pid, transforms))
                    for _ in range(runs)
                ]
            finally:
                client.close()
    pipeline_cpu = statistics.median(p[0] for p, _ in samples) * 1000
    transform_cpu = statistics.median(t[0] for _, t in samples) * 1000
    ratio = pipeline_cpu / transform_cpu if transform_cpu else None
    return {
        "source": SOURCE.name,
        "widths": list(WIDTHS),
        "runs": runs,
        "pipeline_cpu_ms": pipeline_cpu,
        "transforms_cpu_ms": transform_cpu,
        "pipeline_wall_ms": statistics.median(p[1] for p, _ in samples) * 1000,
        "transforms_wall_ms": statistics.median(t[1] for _, t in samples) * 1000,
        "ratio": ratio,
        "bar": BAR,
        "met": ratio is not None and ratio <= BAR,
    }
