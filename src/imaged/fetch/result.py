"""What a fetch yields: the body plus the origin's validators and type — or, for a
revalidation, that the origin's copy has not changed.

`ETag` and `Last-Modified` are what a cache sends back (`If-None-Match`,
`If-Modified-Since`) to revalidate a stored source; `Content-Type` is the origin's claim,
kept as sent (the engine still detects the format from the bytes). All three come from the
final, non-redirect response: a redirect's headers describe the redirect, not the image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FetchResult:
    """An immutable fetched source. A header that is absent (or empty, which no validator
    or media type can be) is None. The body stays out of `repr`: it may be megabytes."""

    body: bytes = field(repr=False)
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None

    @classmethod
    def from_headers(cls, body: bytes, headers: Mapping[str, str]) -> FetchResult:
        """`headers` is the response's case-insensitive header mapping; the first value of
        a repeated header is used."""
        return cls(
            body=body,
            etag=headers.get("ETag") or None,
            last_modified=headers.get("Last-Modified") or None,
            content_type=headers.get("Content-Type") or None,
        )


@dataclass(frozen=True, slots=True)
class NotModified:
    """The origin answered a revalidation (`Fetcher.revalidate`) with 304: the stored copy
    is still current. The validators are the 304's own, None where it sent none (RFC 9110
    §15.4.5: a 304 repeats the ones the 200 would have sent)."""

    etag: str | None = None
    last_modified: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> NotModified:
        return cls(headers.get("ETag") or None, headers.get("Last-Modified") or None)
