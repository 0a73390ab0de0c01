"""A time limit per image operation that really stops libvips.

Every image that `load` decodes is tracked for the operation running in the current worker
thread; when the operation overruns, the watchdog sets libvips' kill flag on those images,
which makes every region computing from them fail at the next tile, so the worker thread
returns promptly instead of burning a core for minutes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pyvips

_local = threading.local()


class OperationGuard:
    """The images of one operation and whether it has been killed."""

    def __init__(self) -> None:
        self._images: list[pyvips.Image] = []
        self._lock = threading.Lock()
        self.killed = False

    def track(self, image: pyvips.Image) -> None:
        with self._lock:
            if self.killed:
                image.set_kill(True)
            self._images.append(image)

    def kill(self) -> None:
        with self._lock:
            self.killed = True
            for image in self._images:
                image.set_kill(True)

    def release(self) -> None:
        with self._lock:
            self._images.clear()

    def count(self) -> int:
        with self._lock:
            return len(self._images)

    def forget_after(self, count: int) -> None:
        """Stop tracking the images tracked after the first `count`."""
        with self._lock:
            del self._images[count:]

    @contextmanager
    def active(self) -> Iterator[None]:
        """Make this the guard of the current thread while the operation runs."""
        _local.guard = self
        try:
            yield
        finally:
            _local.guard = None
            self.release()


def track(image: pyvips.Image) -> pyvips.Image:
    """Register a freshly loaded image with the running operation (no-op outside one)."""
    guard: OperationGuard | None = getattr(_local, "guard", None)
    if guard is not None:
        guard.track(image)
    return image


def killed() -> bool:
    """Whether the operation running in this thread has been stopped by its time limit."""
    guard: OperationGuard | None = getattr(_local, "guard", None)
    return guard is not None and guard.killed


@contextmanager
def scope() -> Iterator[None]:
    """Images tracked inside the block are forgotten when it ends: for work that is finished
    there (one frame of an animation rendered into memory). A tracked image stays alive, and
    libvips keeps the pixel buffers of a live image for reuse, so 200 tracked frame
    pipelines would hold ~50 MB for nothing."""
    guard: OperationGuard | None = getattr(_local, "guard", None)
    if guard is None:
        yield
        return
    mark = guard.count()
    try:
        yield
    finally:
        guard.forget_after(mark)
