"""Transform query parameters → TransformOptions, warnings and format negotiation.

Lenient semantics of transform.md ("Parameters (query-string mode)"): invalid values are
ignored or clamped and reported as warnings in the table's row order, after the
unknown-parameter warnings; the handler turns them into the strict 400 when asked to.
Output-format negotiation against `Accept` follows http-api.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from imaged.engine.formats import FORMATS, MIME_TYPES, normalise_format
from imaged.engine.options import ParamWarning, TransformOptions
from imaged.params.kinds import FORMAT_REASON, TRANSFORM_ROUTE, Context, read_query
from imaged.params.query import (
    QueryDict,
    QueryValue,
    parse_decimal,
    unknown_parameters,
    value_text,
)
from imaged.params.table import AFTER_FORMAT, known


@dataclass(frozen=True)
class ParsedTransform:
    options: TransformOptions
    warnings: list[ParamWarning]
    negotiated: bool  # the `format` list had two or more tokens → `Vary: Accept`


# --- negotiation (http-api.md "Output format negotiation") -----------------------------


def parse_accept(accept: str) -> tuple[frozenset[str], frozenset[str]]:
    """(media types accepted with q > 0, media types refused with q = 0)."""
    accepted: set[str] = set()
    refused: set[str] = set()
    for entry in accept.split(","):
        media, *params = entry.split(";")
        media = media.strip().lower()
        if not media:
            continue
        q: float = 1.0
        for param in params:
            name, _, text = param.partition("=")
            if name.strip().lower() == "q":
                number = parse_decimal(text.strip())
                q = 1.0 if number is None or math.isnan(number) else number
        if q == 0:
            refused.add(media)
        elif q > 0:
            accepted.add(media)
    return frozenset(accepted), frozenset(refused)


def negotiate_format(raw: str, accept: str) -> tuple[str, list[ParamWarning], bool]:
    """(format, warnings, negotiated) for the raw `format` value and the `Accept` header."""
    tokens = [normalise_format(token.strip()) for token in raw.split(",")]
    tokens = [token for token in tokens if token]
    if not tokens:
        return "jpeg", [], False
    if len(tokens) == 1:
        token = tokens[0]
        if token in FORMATS:
            return token, [], False
        return "jpeg", [ParamWarning("format", token, FORMAT_REASON)], False
    accepted, refused = parse_accept(accept)
    invalid: list[str] = []
    for token in tokens:
        if token not in FORMATS:
            invalid.append(token)
            continue
        mime = MIME_TYPES[token]
        if mime in accepted and mime not in refused:
            return token, _format_warnings(invalid), True
    last = tokens[-1]
    if last not in FORMATS:
        return "jpeg", _format_warnings([last]), True
    return last, _format_warnings(invalid), True


def _format_warnings(tokens: list[str]) -> list[ParamWarning]:
    return [ParamWarning("format", token, FORMAT_REASON) for token in tokens]


# --- the parameters ----------------------------------------------------------------------


def _format_value(value: QueryValue | None) -> str:
    return "" if value is None else value_text(value)


def parse_transform_query(values: QueryDict, accept: str, dimension_limit: int) -> ParsedTransform:
    """Validate every transform parameter (lenient), negotiating the output format."""
    warnings = unknown_parameters(values, known(TRANSFORM_ROUTE))
    fmt, format_warnings, negotiated = negotiate_format(_format_value(values.get("format")), accept)
    warnings.extend(format_warnings)
    ctx = Context(dimension_limit, fmt)
    fields = read_query(values, AFTER_FORMAT, ctx, warnings)
    return ParsedTransform(TransformOptions(format=fmt, **fields), warnings, negotiated)
