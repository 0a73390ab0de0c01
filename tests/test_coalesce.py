"""Flights in-process (caching.md, "Request coalescing"): one work for every concurrent
participant, errors shared, a participant's cancellation never cancels the work, the second
stage only when someone needs it, and nothing reused once the work is done."""

from __future__ import annotations

import asyncio

import pytest

from imaged.server.coalesce import Flight, Flights
from tests.waiting import await_until


class Work:
    """Counts runs; each stage waits for the test to open its gate."""

    def __init__(self, fail_at: str | None = None) -> None:
        self.runs = 0
        self.renders = 0
        self.fetched = asyncio.Event()
        self.rendered = asyncio.Event()
        self.fail_at = fail_at

    async def __call__(self, flight: Flight[str, str]) -> str | None:
        self.runs += 1
        await self.fetched.wait()
        if self.fail_at == "fetch":
            raise ValueError("fetch failed")
        flight.publish("etag-1")
        if not flight.wanted("etag-1"):
            return None
        self.renders += 1
        await self.rendered.wait()
        if self.fail_at == "render":
            raise ValueError("render failed")
        return "body"


def always(_: str) -> bool:
    return True


def never(_: str) -> bool:
    return False


async def joined(flights: Flights[str, str], count: int) -> None:
    def enough() -> bool:
        flight = flights.get("key")
        return flight is not None and flight.participants == count

    await await_until(enough, f"{count} participants")


async def participate(flights: Flights[str, str], work: Work, needs: object = always) -> str:
    flight, _ = flights.join("key", needs, work)  # type: ignore[arg-type]
    validated = await flight.first()
    return await flight.result() if needs(validated) else "304"  # type: ignore[operator]


async def test_concurrent_participants_share_one_work() -> None:
    flights: Flights[str, str] = Flights()
    work = Work()
    tasks = [asyncio.create_task(participate(flights, work)) for _ in range(8)]
    await joined(flights, 8)
    work.fetched.set()
    work.rendered.set()
    assert await asyncio.gather(*tasks) == ["body"] * 8
    assert (work.runs, work.renders) == (1, 1)
    assert len(flights) == 0  # done: the next request starts afresh


async def test_join_says_who_joined_work_in_progress() -> None:
    flights: Flights[str, str] = Flights()
    work = Work()
    first, joined_first = flights.join("key", always, work)
    second, joined_second = flights.join("key", always, work)
    other, joined_other = flights.join("other", always, work)
    assert first is second and other is not first
    assert (joined_first, joined_second, joined_other) == (False, True, False)
    work.fetched.set()
    work.rendered.set()
    assert await first.result() == await other.result() == "body"


async def test_errors_of_either_stage_reach_every_participant_and_are_not_kept() -> None:
    for stage in ("fetch", "render"):
        flights: Flights[str, str] = Flights()
        work = Work(fail_at=stage)
        tasks = [asyncio.create_task(participate(flights, work)) for _ in range(3)]
        await await_until(lambda w=work: w.runs == 1, "the work to start")  # type: ignore[misc]
        work.fetched.set()
        work.rendered.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, ValueError) and str(r) == f"{stage} failed" for r in results)
        assert len(flights) == 0
        retry = Work()
        retry.fetched.set()
        retry.rendered.set()
        assert await participate(flights, retry) == "body" and retry.runs == 1


async def test_a_cancelled_participant_never_cancels_the_shared_work() -> None:
    flights: Flights[str, str] = Flights()
    work = Work()
    creator = asyncio.create_task(participate(flights, work))
    await await_until(lambda: work.runs == 1, "the work to start")
    waiter = asyncio.create_task(participate(flights, work))
    await joined(flights, 2)
    creator.cancel()  # the client that started it goes away
    with pytest.raises(asyncio.CancelledError):
        await creator
    work.fetched.set()
    work.rendered.set()
    assert await waiter == "body"
    assert work.runs == 1


async def test_the_work_goes_on_when_every_participant_has_gone() -> None:
    flights: Flights[str, str] = Flights()
    work = Work()
    task = asyncio.create_task(participate(flights, work))
    await await_until(lambda: work.runs == 1, "the work to start")
    task.cancel()
    flight, joined = flights.join("key", always, work)
    assert joined  # still in progress, so a later request joins it
    work.fetched.set()
    work.rendered.set()
    assert await flight.result() == "body"


async def test_no_second_stage_when_nobody_needs_it() -> None:
    flights: Flights[str, str] = Flights()
    work = Work()
    tasks = [asyncio.create_task(participate(flights, work, never)) for _ in range(3)]
    await joined(flights, 3)
    work.fetched.set()
    assert await asyncio.gather(*tasks) == ["304"] * 3
    assert work.renders == 0 and len(flights) == 0


async def test_one_participant_needing_the_body_makes_the_work_render() -> None:
    flights: Flights[str, str] = Flights()
    work = Work()
    quiet = asyncio.create_task(participate(flights, work, never))
    await await_until(lambda: work.runs == 1, "the work to start")
    loud = asyncio.create_task(participate(flights, work, always))
    await joined(flights, 2)
    work.fetched.set()
    work.rendered.set()
    assert await asyncio.gather(quiet, loud) == ["304", "body"]
    assert work.renders == 1
