"""The memory budget under load (resources.md): 16 concurrent 48 MP JPEG → 400 px transforms
plus 16 concurrent full-size 12 MP PNG → TIFF conversions at once, against `--concurrency 8`
with `--memory-budget 300m` and without a budget; every status and the server's peak RSS
(VmHWM) above its idle RSS. tests/e2e/test_resources.py runs the same load and asserts it.

The inputs are synthetic and made once: a 48 MP JPEG of smooth noise with fine grain (about
6.5 MB) and a 12 MP PNG of gradients (about 1.6 MB). Small bodies keep the load about the
decoded pixels, which is what the budget governs (the bodies count on top: docs/performance.md).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyvips

from bench.procstat import peak_mib, rss_mib

BUDGET = "300m"
BUDGET_MIB = 300
CONCURRENCY = 8
EACH = 16  # requests of each kind, all sent at once
THUMBNAIL = "/transform?width=400&format=jpeg"
CONVERT = "/transform?format=tiff"
BODY_LIMIT = str(64 << 20)


def make_inputs(directory: Path) -> tuple[Path, Path]:
    """(48 MP JPEG, 12 MP PNG) in `directory`, made unless already there."""
    jpeg, png = directory / "budget-48mp.jpg", directory / "budget-12mp.png"
    if not jpeg.exists():
        noise = pyvips.Image.gaussnoise(500, 375, mean=128, sigma=50)
        smooth = noise.bandjoin([noise.rot180(), noise.flip("horizontal")]).resize(16)
        grain = pyvips.Image.gaussnoise(8000, 6000, mean=0, sigma=2)
        image = (smooth + grain).cast("uchar").copy(interpretation="srgb")
        image.jpegsave(str(jpeg), Q=80)
    if not png.exists():
        xy = pyvips.Image.xyz(4000, 3000)
        x, y = xy[0], xy[1]
        bands = [(x / 16) % 256, (y / 12) % 256, (x * y / 40000) % 256]
        image = bands[0].bandjoin(bands[1:]).cast("uchar").copy(interpretation="srgb")
        image.pngsave(str(png), compression=6)
    return jpeg, png


def load(url: str, jpeg: bytes, png: bytes, each: int = EACH) -> Counter[int]:
    """`each` thumbnails and `each` conversions, all in flight at once: the statuses."""
    jobs = [(THUMBNAIL, jpeg)] * each + [(CONVERT, png)] * each

    def send(job: tuple[str, bytes]) -> int:
        with httpx.Client(base_url=url, timeout=300.0) as client:
            return client.put(job[0], content=job[1]).status_code

    with ThreadPoolExecutor(len(jobs)) as pool:
        return Counter(pool.map(send, jobs))


@dataclass(frozen=True)
class Result:
    budget: str
    idle_mb: float
    peak_mb: float
    seconds: float
    statuses: dict[int, int]

    def row(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "idle_rss_mb": round(self.idle_mb, 1),
            "peak_rss_mb": round(self.peak_mb, 1),
            "above_idle_mb": round(self.peak_mb - self.idle_mb, 1),
            "seconds": round(self.seconds, 2),
            "statuses": self.statuses,
        }


def measure(pid: int, url: str, jpeg: bytes, png: bytes, budget: str) -> Result:
    """The load against the running server `pid` at `url`."""
    idle = max(rss_mib(pid), peak_mib(pid))  # VmHWM since start: startup included
    start = time.monotonic()
    statuses = load(url, jpeg, png)
    seconds = time.monotonic() - start
    return Result(budget, idle, peak_mib(pid), seconds, dict(sorted(statuses.items())))


def server_args(budget: str | None) -> list[str]:
    """Besides `--concurrency CONCURRENCY`."""
    return ["--body-limit", BODY_LIMIT, "--memory-budget", budget or "0"]


def run(
    start: Callable[[Sequence[str]], Any], directory: Path, progress: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Both variants; `start(args)` is a context manager yielding a server with `pid`, `url`."""
    jpeg_path, png_path = make_inputs(directory)
    jpeg, png = jpeg_path.read_bytes(), png_path.read_bytes()
    rows = []
    for budget in (BUDGET, None):
        with start(server_args(budget)) as server:
            result = measure(server.pid, server.url, jpeg, png, budget or "none")
        progress(f"  budget {result.budget}: {result.row()}")
        rows.append(result.row())
    return rows
