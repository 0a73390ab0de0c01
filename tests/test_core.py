"""`Engine` (engine/core.py): SVG operations run one at a time, everything else in parallel."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
import pyvips

from imaged.engine import core, metadata, transform
from imaged.engine.core import Engine
from imaged.engine.formats import Codecs
from imaged.engine.options import Limits, MetadataOptions, TransformOptions

CODECS = Codecs(decoders=("png", "svg"), encoders=("png",))
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8"/></svg>'
PNG = bytes(pyvips.Image.black(8, 8).pngsave_buffer())


class Overlap:
    """Records the largest number of wrapped engine calls in flight at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def wrap(self, fn: Callable[..., object]) -> Callable[..., object]:
        def wrapped(*args: object) -> object:
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                time.sleep(0.2)  # long enough for the other workers to start
                return fn(*args)
            finally:
                with self.lock:
                    self.running -= 1

        return wrapped


@pytest.mark.parametrize("data", [SVG, PNG], ids=["svg", "png"])
async def test_only_svg_operations_are_serialised(
    monkeypatch: pytest.MonkeyPatch, data: bytes
) -> None:
    overlap = Overlap()
    monkeypatch.setattr(transform, "transform", overlap.wrap(transform.transform))
    monkeypatch.setattr(metadata, "extract", overlap.wrap(metadata.extract))
    engine = Engine(Limits(), concurrency=4, queue_limit=16, codecs=CODECS)
    try:
        jobs = [engine.transform(data, TransformOptions(format="png")) for _ in range(2)]
        jobs += [engine.metadata(data, MetadataOptions(stats=True)) for _ in range(2)]
        results = await asyncio.gather(*jobs)
    finally:
        engine.close()
    assert len(results) == 4
    if data is SVG:
        assert overlap.most == 1  # transforms and metadata alike, one after the other
    else:
        assert overlap.most >= 2
    assert "svg" in core.SERIAL_FORMATS
