"""The engine's input vocabulary: immutable options built once by `imaged.params`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

BOX_BLUR: Literal["box"] = "box"

FITS = ("cover", "contain", "fill", "inside", "outside")
KERNELS = ("nearest", "linear", "cubic", "mitchell", "lanczos2", "lanczos3", "mks2013", "mks2021")
POSITIONS = (
    "top",
    "right top",
    "right",
    "right bottom",
    "bottom",
    "left bottom",
    "left",
    "left top",
    "north",
    "northeast",
    "east",
    "southeast",
    "south",
    "southwest",
    "west",
    "northwest",
    "center",
    "centre",
    "entropy",
    "attention",
)
PRESETS = ("default", "quality", "size")
# Effort ranges per output format; formats not listed have none (transform.md).
EFFORT_RANGES = {
    "avif": (0, 9),
    "heic": (0, 9),
    "gif": (1, 10),
    "png": (1, 10),
    "jxl": (1, 9),
    "webp": (0, 6),
}


@dataclass(frozen=True)
class ParamWarning:
    """One validation finding: shown in X-Imaged-Warnings (lenient) or the strict 400."""

    param: str
    value: str | list[str]
    reason: str


@dataclass(frozen=True)
class Limits:
    pixel_limit: int = 100_000_000
    side_limit: int = 100000
    max_frames: int = 1000  # frames of an animated input (animation.md, "Limits")


@dataclass(frozen=True)
class TransformOptions:
    format: str = "jpeg"
    width: int | None = None
    height: int | None = None
    quality: int | None = None
    effort: int | None = None
    blur: float | Literal["box"] | None = None  # sigma, BOX_BLUR, or no blur
    greyscale: bool = False
    lossless: bool | None = None
    progressive: bool | None = None
    fit: str = "cover"
    kernel: str = "lanczos3"
    position: str = "center"
    preset: str = "default"
    animated: bool = False


@dataclass(frozen=True)
class MetadataOptions:
    exif: bool = False
    stats: bool = False
    thumbhash: bool = False
    blurhash: bool = False

    @property
    def needs_pixels(self) -> bool:
        """Whether a field is computed from decoded pixels (only the header is read else)."""
        return self.stats or self.thumbhash or self.blurhash


@dataclass(frozen=True)
class TransformResult:
    """The encoded output; `width`/`height` are one frame's, `frames` how many it holds, and
    `warnings` what the request could not have (e.g. an animation in a still format)."""

    data: bytes
    format: str
    width: int
    height: int
    frames: int = 1
    warnings: tuple[ParamWarning, ...] = ()


@dataclass(frozen=True)
class MetadataResult:
    fields: dict[str, Any]
    warnings: list[ParamWarning] = field(default_factory=list)
