"""WHATWG URL parsing for fetch targets (fetch-and-security.md, per-hop steps 1-2).

The WHATWG parser (ada, the one Node.js uses) canonicalises hosts, so every later step —
allow-list, SSRF check, connection — sees one spelling: `2130706433`, `0x7f000001`, `127.1`
and `0177.0.0.1` are all `127.0.0.1`; `[::ffff:127.0.0.1]` is `[::ffff:7f00:1]`; names are
lowercase IDNA (punycode). Python's `urllib.parse` does none of this.
"""

from __future__ import annotations

from dataclasses import dataclass

from ada_url import URL, join_url

from imaged.errors import FetchError, FetchHttpError

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Target:
    """One hop's URL after validation."""

    href: str  # canonical serialisation, without the fragment: what is requested
    scheme: str  # "http" or "https"
    hostname: str  # canonical host name without the port (IPv6 in brackets)
    port: int  # the explicit port, else the scheme default


def parse_target(raw: str) -> Target:
    """Steps 1-2 of per-hop validation: absolute URL (400 `fetch: invalid URL`), then the
    scheme (400 `fetch: only http and https URLs are supported`)."""
    if not isinstance(raw, str):  # pipelines pass JSON values through
        raise FetchError("invalid URL", 400)
    try:
        url = URL(raw)
    except (ValueError, UnicodeError) as exc:
        raise FetchError("invalid URL", 400) from exc
    scheme = url.protocol.removesuffix(":")
    if scheme not in _DEFAULT_PORTS:
        raise FetchError("only http and https URLs are supported", 400)
    href = url.href.split("#", 1)[0]
    port = int(url.port) if url.port else _DEFAULT_PORTS[scheme]
    return Target(href=href, scheme=scheme, hostname=url.hostname, port=port)


def redirect_url(location: str, base: str) -> str:
    """`Location` resolved against the current URL; 502 when that gives no URL.

    aiohttp decodes header bytes as UTF-8 with surrogate escapes; a value that is not UTF-8
    is read as Latin-1 instead (as Node's fetch reads every header), so `/im\xe9` leads to
    `/im%C3%A9` rather than failing."""
    try:
        location.encode("utf-8")
    except UnicodeEncodeError:
        location = location.encode("utf-8", "surrogateescape").decode("latin-1")
    try:
        return join_url(base, location)
    except (ValueError, UnicodeError) as exc:
        raise FetchHttpError("invalid redirect location", 502) from exc
