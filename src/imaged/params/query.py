"""Query-string rules shared by every route (http-api.md, README conventions).

Lenient/strict modes, decimal-number and boolean parsing, the warnings header with its
sanitising, and the strict-mode error bodies.
"""

from __future__ import annotations

import math
import re
from urllib.parse import parse_qsl

from imaged.engine.options import ParamWarning
from imaged.errors import BadRequest, ImagedError
from imaged.jsonfmt import dumps

QueryValue = str | list[str]
QueryDict = dict[str, QueryValue]

_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_ASCII_WS = " \t\n\v\f\r"
MAX_PARAMS = 100
# Well below the request-line limit (server/listen.py), so a client sees this clear 414.
MAX_QUERY_LENGTH = 8000


def parse_query_string(raw: str) -> QueryDict:
    """form-urlencoded pairs; a repeated key becomes a list (in order of first appearance).

    Hostile queries are refused before any validation: more than `MAX_QUERY_LENGTH`
    characters (still percent-encoded) → 414, more than `MAX_PARAMS` pairs → 400.
    """
    if len(raw) > MAX_QUERY_LENGTH:
        raise ImagedError(f"query string exceeds the limit of {MAX_QUERY_LENGTH} characters", 414)
    values: QueryDict = {}
    pairs = parse_qsl(raw, keep_blank_values=True, encoding="utf-8", errors="replace")
    if len(pairs) > MAX_PARAMS:
        raise BadRequest(f"too many query parameters (limit {MAX_PARAMS})")
    for key, value in pairs:
        if key in values:
            existing = values[key]
            values[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            values[key] = value
    return values


def value_text(value: QueryValue) -> str:
    """How a value is echoed in messages: list items joined with `,`."""
    return ",".join(value) if isinstance(value, list) else value


def parse_decimal(text: str) -> float | None:
    """The spec's decimal-number parsing; None for "not a number" (may return ±inf)."""
    stripped = text.strip(_ASCII_WS)
    if not _DECIMAL.fullmatch(stripped):
        return None
    return float(stripped)


def parse_integer(value: QueryValue) -> int | None:
    """A finite integer in 0 … 2^32-1, else None (`must be a positive integer`)."""
    if isinstance(value, list):
        return None
    number = parse_decimal(value)
    if number is None or not math.isfinite(number) or not number.is_integer():
        return None
    if not 0 <= number <= 4294967295:
        return None
    return int(number)


def parse_boolean(value: QueryValue) -> tuple[bool, bool]:
    """(value, valid). `""`/`true`/`1` → True, `false`/`0` → False, else True and invalid."""
    if value in ("", "true", "1"):
        return True, True
    if value in ("false", "0"):
        return False, True
    return True, False


def is_strict(values: QueryDict) -> bool:
    if "strict" not in values:
        return False
    return values["strict"] not in ("false", "0")


def unknown_parameters(values: QueryDict, known: frozenset[str]) -> list[ParamWarning]:
    return [
        ParamWarning(key, value, "unknown parameter")
        for key, value in values.items()
        if key not in known
    ]


def sanitise_header(text: str) -> str:
    """Percent-encode every character outside printable ASCII (U+0020–U+007E)."""
    return "".join(
        c if " " <= c <= "~" else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
        for c in text
    )


def warnings_header(warnings: list[ParamWarning]) -> str:
    return sanitise_header("; ".join(f"{w.param}: {w.reason}" for w in warnings))


def strict_text(warnings: list[ParamWarning]) -> str:
    items = [f'{w.param}: {w.reason} (got "{value_text(w.value)}")' for w in warnings]
    return "Invalid parameters:\n- " + "\n- ".join(items)


def strict_json(warnings: list[ParamWarning]) -> str:
    details = [{"param": w.param, "value": w.value, "reason": w.reason} for w in warnings]
    return dumps({"error": "Invalid parameters", "details": details})
