"""`Engine` (engine/core.py): SVG operations run one at a time, everything else in parallel;
the observer seam the metrics plug into."""

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
from imaged.errors import ImageError, ServerBusy
from tests.waiting import DEADLINE, await_until

CODECS = Codecs(decoders=("png", "svg"), encoders=("png",))
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8"/></svg>'
PNG = bytes(pyvips.Image.black(8, 8).pngsave_buffer())


class Overlap:
    """Records the largest number of wrapped engine calls in flight at once.

    Each call first waits until some call has had company, for at most `window` seconds
    counted from the first call: calls that may run in parallel meet as soon as a second
    worker starts (a generous window only matters on a loaded machine); serialised calls
    never meet, so for them the window is a deliberate pause — the chance to overlap that
    they must not take."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.changed = threading.Condition()
        self.running = 0
        self.most = 0
        self.until: float | None = None

    def wrap(self, fn: Callable[..., object]) -> Callable[..., object]:
        def wrapped(*args: object) -> object:
            with self.changed:
                self.running += 1
                self.most = max(self.most, self.running)
                self.changed.notify_all()
                if self.until is None:
                    self.until = time.monotonic() + self.window
                left = max(0.0, self.until - time.monotonic())
                self.changed.wait_for(lambda: self.most >= 2, timeout=left)
            try:
                return fn(*args)
            finally:
                with self.changed:
                    self.running -= 1

        return wrapped


@pytest.mark.parametrize("data", [SVG, PNG], ids=["svg", "png"])
async def test_only_svg_operations_are_serialised(
    monkeypatch: pytest.MonkeyPatch, data: bytes
) -> None:
    overlap = Overlap(window=0.2 if data is SVG else DEADLINE)
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


class Recorder:
    """An `EngineObserver` that keeps what it is told."""

    def __init__(self) -> None:
        self.done: list[tuple[str, str, bool, float | None]] = []
        self.rejections = 0

    def operation_done(self, operation: str, fmt: str, ok: bool, held: float | None) -> None:
        self.done.append((operation, fmt, ok, held))

    def rejected(self) -> None:
        self.rejections += 1


async def test_the_observer_hears_every_operation_with_its_format_and_outcome() -> None:
    seen = Recorder()
    engine = Engine(Limits(), concurrency=1, queue_limit=4, codecs=CODECS, observer=seen)
    try:
        await engine.transform(PNG, TransformOptions(format="png"))
        await engine.metadata(SVG, MetadataOptions())
        with pytest.raises(ImageError):
            await engine.transform(b"not an image", TransformOptions(format="png"))
        with pytest.raises(ImageError):
            await engine.metadata(b"not an image", MetadataOptions())
        gif = bytes(pyvips.Image.black(4, 4).gifsave_buffer())  # detected, not a decoder here
        with pytest.raises(ImageError):
            await engine.metadata(gif, MetadataOptions())
    finally:
        engine.close()
    assert [entry[:3] for entry in seen.done] == [
        ("transform", "png", True),
        ("metadata", "svg", True),
        ("transform", "png", False),  # the output format, even when the input is unknown
        ("metadata", "unknown", False),
        ("metadata", "gif", False),
    ]
    held = [entry[3] for entry in seen.done]
    assert held[0] is not None and held[0] > 0 and held[1] is not None and held[1] > 0
    assert held[2:] == [None, None, None]  # refused before a permit
    assert seen.rejections == 0


async def test_the_observer_hears_rejections_but_not_as_operations() -> None:
    seen = Recorder()
    engine = Engine(Limits(), concurrency=1, queue_limit=0, codecs=CODECS, observer=seen)
    release = threading.Event()
    try:
        blocker = asyncio.create_task(engine.run(release.wait, DEADLINE))
        await await_until(lambda: engine.limiter.in_use == 1, "the blocker's permit")
        with pytest.raises(ServerBusy):
            await engine.metadata(PNG, MetadataOptions())
        release.set()
        await blocker
    finally:
        release.set()
        engine.close()
    assert seen.rejections == 1 and seen.done == []


async def test_without_an_observer_nothing_is_recorded() -> None:
    engine = Engine(Limits(), concurrency=1, queue_limit=4, codecs=CODECS)
    try:
        assert engine.observer is None
        assert (await engine.transform(PNG, TransformOptions(format="png"))).format == "png"
    finally:
        engine.close()
