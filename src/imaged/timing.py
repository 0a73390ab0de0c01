"""Elapsed time as imaged reports it: whole milliseconds, rounded half up.

One helper for every duration a client or operator sees (`X-Response-Time-Ms`, the
pipeline's `durationMs` and `totalDurationMs`, the `duration` of the debug `request` log
line), so they all round the same way. Python's `round()` rounds half to even, which is not
what the spec's JavaScript origin does.
"""

from __future__ import annotations

import math
import time


def elapsed_ms(started: float, now: float | None = None) -> int:
    """Milliseconds from `started` to `now` (both `time.monotonic()`; `now` defaults to the
    current time), rounded half up."""
    end = time.monotonic() if now is None else now
    return math.floor((end - started) * 1000 + 0.5)
