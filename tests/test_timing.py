"""The one elapsed-milliseconds helper: half-up rounding, monotonic clock by default."""

from __future__ import annotations

import time

import pytest

from imaged.timing import elapsed_ms


@pytest.mark.parametrize(
    ("seconds", "ms"),
    [
        (0.0, 0),
        (0.0005, 1),  # half up (round() would give 0)
        (0.0025, 3),  # half up (round() would give 2)
        (0.00149, 1),
        (0.00151, 2),
        (1.2345, 1235),
    ],
)
def test_rounds_half_up(seconds: float, ms: int) -> None:
    assert elapsed_ms(0.0, seconds) == ms


def test_defaults_to_now_on_the_monotonic_clock() -> None:
    started = time.monotonic() - 1.5
    measured = elapsed_ms(started)
    assert 1500 <= measured <= elapsed_ms(started)
