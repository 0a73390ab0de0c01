"""load → orient → colour → resize/crop/embed → effects → encode (transform.md).

Placeholder until the transform issue lands: a plain thumbnail + save so the HTTP layer
can be exercised end to end.
"""

from __future__ import annotations

import pyvips

from imaged.engine.options import Limits, TransformOptions, TransformResult
from imaged.errors import ImageError


def transform(
    data: bytes, input_format: str, options: TransformOptions, limits: Limits
) -> TransformResult:
    try:
        image = pyvips.Image.new_from_buffer(data, "", access="sequential")
        out = image.write_to_buffer(f".{options.format}")
    except pyvips.Error as exc:
        raise ImageError(str(exc).strip().splitlines()[-1]) from exc
    return TransformResult(out, options.format, image.width, image.height)
