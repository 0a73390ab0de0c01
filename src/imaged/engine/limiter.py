"""The global FIFO permit semaphore with a bounded queue (performance.md), and the memory
budget beside it (resources.md)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from imaged.errors import ImageError, ServerBusy

MEMORY_EXCEEDED = "Input image needs more memory than the server allows"


@dataclass
class _Waiter:
    future: asyncio.Future[None]
    cost: int  # bytes reserved once it runs
    held: int  # bytes already in memory while it waits (its request body)
    memory_wait: bool = False  # counted in `memory_waits`


class Limiter:
    """`permits` concurrent holders; waiters are served strictly in arrival order and a
    released permit is handed directly to the oldest waiter. A bounded acquire beyond
    `queue_limit` waiters raises `ServerBusy` at once instead of piling up memory.

    With a `budget` (bytes, 0 = none) every holder also reserves its `cost`, and the oldest
    waiter runs only once both a permit and its bytes are free; nobody overtakes it, so a
    large operation is not starved by small ones. A cost over the whole budget is refused
    at once (400). While waiting, the `held` bytes of a waiter (its body, already in memory)
    count as reserved; a bounded waiter whose body would take the waiting bodies over the
    budget gets `ServerBusy`. Running costs alone decide admission, so held bodies can never
    block the operations that would free them.
    """

    def __init__(self, permits: int, queue_limit: int, budget: int = 0) -> None:
        if permits < 1:
            raise ValueError("invalid limit")
        self.permits = permits
        self.queue_limit = queue_limit
        self.budget = budget
        self.memory_waits = 0  # operations that had to wait for memory
        self.on_memory_wait: Callable[[], None] | None = None  # told of each (metrics)
        self._free = permits
        self._running = 0  # bytes reserved by the holders
        self._held = 0  # body bytes of the waiters
        self._waiters: deque[_Waiter] = deque()

    @property
    def in_use(self) -> int:
        return self.permits - self._free

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def reserved(self) -> int:
        """Bytes reserved: the holders' costs plus the bodies held by waiters."""
        return self._running + self._held

    def _fits(self, cost: int) -> bool:
        return self._free > 0 and (not self.budget or self._running + cost <= self.budget)

    async def acquire(self, bounded: bool = True, cost: int = 0, held: int = 0) -> None:
        if self.budget and cost > self.budget:
            raise ImageError(MEMORY_EXCEEDED)
        cost = cost if self.budget else 0
        held = min(held, cost)
        if not self._waiters and self._fits(cost):
            self._free -= 1
            self._running += cost
            return
        if bounded and len(self._waiters) >= self.queue_limit:
            raise ServerBusy(retry_after=1)
        if bounded and self.budget and self._held + held > self.budget:
            raise ServerBusy(retry_after=1)
        waiter = _Waiter(asyncio.get_running_loop().create_future(), cost, held)
        if self._free > 0:  # a permit is free: this one waits for memory (its own or the head's)
            self._count_memory_wait(waiter)
        self._waiters.append(waiter)
        self._held += held
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self.release(cost)  # the permit was handed to us just before the cancel
            elif any(w is waiter for w in self._waiters):
                self._waiters.remove(waiter)
                self._held -= held
                self._dispatch()  # it may have been the head others were waiting behind
            raise

    def release(self, cost: int = 0) -> None:
        if self._free >= self.permits:
            raise RuntimeError("invalid release")
        self._free += 1
        self._running -= cost if self.budget else 0
        self._dispatch()

    def _count_memory_wait(self, waiter: _Waiter) -> None:
        if not waiter.memory_wait:
            waiter.memory_wait = True
            self.memory_waits += 1
            if self.on_memory_wait is not None:
                self.on_memory_wait()

    def _dispatch(self) -> None:
        """Hand permits to the oldest waiters while the oldest one fits."""
        while self._waiters:
            waiter = self._waiters[0]
            if waiter.future.done():  # cancelled: its task will find it gone
                self._waiters.popleft()
                self._held -= waiter.held
                continue
            if not self._fits(waiter.cost):
                if self._free > 0:
                    self._count_memory_wait(waiter)
                return
            self._waiters.popleft()
            self._held -= waiter.held
            self._free -= 1
            self._running += waiter.cost
            waiter.future.set_result(None)

    @asynccontextmanager
    async def permit(
        self, bounded: bool = True, cost: int = 0, held: int = 0
    ) -> AsyncIterator[None]:
        await self.acquire(bounded, cost, held)
        try:
            yield
        finally:
            self.release(cost)
