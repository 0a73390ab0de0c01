"""The global FIFO permit semaphore (performance.md, Concurrency model)."""

from __future__ import annotations

import asyncio

import pytest

from imaged.engine.limiter import Limiter
from imaged.errors import ImageError, ServerBusy


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


# The memory budget (resources.md): reservations in the same FIFO as the permits.


async def test_budget_waits_in_fifo_and_a_big_one_is_not_starved() -> None:
    limiter = Limiter(8, 100, budget=100)
    await limiter.acquire(cost=60)
    order: list[str] = []

    async def op(name: str, cost: int) -> None:
        await limiter.acquire(cost=cost)
        order.append(name)

    big = asyncio.create_task(op("big", 90))
    await settle()
    smalls = [asyncio.create_task(op(f"small{i}", 10)) for i in range(3)]
    await settle()
    # 40 bytes are free and the small ones would fit, but they may not overtake `big`.
    assert order == [] and limiter.waiting == 4 and limiter.in_use == 1
    assert limiter.memory_waits == 4  # a permit was free each time: they wait for memory
    limiter.release(60)
    await settle()
    assert order == ["big", "small0"] and limiter.reserved == 100  # exactly full
    limiter.release(90)
    await asyncio.gather(*smalls)
    assert order == ["big", "small0", "small1", "small2"] and limiter.reserved == 30
    await asyncio.gather(big)


async def test_over_the_whole_budget_is_refused_at_once() -> None:
    limiter = Limiter(2, 10, budget=100)
    with pytest.raises(ImageError) as caught:
        await limiter.acquire(cost=101)
    assert str(caught.value) == "image: Input image needs more memory than the server allows"
    assert limiter.in_use == 0 and limiter.reserved == 0 and limiter.waiting == 0
    await limiter.acquire(cost=100)  # exactly the budget runs
    assert limiter.reserved == 100
    queued = asyncio.create_task(limiter.acquire(cost=10))
    await settle()
    with pytest.raises(ImageError):  # at once, even with the budget full and a queue
        await limiter.acquire(bounded=False, cost=101)
    assert limiter.waiting == 1 and not queued.done()
    limiter.release(100)
    await queued


async def test_without_budget_costs_are_ignored() -> None:
    limiter = Limiter(2, 10)
    await limiter.acquire(cost=10**12)
    await limiter.acquire(cost=10**12)
    assert limiter.reserved == 0 and limiter.memory_waits == 0
    limiter.release(10**12)
    limiter.release(10**12)


async def test_bodies_of_waiters_count_and_are_bounded() -> None:
    limiter = Limiter(1, 100, budget=100)
    await limiter.acquire(cost=50)
    first = asyncio.create_task(limiter.acquire(cost=70, held=60))
    await settle()
    assert limiter.reserved == 50 + 60  # the running cost plus the waiting body
    with pytest.raises(ServerBusy):  # 60 + 50 waiting bodies would exceed the budget
        await limiter.acquire(cost=60, held=50)
    unbounded = asyncio.create_task(limiter.acquire(bounded=False, cost=60, held=50))
    await settle()
    assert limiter.reserved == 50 + 60 + 50 and limiter.waiting == 2
    limiter.release(50)
    await first
    assert limiter.reserved == 70 + 50  # its body is now part of its cost
    limiter.release(70)
    await unbounded
    assert limiter.reserved == 60
    limiter.release(60)
    assert limiter.reserved == 0 and limiter.in_use == 0


async def test_cancelled_head_lets_the_next_one_run() -> None:
    limiter = Limiter(4, 100, budget=100)
    await limiter.acquire(cost=50)
    head = asyncio.create_task(limiter.acquire(cost=80, held=30))
    await settle()
    second = asyncio.create_task(limiter.acquire(cost=40, held=10))
    await settle()
    assert not second.done() and limiter.reserved == 50 + 30 + 10
    head.cancel()
    await second  # no longer behind the head that did not fit
    assert limiter.reserved == 90 and limiter.in_use == 2 and limiter.waiting == 0
    with pytest.raises(asyncio.CancelledError):
        await head


async def test_permit_context_releases_its_cost() -> None:
    limiter = Limiter(2, 10, budget=100)
    async with limiter.permit(cost=70, held=20):
        assert limiter.reserved == 70
    assert limiter.reserved == 0 and limiter.in_use == 0
