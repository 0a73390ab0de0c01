"""Request coalescing (caching.md, "Request coalescing"): identical concurrent GETs share one
fetch and one image operation.

A `Flight` is the shared work for one key, run as its own task in two stages: first the
source is fetched (or revalidated) and its ETag published (`validated`), then — only if some
participant needs a body — the image is rendered (the task's result). Participants say at
join time whether they need the body for a given ETag (a conditional request whose tag
matches does not), so a flight of revalidations alone does no image work at all.

A request can join only while the work is in progress: a finished flight leaves the table
at once, so nothing is served from it afterwards (that is the result cache's job), and its
errors are never reused. Participants wait through `asyncio.shield`: a client that
disconnects cancels only its own wait, never the shared work of the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")  # what the first stage publishes (the validators)
R = TypeVar("R")  # the result


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a failure as seen: when every participant has gone, nobody else will."""
    if not future.cancelled():
        future.exception()


class Flight(Generic[V, R]):
    def __init__(self) -> None:
        self.validated: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self.validated.add_done_callback(_retrieve)
        self._needs: list[Callable[[V], bool]] = []
        self.task: asyncio.Task[R | None] | None = None

    def add_participant(self, needs: Callable[[V], bool]) -> None:
        self._needs.append(needs)

    @property
    def participants(self) -> int:
        """How many requests have joined (including the one that started it)."""
        return len(self._needs)

    def publish(self, value: V) -> None:
        """The first stage is done (called by the work)."""
        self.validated.set_result(value)

    def wanted(self, value: V) -> bool:
        """Whether any participant needs the second stage for `value` (called by the work,
        right after `publish`; later joiners find the second stage already running)."""
        return any(needs(value) for needs in self._needs)

    async def first(self) -> V:
        return await asyncio.shield(self.validated)

    async def result(self) -> R:
        """The shared result; only for a participant whose `needs` said yes."""
        assert self.task is not None
        result = await asyncio.shield(self.task)
        if result is None:  # cannot happen: the work renders when anyone needs it
            raise RuntimeError("a coalesced flight finished without the result it owed")
        return result


class Flights(Generic[V, R]):
    """The flights in progress, by key."""

    def __init__(self) -> None:
        self._flights: dict[Hashable, Flight[V, R]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def get(self, key: Hashable) -> Flight[V, R] | None:
        """The flight in progress for `key`, if any."""
        return self._flights.get(key)

    def join(
        self,
        key: Hashable,
        needs: Callable[[V], bool],
        work: Callable[[Flight[V, R]], Coroutine[Any, Any, R | None]],
    ) -> tuple[Flight[V, R], bool]:
        """(the flight for `key`, whether it was already in progress). A new flight starts
        `work(flight)` at once; `needs(validated)` tells whether this participant wants the
        result."""
        flight = self._flights.get(key)
        joined = flight is not None
        if flight is None:
            flight = self._flights[key] = Flight()
            flight.task = asyncio.get_running_loop().create_task(self._run(key, flight, work))
        flight.add_participant(needs)
        return flight, joined

    async def _run(
        self,
        key: Hashable,
        flight: Flight[V, R],
        work: Callable[[Flight[V, R]], Coroutine[Any, Any, R | None]],
    ) -> R | None:
        try:
            return await work(flight)
        except BaseException as exc:
            if not flight.validated.done():  # the first stage failed: every waiter sees it
                if isinstance(exc, asyncio.CancelledError):
                    flight.validated.cancel()
                else:
                    flight.validated.set_exception(exc)
            raise
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
            assert flight.task is not None
            flight.task.add_done_callback(_retrieve)
