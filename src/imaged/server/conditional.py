"""ETags, HTTP dates and conditional requests (caching.md; RFC 9110 §8.8, §13.1).

An ETag is a hash, never a decode: the SHA-256 of the source bytes is combined with what
else decides the output — the route, the *effective* options (after validation, clamping and
negotiation, so `format=jpg` and `format=jpeg` agree), and the server's and libvips'
versions, so an upgrade changes every tag. A cheap, pure function lets a revalidation be
answered 304 with no image work.

`If-None-Match` uses the weak comparison (RFC 9110 §8.8.3.2) with lists and `*`; a header
that does not parse is ignored as if it were absent. `If-Modified-Since` counts only without
`If-None-Match` and only when the origin gave a valid `Last-Modified` (§13.1.3).
"""

from __future__ import annotations

import base64
import calendar
import email.utils
import functools
import hashlib
import re
import time
from dataclasses import dataclass

from imaged import __version__
from imaged.engine import vips

# Changing how tags are computed must change every tag: part of the hashed text.
_SCHEME = "imaged-etag-1"
_DIGEST_BYTES = 24  # 32 base64url characters: within the spec's 1-64
# RFC 9110 entity-tag: optional `W/`, then a quoted run of etagc (0x21, 0x23-0x7E, obs-text).
_ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
_LIST_SEPARATOR = re.compile(r"[ \t]*,[ \t]*")
_MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = r"(\d\d):(\d\d):(\d\d)"
# The three HTTP-date forms a recipient must accept (RFC 9110 §5.6.7), in group order
# day, month, year, hour, minute, second (asctime: month, day, time, year).
_IMF_FIXDATE = re.compile(rf"{_WEEKDAY}, (\d\d) {_MONTH} (\d{{4}}) {_TIME} GMT")
_RFC850 = re.compile(rf"{_LONG_WEEKDAY}, (\d\d)-{_MONTH}-(\d\d) {_TIME} GMT")
_ASCTIME = re.compile(rf"{_WEEKDAY} {_MONTH} ([ \d]\d) {_TIME} (\d{{4}})")


def source_digest(body: bytes) -> bytes:
    """The part of every ETag that depends on the source: its bytes, hashed once per fetch
    (hashlib releases the GIL, so large bodies are hashed off the event loop)."""
    return hashlib.sha256(body).digest()


@functools.cache
def _versions() -> bytes:
    return f"{_SCHEME}\n{__version__}\n{vips.vips_version()}\n".encode()


def make_etag(digest: bytes, route: str, options: object) -> str:
    """The strong ETag of a GET response: `"` + 32 characters of `A-Z a-z 0-9 - _` + `"`.

    `options` is the frozen options dataclass; its repr lists every field in declaration
    order, so equal options give equal text."""
    text = f"{route}\n{options!r}".encode()
    return strong_etag(digest + _versions() + text)


def strong_etag(content: bytes) -> str:
    """A strong ETag of `content` (a hash of everything the response depends on)."""
    tag = hashlib.sha256(content).digest()[:_DIGEST_BYTES]
    return '"' + base64.urlsafe_b64encode(tag).decode("ascii") + '"'


# --- HTTP dates ---------------------------------------------------------------------------


def parse_http_date(text: str | None) -> int | None:
    """Seconds since the epoch of an HTTP-date in any of its three forms; None if invalid
    (a two-digit RFC 850 year more than 50 years ahead is taken as the previous century)."""
    if text is None:
        return None
    text = text.strip(" \t")
    if match := _IMF_FIXDATE.fullmatch(text):
        day, month, year, hour, minute, second = match.groups()
    elif match := _RFC850.fullmatch(text):
        day, month, short_year, hour, minute, second = match.groups()
        this_year = time.gmtime().tm_year
        full = this_year - this_year % 100 + int(short_year)
        year = str(full - 100 if full > this_year + 50 else full)
    elif match := _ASCTIME.fullmatch(text):
        month, day, hour, minute, second, year = match.groups()
    else:
        return None
    fields = (int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
    try:
        # timegm does not validate; a round trip through gmtime catches `31 Feb`, `25:00`.
        seconds = calendar.timegm((*fields, 0, 0, 0))
        if time.gmtime(seconds)[:6] != fields:
            return None
    except (OverflowError, ValueError):
        return None
    return seconds


def format_http_date(seconds: int) -> str:
    """The preferred form, IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`."""
    return email.utils.formatdate(seconds, usegmt=True)


def last_modified(origin_value: str | None) -> str | None:
    """The `Last-Modified` to send: the origin's value when it is a valid HTTP-date,
    re-written in the form senders must use (identical when the origin already did)."""
    seconds = parse_http_date(origin_value)
    return None if seconds is None else format_http_date(seconds)


# --- conditional requests ------------------------------------------------------------------

ANY = "*"


def parse_if_none_match(values: list[str]) -> frozenset[str] | str | None:
    """The opaque tags of `If-None-Match` (several header lines are one list), `ANY` for
    `*`, or None when absent or malformed (a malformed header is ignored)."""
    text = ",".join(values).strip(" \t")
    if not values or not text:
        return None
    if text == ANY:
        return ANY
    tags: set[str] = set()
    for item in _LIST_SEPARATOR.split(text):
        if not item:  # `a, , b`: empty list elements are allowed (RFC 9110 §5.6.1)
            continue
        match = _ENTITY_TAG.fullmatch(item)
        if match is None:
            return None
        tags.add(match.group(2))
    return frozenset(tags) if tags else None


@dataclass(frozen=True)
class Conditions:
    """A request's preconditions for a GET: `If-None-Match` (tags, `ANY`, or None) and
    `If-Modified-Since` (epoch seconds, or None)."""

    if_none_match: frozenset[str] | str | None = None
    if_modified_since: int | None = None

    @classmethod
    def parse(cls, if_none_match: list[str], if_modified_since: str | None) -> Conditions:
        """From the request's `If-None-Match` lines and `If-Modified-Since` value."""
        tags = parse_if_none_match(if_none_match)
        since = None if tags is not None else parse_http_date(if_modified_since)
        return cls(tags, since)

    @property
    def present(self) -> bool:
        return self.if_none_match is not None or self.if_modified_since is not None

    def not_modified(self, etag: str, last_modified_value: str | None) -> bool:
        """Whether the answer is 304 for a response with this ETag (quoted, strong) and
        this `Last-Modified` (as sent, or None)."""
        if self.if_none_match is not None:
            return self.if_none_match == ANY or etag.strip('"') in self.if_none_match
        if self.if_modified_since is None:
            return False
        modified = parse_http_date(last_modified_value)
        return modified is not None and modified <= self.if_modified_since
