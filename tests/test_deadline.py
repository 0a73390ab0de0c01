"""engine/deadline.py and the operation time limit of `Engine.run`: libvips really stops."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import pyvips

from imaged.engine import deadline, vips
from imaged.engine.core import Engine
from imaged.engine.formats import Codecs
from imaged.engine.load import load
from imaged.engine.options import Limits
from imaged.errors import ImageError
from tests.waiting import DEADLINE, await_until, wait_until

CODECS = Codecs(decoders=("png",), encoders=("png",))


@pytest.fixture(scope="module")
def big_png() -> bytes:
    """A flat 4000×4000 PNG: tiny to store, seconds of work under a large gaussian blur."""
    vips.configure()
    return bytes((pyvips.Image.black(4000, 4000) + 100).cast("uchar").pngsave_buffer(compression=1))


def heavy(data: bytes) -> float:
    """Decode through `load` (so the image is tracked) and run a multi-second blur."""
    image = load(data, "png")
    return float(image.gaussblur(150).avg())


def light(data: bytes) -> float:
    return float(load(data, "png").crop(0, 0, 16, 16).avg())


def test_track_outside_an_operation_is_a_noop() -> None:
    image = pyvips.Image.black(8, 8)
    assert deadline.track(image) is image
    assert image.avg() == 0


def test_guard_collects_loaded_images_and_kill_stops_them(big_png: bytes) -> None:
    guard = deadline.OperationGuard()
    with guard.active():
        image = load(big_png, "png")
        guard.kill()
        with pytest.raises(pyvips.Error, match="killed"):
            image.crop(0, 0, 64, 64).avg()
    assert guard.killed


def test_scope_forgets_what_it_tracked_and_kill_still_reaches_the_rest(big_png: bytes) -> None:
    guard = deadline.OperationGuard()
    with guard.active():
        source = load(big_png, "png")
        with deadline.scope():
            deadline.track(source.crop(0, 0, 64, 64))
            assert guard.count() == 2
        assert guard.count() == 1
        guard.kill()
        with pytest.raises(pyvips.Error, match="killed"):
            source.crop(0, 0, 64, 64).avg()
    with deadline.scope():  # outside an operation: nothing to forget
        assert deadline.track(source) is source


def test_image_tracked_after_kill_is_killed_at_once(big_png: bytes) -> None:
    guard = deadline.OperationGuard()
    guard.kill()
    with guard.active():
        image = load(big_png, "png")
        with pytest.raises(pyvips.Error, match="killed"):
            image.crop(0, 0, 64, 64).avg()


def test_active_is_per_thread_and_reset_afterwards(big_png: bytes) -> None:
    guard = deadline.OperationGuard()
    other: list[float] = []
    with guard.active():
        # A load on another thread is not part of this operation: killing does not touch it.
        thread = threading.Thread(target=lambda: other.append(light(big_png)))
        guard.kill()
        thread.start()
        thread.join()
    assert other == [100.0]
    # Outside `active()` nothing is tracked any more.
    assert light(big_png) == 100.0


def computing(since: float) -> bool:
    """libvips is working: the process has used CPU time (all threads) since `since`."""
    return time.process_time() - since >= 0.1


def test_kill_stops_a_running_computation_promptly(big_png: bytes) -> None:
    guard = deadline.OperationGuard()
    outcome: dict[str, object] = {}
    loaded = threading.Event()

    def work() -> None:
        with guard.active():
            try:
                image = load(big_png, "png")  # tracked by the guard
                loaded.set()
                outcome["value"] = float(image.gaussblur(150).avg())
            except pyvips.Error as exc:
                outcome["error"] = str(exc)
            outcome["finished"] = time.monotonic()

    thread = threading.Thread(target=work)
    thread.start()
    assert loaded.wait(DEADLINE)
    cpu = time.process_time()
    wait_until(lambda: computing(cpu), "the blur to be computing")
    killed = time.monotonic()
    guard.kill()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    assert "killed" in str(outcome.get("error")), outcome
    assert float(outcome["finished"]) - killed < 2.0, outcome  # type: ignore[arg-type]


async def test_engine_run_answers_the_time_limit_and_frees_the_permit(big_png: bytes) -> None:
    engine = Engine(Limits(), concurrency=1, queue_limit=4, codecs=CODECS, operation_timeout=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(ImageError) as caught:
            await engine.run(heavy, big_png)
        elapsed = time.monotonic() - started
        assert caught.value.message == "image: processing time limit of 0.5 s exceeded"
        assert elapsed < 3.0
        assert engine.limiter.in_use == 0 and engine.limiter.waiting == 0
        # The next operation on the same (single) worker runs normally.
        assert await engine.run(light, big_png) == 100.0
    finally:
        engine.close()


async def test_engine_run_within_the_limit_is_untouched(big_png: bytes) -> None:
    engine = Engine(Limits(), concurrency=1, queue_limit=4, codecs=CODECS, operation_timeout=30)
    try:
        assert await engine.run(light, big_png) == 100.0
    finally:
        engine.close()


async def test_engine_run_cancelled_request_stops_libvips(big_png: bytes) -> None:
    """A cancelled request (client gone) must not leave libvips burning the worker."""
    engine = Engine(Limits(), concurrency=1, queue_limit=4, codecs=CODECS, operation_timeout=60)
    stopped: list[str] = []

    def watched(data: bytes) -> float:
        try:
            return heavy(data)
        except pyvips.Error as exc:
            stopped.append(str(exc))
            raise

    try:
        cpu = time.process_time()
        task = asyncio.create_task(engine.run(watched, big_png))
        await await_until(lambda: computing(cpu), "the blur to be computing")
        assert engine.limiter.in_use == 1
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 2.0
        # The blur takes about a second here: only the kill shows it did not run to the end.
        assert len(stopped) == 1 and "killed" in stopped[0], stopped
        assert engine.limiter.in_use == 0
        assert await engine.run(light, big_png) == 100.0
    finally:
        engine.close()
