"""JSON with the number semantics of the spec (README, Cross-cutting conventions).

Compact, raw UTF-8, integral floats printed as integers, `-0` as `0`, non-finite as
`null`, other floats in JavaScript's shortest round-trip form; and the spec's
round-k (epsilon, then half toward +infinity), which Python's `round()` is not.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_EPSILON = 2.0**-52


def round_k(value: float, k: int) -> float:
    scale = 10.0**k
    return math.floor((value + _EPSILON) * scale + 0.5) / scale


def js_number(value: float) -> str:
    """Format a float like JavaScript's Number.prototype.toString."""
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    if not exponent:
        return text
    exp = int(exponent)
    if -7 < exp < 21:
        # JavaScript prints these positionally; Python used an exponent.
        digits = mantissa.replace("-", "").replace(".", "")
        sign = "-" if value < 0 else ""
        point = len(mantissa.replace("-", "").split(".")[0]) + exp
        if point <= 0:
            return sign + "0." + "0" * (-point) + digits.rstrip("0")
        digits = digits.ljust(point, "0")
        whole, frac = digits[:point], digits[point:].rstrip("0")
        return sign + whole + ("." + frac if frac else "")
    return f"{mantissa}e{'+' if exp > 0 else '-'}{abs(exp)}"


class _Raw(float):
    """A float whose JSON text is already decided."""

    text: str

    def __repr__(self) -> str:
        return self.text


def _prepare(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        raw = _Raw(value)
        raw.text = js_number(value)
        return raw
    if isinstance(value, dict):
        return {str(k): _prepare(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_prepare(v) for v in value]
    return value


def _floatstr(o: float, *_: Any) -> str:
    return o.text if isinstance(o, _Raw) else js_number(o)


def dumps(value: Any) -> str:
    # The pure-Python iterencode lets us format floats ourselves (the C one cannot).
    prepared = _prepare(value)
    chunks = json.encoder._make_iterencode(  # type: ignore[attr-defined]
        {},
        json.JSONEncoder().default,
        json.encoder.py_encode_basestring,
        None,
        _floatstr,
        ":",
        ",",
        False,
        False,
        True,
    )(prepared, 0)
    return "".join(chunks)


def loads_strict(text: str | bytes) -> Any:
    """RFC 8259 JSON: no NaN/Infinity literals, no BOM; raises ValueError."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if text.startswith("\ufeff"):
        raise ValueError("BOM")

    def reject(name: str) -> Any:
        raise ValueError(f"invalid literal {name}")

    return json.loads(text, parse_constant=reject)


# Lone surrogates come from `\ud800`-style escapes in client JSON; a Python str holding one
# cannot be encoded as UTF-8.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_surrogates(text: str) -> str:
    """Plain text (an error body): each lone surrogate becomes U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def escape_surrogates(json_text: str) -> str:
    """JSON text: each lone surrogate becomes its `\\uXXXX` escape, as JSON.stringify does."""
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)
