"""Waiting in tests: poll the real condition until it holds or a generous deadline passes.

A fixed `sleep` guesses how long something takes: on a loaded machine the guess is too short
and the test fails, or it passes without having tested anything. Polling waits exactly as
long as needed and, when the condition never comes, fails with what it was waiting for.
A sleep may stay only where the pause itself is the behaviour under test (a slow client, a
window in which nothing may happen); such sleeps say so in a comment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Long enough for a loaded 2-core machine; a condition that holds returns at once anyway.
DEADLINE = 30.0
_INTERVAL = 0.01


def _timed_out(what: str | Callable[[], str], timeout: float) -> AssertionError:
    text = what() if callable(what) else what
    return AssertionError(f"timed out after {timeout:g} s waiting for {text}")


def wait_until(
    condition: Callable[[], T], what: str | Callable[[], str], timeout: float = DEADLINE
) -> T:
    """The first truthy value of `condition()`, checked at least once; AssertionError naming
    `what` (a text, or a function giving one, e.g. with the server log) after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout)
        time.sleep(_INTERVAL)  # the polling interval, not a guess at the condition
    return value


async def await_until(
    condition: Callable[[], T], what: str | Callable[[], str], timeout: float = DEADLINE
) -> T:
    """`wait_until` inside an event loop: the loop keeps running between checks."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout)
        await asyncio.sleep(_INTERVAL)
    return value
