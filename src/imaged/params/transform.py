"""Transform query parameters → TransformOptions, warnings and format negotiation.

Lenient semantics of transform.md ("Parameters (query-string mode)"): invalid values are
ignored or clamped and reported as warnings in the table's row order, after the
unknown-parameter warnings; the handler turns them into the strict 400 when asked to.
Output-format negotiation against `Accept` follows http-api.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from imaged.engine.formats import FORMATS, MIME_TYPES, VALID_FORMATS_TEXT, normalise_format
from imaged.engine.options import (
    BOX_BLUR,
    EFFORT_RANGES,
    FITS,
    KERNELS,
    POSITIONS,
    PRESETS,
    ParamWarning,
    TransformOptions,
)
from imaged.params.query import (
    BOOL_REASON,
    QueryDict,
    QueryValue,
    parse_boolean,
    parse_decimal,
    parse_integer,
    unknown_parameters,
    value_text,
)

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

FORMAT_REASON = f"unknown format, valid: {VALID_FORMATS_TEXT}"
INTEGER_REASON = "must be a positive integer"
BLUR_REASON = "must be a boolean or number between 0.3 and 1000"
BLUR_MIN = 0.3
BLUR_MAX = 1000.0
QUALITY_MAX = 100


@dataclass(frozen=True)
class ParsedTransform:
    options: TransformOptions
    warnings: list[ParamWarning]
    negotiated: bool  # the `format` list had two or more tokens → `Vary: Accept`


# --- reason texts shared with typed (pipeline) validation ------------------------------


def enum_reason(value: str, valid: tuple[str, ...]) -> str:
    return f"unknown value '{value}', valid: {', '.join(valid)}"


def _number_text(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def range_reason(number: float, lo: float, hi: float, suffix: str = "") -> str | None:
    """The clamp text for `number` outside lo…hi (None when inside)."""
    if number < lo:
        return f"must be at least {_number_text(lo)}{suffix}"
    if number > hi:
        return f"must be at most {_number_text(hi)}{suffix}"
    return None


def effort_suffix(fmt: str) -> str:
    return f" for {fmt}"


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


# --- per-parameter parsing -------------------------------------------------------------


class _Collector:
    """Reads one parameter at a time, appending its warnings in call order."""

    def __init__(self, values: QueryDict, warnings: list[ParamWarning]) -> None:
        self.values = values
        self.warnings = warnings

    def warn(self, name: str, reason: str) -> None:
        self.warnings.append(ParamWarning(name, self.values[name], reason))

    def integer(self, name: str) -> int | None:
        """Step 1–2 of transform.md's integer rules: empty → unset, invalid → warning."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        number = parse_integer(value)
        if number is None:
            self.warn(name, INTEGER_REASON)
        return number

    def clamped(self, name: str, lo: int, hi: int, suffix: str = "") -> int | None:
        number = self.integer(name)
        if number is None:
            return None
        reason = range_reason(number, lo, hi, suffix)
        if reason is None:
            return number
        self.warn(name, reason)
        return min(max(number, lo), hi)

    def boolean(self, name: str) -> bool | None:
        value = self.values.get(name)
        if value is None:
            return None
        flag, valid = parse_boolean(value)
        if not valid:
            self.warn(name, BOOL_REASON)
        return flag

    def enum(self, name: str, valid: tuple[str, ...]) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str) and value in valid:
            return value
        self.warn(name, enum_reason(value_text(value), valid))
        return None

    def blur(self) -> float | Literal["box"] | None:
        value = self.values.get("blur")
        if value is None or value in ("false", "0"):
            return None
        if value in ("", "true", "1"):
            return BOX_BLUR
        number = parse_decimal(value) if isinstance(value, str) else None
        if number is None or not math.isfinite(number):
            self.warn("blur", BLUR_REASON)
            return None
        reason = range_reason(number, BLUR_MIN, BLUR_MAX)
        if reason is not None:
            self.warn("blur", reason)
            return min(max(number, BLUR_MIN), BLUR_MAX)
        return number


def _format_value(value: QueryValue | None) -> str:
    return "" if value is None else value_text(value)


def parse_transform_query(values: QueryDict, accept: str, dimension_limit: int) -> ParsedTransform:
    """Validate every transform parameter (lenient), negotiating the output format."""
    warnings = unknown_parameters(values, KNOWN)
    fmt, format_warnings, negotiated = negotiate_format(_format_value(values.get("format")), accept)
    warnings.extend(format_warnings)
    read = _Collector(values, warnings)
    width = read.clamped("width", 1, dimension_limit)
    height = read.clamped("height", 1, dimension_limit)
    quality = read.clamped("quality", 1, QUALITY_MAX)
    blur = read.blur()
    greyscale = read.boolean("greyscale")
    lossless = read.boolean("lossless")
    progressive = read.boolean("progressive")
    effort_range = EFFORT_RANGES.get(fmt)
    if effort_range is None:
        read.integer("effort")  # still validated, then dropped without a warning
        effort = None
    else:
        effort = read.clamped("effort", *effort_range, effort_suffix(fmt))
    fit = read.enum("fit", FITS)
    kernel = read.enum("kernel", KERNELS)
    position = read.enum("position", POSITIONS)
    preset = read.enum("preset", PRESETS)
    options = TransformOptions(
        format=fmt,
        width=width,
        height=height,
        quality=quality,
        effort=effort,
        blur=blur,
        greyscale=bool(greyscale),
        lossless=lossless,
        progressive=progressive,
        fit=fit or "cover",
        kernel=kernel or "lanczos3",
        position=position or "center",
        preset=preset or "default",
    )
    return ParsedTransform(options, warnings, negotiated)
