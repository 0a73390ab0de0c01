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


# A str as a JSON string literal, raw UTF-8 (only `"`, `\\` and control characters escaped).
_string = json.JSONEncoder(ensure_ascii=False).encode


def _encode(value: Any, out: list[str]) -> None:
    # Our own small encoder: the standard one cannot format floats our way (the C encoder
    # ignores any override) and its pure-Python twin is private.
    if isinstance(value, str):
        out.append(_string(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(js_number(value))
    elif isinstance(value, dict):
        out.append("{")
        # Keys become str first, so keys that print alike (1 and "1") are one member.
        for i, (key, item) in enumerate({str(k): v for k, v in value.items()}.items()):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """Compact JSON of dicts (keys as `str(key)`), lists, tuples, str, int, float, bool and
    None; floats as JavaScript prints them."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


# Lone surrogates come from `\ud800`-style escapes in client JSON; a Python str holding one
# cannot be encoded as UTF-8.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_surrogates(text: str) -> str:
    """Plain text (an error body): each lone surrogate becomes U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def escape_surrogates(json_text: str) -> str:
    """JSON text: each lone surrogate becomes its `\\uXXXX` escape, as JSON.stringify does."""
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)
