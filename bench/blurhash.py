"""What `blurhash=true` adds to a `thumbhash=true` metadata request (openapi.md: under 2 ms on
the 8 MP corpus image): `python bench/blurhash.py`.

Three views, each a median: the encoder alone on ThumbHash's reduced pixels (the only work
BlurHash adds: no second decode); the engine in-process, `thumbhash` against
`thumbhash+blurhash` in alternating pairs (the median of the paired differences, so the
machine's changing load hits both alike); and the same pair over HTTP against a real server
(client wall time). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyvips

from bench.inproc import configure
from bench.servers import Imaged, default_allocator
from bench.workloads import CORPUS

IMAGE = "jpeg-8mp-iphone6-gps.jpg"


def ms(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def paired(a: Callable[[], Any], b: Callable[[], Any], pairs: int) -> dict[str, float]:
    """Medians of a, of b and of (b − a) over alternating runs (a, b, b, a, …)."""
    a(), b()  # warm-up
    times_a, times_b = [], []
    for i in range(pairs):
        first, second = (a, b) if i % 2 == 0 else (b, a)
        t1, t2 = ms(first), ms(second)
        ta, tb = (t1, t2) if i % 2 == 0 else (t2, t1)
        times_a.append(ta)
        times_b.append(tb)
    return {
        "thumbhash_ms": statistics.median(times_a),
        "thumbhash_blurhash_ms": statistics.median(times_b),
        "added_ms": statistics.median(tb - ta for ta, tb in zip(times_a, times_b, strict=True)),
    }


def encoder_alone(data: bytes, repeat: int) -> float:
    from imaged.engine import blurhash, thumbhash

    image = pyvips.Image.new_from_buffer(data, "").copy_memory()
    _, _, rgba = thumbhash.rgba_pixels(image, 0)
    blurhash.of_rgba(rgba)
    return statistics.median(ms(lambda: blurhash.of_rgba(rgba)) for _ in range(repeat))


def engine(data: bytes, pairs: int) -> dict[str, float]:
    from imaged.engine.metadata import extract
    from imaged.engine.options import Limits, MetadataOptions

    plain, both = MetadataOptions(thumbhash=True), MetadataOptions(thumbhash=True, blurhash=True)
    return paired(
        lambda: extract(data, "jpeg", plain, Limits()),
        lambda: extract(data, "jpeg", both, Limits()),
        pairs,
    )


def http_pair(data: bytes, pairs: int) -> dict[str, float]:
    with Imaged(1, default_allocator()) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)

        def request(query: str) -> Callable[[], None]:
            def send() -> None:
                connection.request("PUT", f"/metadata?{query}", body=data)
                response = connection.getresponse()
                response.read()
                assert response.status == 200, response.status

            return send

        try:
            return paired(request("thumbhash=true"), request("thumbhash=true&blurhash=true"), pairs)
        finally:
            connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/blurhash.py", description=__doc__)
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=300, help="encoder-alone runs")
    args = parser.parse_args(argv)
    configure()
    data = (CORPUS / IMAGE).read_bytes()
    result = {
        "image": IMAGE,
        "encoder_alone_ms": encoder_alone(data, args.repeat),
        "engine": engine(data, args.pairs),
        "http": http_pair(data, args.pairs),
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
