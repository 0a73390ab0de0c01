"""Transform query parameters → TransformOptions, warnings and format negotiation.

Placeholder until the transform issue lands: only `format` (single token) is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from imaged.engine.formats import normalise_format
from imaged.engine.options import ParamWarning, TransformOptions
from imaged.params.query import QueryDict, unknown_parameters, value_text

KNOWN = frozenset(
    {
        "url",
        "format",
        "width",
        "height",
        "quality",
        "effort",
        "blur",
        "greyscale",
        "lossless",
        "progressive",
        "fit",
        "kernel",
        "position",
        "preset",
        "strict",
    }
)


@dataclass(frozen=True)
class ParsedTransform:
    options: TransformOptions
    warnings: list[ParamWarning]
    negotiated: bool  # the `format` list had two or more tokens → `Vary: Accept`


def parse_transform_query(values: QueryDict, accept: str, dimension_limit: int) -> ParsedTransform:
    warnings = unknown_parameters(values, KNOWN)
    fmt = normalise_format(value_text(values.get("format", "")).strip()) or "jpeg"
    return ParsedTransform(TransformOptions(format=fmt), warnings, negotiated=False)
