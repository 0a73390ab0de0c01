"""Progress of a batch (batch.md, "Progress and summary"): a live `tqdm` bar on a TTY,
one plain line every 5 s otherwise, or nothing; and the summary line, always last.

Progress goes to stderr, the summary to stdout.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from imaged.pipeline import SUCCESS

PLAIN_INTERVAL = 5.0
MODES = ("auto", "bar", "plain", "none")


@dataclass
class Totals:
    started: float = field(default_factory=time.monotonic)
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    outputs: int = 0
    bytes: int = 0

    def add(self, record: dict[str, Any]) -> None:
        self.processed += 1
        if record.get("status") == SUCCESS:
            self.succeeded += 1
        else:
            self.failed += 1
        for task in record.get("tasks", ()):
            output = task.get("output")
            if task.get("status") == SUCCESS and output is not None:
                self.outputs += 1
                self.bytes += int(output.get("size", 0))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        elapsed = self.elapsed
        return self.processed / elapsed if elapsed > 0 else 0.0

    def summary(self) -> str:
        elapsed = self.elapsed
        return (
            f"processed {self.processed} sources: {self.succeeded} succeeded, "
            f"{self.failed} failed, {self.outputs} outputs, {self.bytes} bytes in "
            f"{elapsed:.1f} s ({self.rate:.1f} images/s)"
        )


class Progress(Protocol):
    def listed(self, count: int) -> None:
        """`count` sources listed so far (the listing is still running)."""

    def start(self, total: int) -> None:
        """The listing is complete: `total` sources will be processed."""

    def update(self, totals: Totals) -> None:
        """One more source finished."""

    def close(self) -> None: ...


class NoProgress:
    def listed(self, count: int) -> None:
        return None

    def start(self, total: int) -> None:
        return None

    def update(self, totals: Totals) -> None:
        return None

    def close(self) -> None:
        return None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class PlainProgress:
    """A line at most every `interval` seconds, when something changed."""

    def __init__(self, stream: TextIO, interval: float = PLAIN_INTERVAL) -> None:
        self.stream = stream
        self.interval = interval
        self.total = 0
        self._last = time.monotonic()

    def _due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.interval:
            return False
        self._last = now
        return True

    def listed(self, count: int) -> None:
        if self._due():
            print(f"listing: {count} sources so far", file=self.stream, flush=True)

    def start(self, total: int) -> None:
        self.total = total
        print(f"listed {total} sources", file=self.stream, flush=True)
        self._last = time.monotonic()

    def update(self, totals: Totals) -> None:
        if self._due() or totals.processed == self.total:
            self._line(totals)

    def _line(self, totals: Totals) -> None:
        rate = totals.rate
        left = self.total - totals.processed
        eta = _duration(left / rate) if rate > 0 else "?"
        print(
            f"progress: {totals.processed}/{self.total} sources, {totals.failed} failed, "
            f"{rate:.1f} images/s, elapsed {_duration(totals.elapsed)}, ETA {eta}",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        return None


class BarProgress:
    """tqdm: a counter while listing, then done/total, rate, elapsed, ETA and failures."""

    def __init__(self, stream: TextIO) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.stream = stream
        self._bar: Any = tqdm(desc="listing", unit=" sources", file=stream, dynamic_ncols=True)

    def listed(self, count: int) -> None:
        self._bar.n = count
        self._bar.refresh()

    def start(self, total: int) -> None:
        self._bar.close()
        self._bar = self._tqdm(
            total=total, desc="batch", unit=" img", file=self.stream, dynamic_ncols=True
        )
        self._bar.set_postfix(failed=0)

    def update(self, totals: Totals) -> None:
        self._bar.set_postfix(failed=totals.failed, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


def make_progress(mode: str, stream: TextIO | None = None) -> Progress:
    stream = stream or sys.stderr
    if mode == "auto":
        mode = "bar" if stream.isatty() else "plain"
    if mode == "bar":
        return BarProgress(stream)
    if mode == "plain":
        return PlainProgress(stream)
    return NoProgress()
