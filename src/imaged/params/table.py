"""The one declarative table of request parameters.

Every parameter a client can send is one `Param` here: its name, kind (how its value is
read in query and typed mode, `params/kinds.py`), bounds or choices, default, which routes
accept it, whether pipeline tasks accept it, and a one-line description. The lenient query
parsers, strict mode, the typed pipeline validator, the known-parameter lists and the API
description all read this table, so adding a parameter is one entry here plus its engine
code.

Order matters: query-mode warnings come in the order of `TRANSFORM`/`METADATA` (after the
unknown-parameter warnings), and typed mode validates in the same order (transform.md,
pipeline.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from imaged.engine.formats import FORMATS
from imaged.engine.options import (
    EFFORT_RANGES,
    FITS,
    KERNELS,
    POSITIONS,
    PRESETS,
    MetadataOptions,
    TransformOptions,
)
from imaged.params.kinds import (
    ALL_ROUTES,
    BLUR,
    BOOLEAN,
    DIMENSION_LIMIT,
    EFFORT,
    ENUM,
    FORMAT,
    INTEGER,
    METADATA_ROUTE,
    TEXT,
    TRANSFORM_ROUTE,
    Context,
    Param,
    Route,
)

_T = TransformOptions()
_M = MetadataOptions()
_TRANSFORM = frozenset({TRANSFORM_ROUTE})
_METADATA = frozenset({METADATA_ROUTE})


def _metadata_flag(name: str, description: str) -> Param:
    return Param(name, BOOLEAN, description, _METADATA, default=getattr(_M, name))


TRANSFORM: tuple[Param, ...] = (
    Param("format", FORMAT, "output format (query: a comma list is negotiated against Accept)",
          _TRANSFORM, default=_T.format, choices=FORMATS),
    Param("width", INTEGER, "output width in pixels (never enlarges)", _TRANSFORM,
          minimum=1, maximum=DIMENSION_LIMIT),
    Param("height", INTEGER, "output height in pixels (never enlarges)", _TRANSFORM,
          minimum=1, maximum=DIMENSION_LIMIT),
    Param("quality", INTEGER, "encoder quality (default: the preset's value)", _TRANSFORM,
          minimum=1, maximum=100),
    Param("blur", BLUR, "true for a 3×3 box blur, or the Gaussian sigma", _TRANSFORM,
          minimum=0.3, maximum=1000.0),
    Param("greyscale", BOOLEAN, "convert to greyscale", _TRANSFORM, default=_T.greyscale),
    Param("lossless", BOOLEAN, "lossless encoding (webp, avif, heic, jxl)", _TRANSFORM),
    Param("progressive", BOOLEAN, "progressive JPEG / interlaced PNG (default: the preset's)",
          _TRANSFORM),
    Param("effort", EFFORT, "encoder effort; the range depends on the output format",
          _TRANSFORM, ranges=MappingProxyType(EFFORT_RANGES)),
    Param("fit", ENUM, "how width and height are satisfied", _TRANSFORM, default=_T.fit,
          choices=FITS),
    Param("kernel", ENUM, "resampling kernel", _TRANSFORM, default=_T.kernel, choices=KERNELS),
    Param("position", ENUM, "crop and padding anchor, or a smart-crop strategy", _TRANSFORM,
          default=_T.position, choices=POSITIONS),
    Param("preset", ENUM, "encoder tuning", _TRANSFORM, default=_T.preset, choices=PRESETS),
    Param("animated", BOOLEAN, "keep every frame of an animated input (gif and webp outputs)",
          _TRANSFORM, default=_T.animated),
)  # fmt: skip

METADATA: tuple[Param, ...] = (
    _metadata_flag("exif", "include the EXIF fields"),
    _metadata_flag("stats", "include pixel statistics"),
    _metadata_flag("thumbhash", "include the ThumbHash placeholder"),
    _metadata_flag("blurhash", "include the BlurHash placeholder (4×3 components)"),
)

# Metadata flags have no bounds or format dependence.
METADATA_CONTEXT = Context(dimension_limit=0)

# Read by the HTTP layer on every route; known everywhere, never warned.
CONTROL: tuple[Param, ...] = (
    Param("url", TEXT, "source image URL (GET routes)", ALL_ROUTES, option=False,
          get_only=True, required=True, example="https://example.com/photo.jpg"),
    Param("strict", BOOLEAN, "turn every warning into a 400", ALL_ROUTES, option=False),
    # Signed URLs (access.md): checked by server/access.py before any parsing, and known
    # whether or not signing is configured, so clients can sign before it is enforced.
    Param("expires", TEXT, "signed URLs: Unix time after which the URL is refused",
          ALL_ROUTES, option=False),
    Param("sig", TEXT, "signed URLs: base64url HMAC-SHA256 of the path and query before it "
          "(the last parameter)", ALL_ROUTES, option=False),
)  # fmt: skip

PARAMS: tuple[Param, ...] = TRANSFORM + METADATA + CONTROL
BY_NAME: Mapping[str, Param] = MappingProxyType({p.name: p for p in PARAMS})


FORMAT_PARAM = BY_NAME["format"]


def known(route: Route) -> frozenset[str]:
    """Names that never draw an `unknown parameter` warning on `route`."""
    return frozenset(p.name for p in PARAMS if route in p.routes)


def options_of(route: Route) -> tuple[Param, ...]:
    """The option parameters of `route`, in warning/validation order."""
    return tuple(p for p in PARAMS if route in p.routes and p.option)


# Both modes read `format` first: query mode negotiates it against `Accept`, and effort's
# range depends on the result; the other transform options follow in table order.
AFTER_FORMAT: tuple[Param, ...] = tuple(
    p for p in options_of(TRANSFORM_ROUTE) if p is not FORMAT_PARAM
)
