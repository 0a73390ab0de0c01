"""Signed URLs (access.md): the public client API, also what the server verifies with.

A signed URL is a path and query whose **last** parameter is `sig`, the base64url (no
padding) HMAC-SHA256 of everything before it: the raw path, then `?` and the raw query up
to the `&` before `sig=` when anything precedes it. Nothing is decoded, re-encoded or
re-ordered, so the bytes a client signs are the bytes the server checks; any HMAC-SHA256
implementation can produce them (docs/security.md has the recipe and test vectors).

    >>> from imaged.signing import sign, verify
    >>> key = bytes.fromhex("00" * 32)  # use `secrets.token_hex(32)`, not this one
    >>> signed = sign("/transform?width=300", key, expires=1767225600)
    >>> signed
    '/transform?width=300&expires=1767225600&sig=FXOjFVDBGX3xkGqnUGhXoVpkUdDkSIvk_18aPxkCNMA'
    >>> verify(signed, key, now=1767225600)
    1767225600

This module has no dependency beyond the standard library, so clients can vendor it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from urllib.parse import unquote_plus

__all__ = [
    "EXPIRED",
    "INVALID_EXPIRES",
    "INVALID_KEY",
    "INVALID_SIGNATURE",
    "MIN_KEY_BYTES",
    "MISSING_SIGNATURE",
    "SignatureError",
    "equals_any",
    "parse_expires",
    "parse_key",
    "sign",
    "signature",
    "verify",
]

# The 403 bodies of access.md, in the order they are checked.
MISSING_SIGNATURE = "missing signature"
INVALID_SIGNATURE = "invalid signature"
INVALID_EXPIRES = "invalid expires"
EXPIRED = "signature expired"

INVALID_KEY = "Invalid signing key"
ALREADY_SIGNED = "already signed"
ALREADY_EXPIRES = "already has an expires parameter"
NOT_A_PATH = "the path and query must start with '/' (sign the path, not the whole URL)"
MIN_KEY_BYTES = 32
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_EXPIRES = re.compile(r"[0-9]{1,12}")


class SignatureError(ValueError):
    """A signed path that does not verify; `str()` is the server's 403 body."""


def parse_key(text: str) -> bytes:
    """One key: hex digits (even length) of at least `MIN_KEY_BYTES` bytes; ValueError
    `Invalid signing key` (never the key itself) otherwise."""
    if not _HEX.fullmatch(text) or len(text) < 2 * MIN_KEY_BYTES:
        raise ValueError(INVALID_KEY)
    return bytes.fromhex(text)


def parse_expires(raw: str) -> int:
    """An `expires` value as the server accepts it: 1–12 ASCII digits, nothing else (no
    sign, space, fraction or exponent); SignatureError `invalid expires` otherwise."""
    if not _EXPIRES.fullmatch(raw):
        raise SignatureError(INVALID_EXPIRES)
    return int(raw)


def signature(message: str, key: bytes) -> str:
    """base64url without padding of HMAC-SHA256(key, message): 43 characters."""
    digest = hmac.new(key, message.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _names(query: str) -> list[str]:
    """The decoded names of the raw query's parameters (form decoding, as the server's
    query parser reads them)."""
    return [unquote_plus(pair.split("=", 1)[0]) for pair in query.split("&") if pair]


def _append(path_and_query: str, pair: str) -> str:
    return f"{path_and_query}{'&' if '?' in path_and_query else '?'}{pair}"


def sign(path_and_query: str, key: bytes, expires: int | None = None) -> str:
    """The signed path and query: `expires=<expires>` appended first (so it is signed) when
    given, then `sig=…` as the last parameter. The input is taken as is: percent-encode
    the values before signing, exactly as they will be sent. ValueError for a path that
    does not start with `/`, one already carrying `sig` (or `expires` when one is given)."""
    if not path_and_query.startswith("/"):
        raise ValueError(NOT_A_PATH)
    _, _, query = path_and_query.partition("?")
    names = _names(query)
    if "sig" in names:
        raise ValueError(ALREADY_SIGNED)
    if expires is not None:
        if "expires" in names:
            raise ValueError(ALREADY_EXPIRES)
        parse_expires(str(expires))
        path_and_query = _append(path_and_query, f"expires={expires}")
    return _append(path_and_query, "sig=" + signature(path_and_query, key))


def split_signature(target: str) -> tuple[str, str]:
    """(signed message, sig value) of a path and query; SignatureError `missing signature`
    unless `sig` is the last parameter of the raw query."""
    path, question, query = target.partition("?")
    if not question:
        raise SignatureError(MISSING_SIGNATURE)
    head, amp, last = query.rpartition("&")
    name, _, value = last.partition("=")
    if name != "sig":
        raise SignatureError(MISSING_SIGNATURE)
    message = f"{path}?{head}" if amp else path
    return message, value


def equals_any(offered: str, candidates: Iterable[str]) -> bool:
    """Whether `offered` is one of `candidates`, compared in constant time against every
    one of them: the time taken says nothing about which (or how much of one) matched."""
    given = offered.encode("utf-8", "surrogateescape")
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(candidate.encode("utf-8", "surrogateescape"), given)
    return found


def _expires(query: str) -> int | None:
    """The raw (undecoded) `expires` value as an integer, None when absent;
    SignatureError `invalid expires` unless it is exactly one value of 1–12 ASCII digits."""
    values = [
        pair.partition("=")[2]
        for pair in query.split("&")
        if pair and unquote_plus(pair.split("=", 1)[0]) == "expires"
    ]
    if not values:
        return None
    if len(values) > 1:
        raise SignatureError(INVALID_EXPIRES)
    return parse_expires(values[0])


def verify(
    path_and_query: str, keys: bytes | Iterable[bytes], now: float | None = None
) -> int | None:
    """Check a signed path and query against one key or several (rotation): returns its
    `expires` (None when it has none), or raises SignatureError with the server's 403 text:
    `missing signature`, `invalid signature`, `invalid expires` or `signature expired`
    (in that order). `now` is the Unix time to check expiry against (default: the clock)."""
    message, given = split_signature(path_and_query)
    expected = (signature(message, key) for key in ([keys] if isinstance(keys, bytes) else keys))
    if not equals_any(given, expected):
        raise SignatureError(INVALID_SIGNATURE)
    expires = _expires(message.partition("?")[2])
    seconds = int(time.time() if now is None else now)  # whole seconds, as `expires` is
    if expires is not None and seconds > expires:
        raise SignatureError(EXPIRED)
    return expires
