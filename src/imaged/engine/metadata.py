"""Metadata extraction (metadata.md). Placeholder until the metadata issue lands."""

from __future__ import annotations

import pyvips

from imaged.engine.options import Limits, MetadataOptions, MetadataResult
from imaged.errors import ImageError


def extract(
    data: bytes, input_format: str, options: MetadataOptions, limits: Limits
) -> MetadataResult:
    try:
        image = pyvips.Image.new_from_buffer(data, "")
    except pyvips.Error as exc:
        raise ImageError(str(exc).strip().splitlines()[-1]) from exc
    return MetadataResult({"format": input_format, "width": image.width, "height": image.height})
