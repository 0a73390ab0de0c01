"""The global FIFO permit semaphore with a bounded queue (performance.md)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from imaged.errors import ServerBusy


class Limiter:
    """`permits` concurrent holders; waiters are served strictly in arrival order and a
    released permit is handed directly to the oldest waiter. A bounded acquire beyond
    `queue_limit` waiters raises `ServerBusy` at once instead of piling up memory."""

    def __init__(self, permits: int, queue_limit: int) -> None:
        if permits < 1:
            raise ValueError("invalid limit")
        self.permits = permits
        self.queue_limit = queue_limit
        self._free = permits
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def in_use(self) -> int:
        return self.permits - self._free

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, bounded: bool = True) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        if bounded and len(self._waiters) >= self.queue_limit:
            raise ServerBusy(retry_after=1)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the permit was handed to us just before the cancel
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        if self._free >= self.permits:
            raise RuntimeError("invalid release")
        self._free += 1

    @asynccontextmanager
    async def permit(self, bounded: bool = True) -> AsyncIterator[None]:
        await self.acquire(bounded)
        try:
            yield
        finally:
            self.release()
