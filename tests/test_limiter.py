"""The global FIFO permit semaphore (performance.md, Concurrency model)."""

from __future__ import annotations

import asyncio

import pytest

from imaged.engine.limiter import Limiter
from imaged.errors import ServerBusy


async def settle() -> None:
    """Let every task that can run reach its next `await`. Not a timed wait: the limiter is
    single-threaded asyncio, so a few passes of the loop settle it deterministically, and
    the tests assert what has *not* happened (still queued, not done) right after."""
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.parametrize("permits", [0, -1])
def test_invalid_limit(permits: int) -> None:
    with pytest.raises(ValueError, match="invalid limit"):
        Limiter(permits, 10)


async def test_invalid_release() -> None:
    limiter = Limiter(2, 10)
    with pytest.raises(RuntimeError, match="invalid release"):
        limiter.release()
    await limiter.acquire()
    limiter.release()
    with pytest.raises(RuntimeError, match="invalid release"):
        limiter.release()
    assert limiter.in_use == 0


async def test_free_permits_are_taken_at_once() -> None:
    limiter = Limiter(3, 0)
    for _ in range(3):
        await asyncio.wait_for(limiter.acquire(), 1)
    assert (limiter.in_use, limiter.waiting) == (3, 0)


async def test_fifo_order() -> None:
    limiter = Limiter(1, 100)
    await limiter.acquire()
    served: list[int] = []

    async def worker(i: int) -> None:
        await limiter.acquire()
        served.append(i)
        await asyncio.sleep(0)  # a yield while holding the permit
        limiter.release()

    tasks = []
    for i in range(20):
        tasks.append(asyncio.create_task(worker(i)))
        await settle()  # arrival order = i
    assert limiter.waiting == 20
    limiter.release()
    await asyncio.gather(*tasks)
    assert served == list(range(20))
    assert (limiter.in_use, limiter.waiting) == (0, 0)


async def test_released_permit_goes_to_the_oldest_waiter_not_a_newcomer() -> None:
    limiter = Limiter(1, 100)
    await limiter.acquire()
    order: list[str] = []

    async def take(name: str) -> None:
        await limiter.acquire()
        order.append(name)

    waiter = asyncio.create_task(take("waiter"))
    await settle()
    limiter.release()  # handed to `waiter` directly…
    assert limiter.in_use == 1 and limiter.waiting == 0
    newcomer = asyncio.create_task(take("newcomer"))  # …so this one must queue
    await settle()
    assert order == ["waiter"] and not newcomer.done()
    limiter.release()
    await asyncio.wait_for(newcomer, 1)
    assert order == ["waiter", "newcomer"]
    await waiter


async def test_bounded_queue_raises_server_busy() -> None:
    limiter = Limiter(1, 2)
    await limiter.acquire()
    queued = [asyncio.create_task(limiter.acquire()) for _ in range(2)]
    await settle()
    assert limiter.waiting == 2
    with pytest.raises(ServerBusy) as info:
        await asyncio.wait_for(limiter.acquire(), 1)  # at once, not after a wait
    assert info.value.status == 503 and info.value.retry_after == 1
    assert limiter.waiting == 2
    unbounded = asyncio.create_task(limiter.acquire(bounded=False))  # pipeline tasks
    await settle()
    assert limiter.waiting == 3 and not unbounded.done()
    for _ in range(3):
        limiter.release()
        await settle()
    await asyncio.gather(*queued, unbounded)
    limiter.release()
    assert (limiter.in_use, limiter.waiting) == (0, 0)


async def test_cancelled_waiter_leaves_the_queue() -> None:
    limiter = Limiter(1, 10)
    await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await settle()
    first.cancel()
    await settle()
    assert first.cancelled() and limiter.waiting == 1
    limiter.release()
    await asyncio.wait_for(second, 1)  # the permit skipped the cancelled waiter
    limiter.release()
    assert (limiter.in_use, limiter.waiting) == (0, 0)


async def test_cancel_after_hand_off_passes_the_permit_on() -> None:
    limiter = Limiter(1, 10)
    await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await settle()
    limiter.release()  # handed to `first`, which has not run yet
    first.cancel()  # … and is cancelled before it does
    await settle()
    assert first.cancelled()
    await asyncio.wait_for(second, 1)
    assert limiter.in_use == 1
    limiter.release()
    assert (limiter.in_use, limiter.waiting) == (0, 0)


async def test_cancel_after_hand_off_without_other_waiters_frees_the_permit() -> None:
    limiter = Limiter(1, 10)
    await limiter.acquire()
    only = asyncio.create_task(limiter.acquire())
    await settle()
    limiter.release()
    only.cancel()
    await settle()
    assert only.cancelled()
    assert (limiter.in_use, limiter.waiting) == (0, 0)
    await asyncio.wait_for(limiter.acquire(), 1)


async def test_permit_context_releases_on_error() -> None:
    limiter = Limiter(1, 10)
    with pytest.raises(KeyError):
        async with limiter.permit():
            assert limiter.in_use == 1
            raise KeyError("x")
    assert limiter.in_use == 0


async def test_concurrency_never_exceeds_permits() -> None:
    limiter = Limiter(3, 1000)
    active = 0
    peak = 0

    async def job() -> None:
        nonlocal active, peak
        async with limiter.permit():
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.001)  # holds the permit across a real wait
            active -= 1

    await asyncio.gather(*(job() for _ in range(200)))
    assert peak == 3 and limiter.in_use == 0
