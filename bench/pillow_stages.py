"""Thumbor's Pillow path, stage by stage; run by bench/stages.py with the thumbor venv's
Python (it imports only Pillow). Prints one JSON object: median CPU ms per stage."""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from PIL import Image  # type: ignore[import-not-found, unused-ignore]


def cpu_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    samples = []
    for _ in range(repeat):
        started = time.process_time()
        fn()
        samples.append((time.process_time() - started) * 1000)
    return statistics.median(samples)


def main() -> int:
    path, width, fmt, quality, repeat = sys.argv[1:6]
    with open(path, "rb") as f:
        data = f.read()
    target_w = int(width)
    n = int(repeat)
    probe = Image.open(io.BytesIO(data))
    target_h = round(probe.height * target_w / probe.width)
    options: dict[str, Any] = {"quality": int(quality)} if quality != "-" else {}
    pil_format = {"jpeg": "JPEG", "webp": "WEBP", "png": "PNG", "avif": "AVIF"}[fmt]

    def decode(draft: bool) -> Image.Image:
        image = Image.open(io.BytesIO(data))
        if draft:
            image.draft("RGB", (target_w, target_h))
        image.load()
        return image

    drafted = decode(True)
    resized = drafted.resize((target_w, target_h), Image.Resampling.LANCZOS)

    def encode() -> None:
        resized.save(io.BytesIO(), pil_format, **options)

    def whole() -> None:
        image = decode(True)
        image.resize((target_w, target_h), Image.Resampling.LANCZOS).save(
            io.BytesIO(), pil_format, **options
        )

    result = {
        "decode_full_ms": cpu_ms(lambda: decode(False), max(1, n // 3)),
        "draft_size": list(drafted.size),
        "decode_draft_ms": cpu_ms(lambda: decode(True), n),
        "resize_ms": cpu_ms(lambda: drafted.resize((target_w, target_h), Image.LANCZOS), n),
        "encode_ms": cpu_ms(encode, n),
        "total_ms": cpu_ms(whole, n),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
