"""The seven workloads of issue 7, each as imaged, thumbor and in-process pyvips see it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The corpus lives beside the checkout (`../shared/corpus`); BENCH_CORPUS overrides it.
CORPUS = Path(os.environ.get("BENCH_CORPUS", ROOT.parent / "shared" / "corpus"))


@dataclass(frozen=True)
class Workload:
    """One benchmark case.

    `kind` is "transform" (resize to `width`, encode as `fmt` at `quality`) or "metadata"
    (exif + stats + thumbhash). `thumbor` is the thumbor URL path, or None when thumbor is
    not a peer for this case (W5: no such endpoint; W7: its CMYK output is wrong).
    """

    key: str
    title: str
    file: str
    kind: str
    width: int | None = None
    fmt: str | None = None
    quality: int | None = None
    thumbor: str | None = None

    @property
    def path(self) -> Path:
        return CORPUS / self.file

    @property
    def imaged_target(self) -> str:
        """Path and query of the PUT request to imaged."""
        if self.kind == "metadata":
            return "/metadata?exif=true&stats=true&thumbhash=true"
        query = f"width={self.width}&format={self.fmt}"
        if self.quality is not None:
            query += f"&quality={self.quality}"
        return f"/transform?{query}"

    @property
    def thumbor_target(self) -> str | None:
        return None if self.thumbor is None else f"/unsafe/{self.thumbor}"


def _thumbor(width: int, fmt: str, quality: int | None, file: str) -> str:
    filters = f"format({fmt})" + (f":quality({quality})" if quality is not None else "")
    return f"{width}x0/filters:{filters}/{file}"


_OLYMPUS = "jpeg-12mp-olympus-ep3.jpg"
_XIAOMI = "jpeg-12mp-xiaomi-mi9t-orient6.jpg"
_PNG = "png-rgba-2048x1536.png"
_IPHONE = "jpeg-8mp-iphone6-gps.jpg"
_CMYK = "jpeg-cmyk-swop-canon300d.jpg"

WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "W1",
        "12 MP JPEG → 400 WebP q75",
        _OLYMPUS,
        "transform",
        400,
        "webp",
        75,
        _thumbor(400, "webp", 75, _OLYMPUS),
    ),
    Workload(
        "W2",
        "12 MP JPEG → 400 JPEG q80",
        _OLYMPUS,
        "transform",
        400,
        "jpeg",
        80,
        _thumbor(400, "jpeg", 80, _OLYMPUS),
    ),
    Workload(
        "W3",
        "2048×1536 RGBA PNG → 300 PNG",
        _PNG,
        "transform",
        300,
        "png",
        None,
        _thumbor(300, "png", None, _PNG),
    ),
    Workload(
        "W4",
        "12 MP JPEG → 400 AVIF q45",
        _OLYMPUS,
        "transform",
        400,
        "avif",
        45,
        _thumbor(400, "avif", 45, _OLYMPUS),
    ),
    Workload("W5", "8 MP JPEG → metadata exif+stats+thumbhash", _IPHONE, "metadata"),
    Workload(
        "W6",
        "12 MP JPEG orientation 6 → 400 WebP",
        _XIAOMI,
        "transform",
        400,
        "webp",
        None,
        _thumbor(400, "webp", None, _XIAOMI),
    ),
    Workload("W7", "CMYK JPEG → 300 JPEG q80", _CMYK, "transform", 300, "jpeg", 80, None),
)
BY_KEY = {w.key: w for w in WORKLOADS}


def select(keys: str) -> list[Workload]:
    """`"W1,W5"` → those workloads (case-insensitive); `"all"` → every one."""
    if keys.strip().lower() == "all":
        return list(WORKLOADS)
    chosen: list[Workload] = []
    for raw in keys.split(","):
        key = raw.strip().upper()
        if key not in BY_KEY:
            raise ValueError(f"unknown workload {raw!r} (known: {', '.join(BY_KEY)})")
        chosen.append(BY_KEY[key])
    return chosen
