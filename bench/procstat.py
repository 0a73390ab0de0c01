"""Server-side measurements from /proc: CPU time and resident memory of one process.

CPU is utime + stime of every thread (fields 14 and 15 of /proc/<pid>/stat); peak memory is
VmHWM, which `reset_peak` rewinds to the current RSS (clear_refs "5") so that each load level
gets its own peak. A sampler of VmRSS backs that up where clear_refs is not allowed.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of all threads of `pid` so far."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is the state (field 3 of stat): utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_kib(pid: int, key: str) -> int:
    """A `Vm*` line of /proc/<pid>/status in KiB (0 if absent, e.g. a zombie)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def rss_mib(pid: int) -> float:
    return status_kib(pid, "VmRSS") / 1024


def peak_mib(pid: int) -> float:
    return status_kib(pid, "VmHWM") / 1024


def reset_peak(pid: int) -> bool:
    """Rewind VmHWM to the current RSS; False where the kernel or permissions refuse."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def mapped_libraries(pid: int, needle: str) -> list[str]:
    """Paths of mapped files containing `needle` (e.g. to prove a preload took effect)."""
    found: list[str] = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and needle in parts[5] and parts[5] not in found:
            found.append(parts[5])
    return found


def wait_idle(pid: int, quiet: float = 0.3, timeout: float = 60.0) -> bool:
    """Wait until `pid` used less than 2 % of a core over `quiet` seconds.

    A load generator that stops (end of its duration, or a request cap) leaves requests
    in flight that the server still finishes; without this wait their CPU time would be
    charged to the next measurement window.
    """
    deadline = time.monotonic() + timeout
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = cpu_seconds(pid)
        if now - last < 0.02 * quiet + 1 / CLOCK_TICKS:
            return True
        last = now
    return False


class RssSampler:
    """Samples VmRSS of `pid` in a thread; `peak` is the highest value seen (MiB)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_mib(self.pid))
            except OSError:
                return
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Window:
    """CPU and peak RSS of `pid` between `start()` and `stop()`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu = 0.0
        self.peak = 0.0
        self.rss_end = 0.0
        self._cpu0 = 0.0
        self._reset = False
        self._sampler = RssSampler(pid)

    def __enter__(self) -> Window:
        self._reset = reset_peak(self.pid)
        self._cpu0 = cpu_seconds(self.pid)
        self._sampler.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sampler.__exit__()
        self.cpu = cpu_seconds(self.pid) - self._cpu0
        self.rss_end = rss_mib(self.pid)
        sampled = max(self._sampler.peak, self.rss_end)
        self.peak = max(peak_mib(self.pid), sampled) if self._reset else sampled
