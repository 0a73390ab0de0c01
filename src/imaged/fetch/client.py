"""The outbound fetch: per-hop validation, manual redirects, status mapping, timeouts.

Every hop (the initial URL and each redirect target) is parsed and canonicalised, its scheme
checked, its host matched against `--allowed-hosts` and — with SSRF protection — resolved once
and checked, with the connection pinned to the checked addresses (see `pinning`). Requests
carry only our own headers; proxies and `.netrc` from the environment are ignored and no
cookies are kept between requests.

The result of the final (non-redirect) response carries its validators (`FetchResult`).
Each request carries the id of the request it serves (`X-Request-Id`, from the log context),
so the origin's logs join up with ours; an optional `FetchObserver` (the server's metrics)
hears how each fetch ended and how long it took.

`revalidate` is the same fetch with the stored validators as `If-None-Match` /
`If-Modified-Since` on every hop — so every per-hop check, the pinning and every error text
hold for it unchanged — where a 304 means `NotModified`. Only a revalidation sends
conditional headers, and only for it is a 304 anything but `received status 304`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from yarl import URL

from imaged import __version__
from imaged.errors import FetchBlocked, FetchError, FetchHttpError, FetchTimeout
from imaged.fetch.body import read_body
from imaged.fetch.hosts import AllowList, compile_allowed_hosts, host_allowed
from imaged.fetch.pinning import LookupResolver, PinnedResolver, pinned
from imaged.fetch.result import FetchResult, NotModified
from imaged.fetch.ssrf import Lookup, Policy, blocked_reason, checked_addresses, os_lookup
from imaged.fetch.urls import Target, parse_target, redirect_url
from imaged.log import REQUEST_ID_HEADER, current_request_id
from imaged.settings import Settings

TIMEOUT_SECONDS = 10.0
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
NULL_BODY_STATUSES = frozenset((204, 205))
HEADERS = {
    "User-Agent": f"imaged/{__version__}",
    "Accept": "*/*",
    "Accept-Encoding": "identity",
}
OK = "ok"


class FetchObserver(Protocol):
    def fetch_done(self, outcome: str, seconds: float) -> None:
        """One `fetch` ended: `ok` or the `FetchError.outcome` of its failure; `seconds`
        includes every redirect."""


@dataclass(frozen=True)
class _Redirect:
    location: str | None


class Fetcher:
    """Downloads source images for GET endpoints and pipelines (fetch-and-security.md).

    `lookup` (name → addresses), `policy` (address → block reason) and `ssl_context` default
    to the OS resolver, the SSRF rules and the system CAs; tests inject them to prove what is
    connected to.
    """

    def __init__(
        self,
        *,
        body_limit: int,
        allowed: AllowList | None = None,
        ssrf_protection: bool = True,
        timeout: float = TIMEOUT_SECONDS,
        max_redirects: int = MAX_REDIRECTS,
        lookup: Lookup = os_lookup,
        policy: Policy = blocked_reason,
        ssl_context: ssl.SSLContext | None = None,
        observer: FetchObserver | None = None,
    ) -> None:
        self.body_limit = body_limit
        self.observer = observer
        self.allowed = allowed
        self.ssrf_protection = ssrf_protection
        self.timeout = timeout
        self.max_redirects = max_redirects
        self._lookup = lookup
        self._policy = policy
        self._ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings, observer: FetchObserver | None = None) -> Fetcher:
        return cls(
            body_limit=settings.body_limit,
            allowed=compile_allowed_hosts(settings.allowed_hosts),
            ssrf_protection=not settings.disable_ssrf_protection,
            observer=observer,
        )

    def _client(self) -> aiohttp.ClientSession:
        """Created on first use, inside the running event loop."""
        if self._session is None or self._session.closed:
            resolver = PinnedResolver() if self.ssrf_protection else LookupResolver(self._lookup)
            connector = aiohttp.TCPConnector(
                resolver=resolver,
                use_dns_cache=not self.ssrf_protection,
                ssl=self._ssl_context or ssl.create_default_context(),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=HEADERS,
                trust_env=False,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def fetch(self, url: str) -> FetchResult:
        """The source at `url`, after at most `max_redirects` redirects, or a FetchError."""
        outcome = await self._observed(url, {})
        assert isinstance(outcome, FetchResult)  # no conditional headers, so never a 304
        return outcome

    async def revalidate(
        self, url: str, etag: str | None, last_modified: str | None
    ) -> FetchResult | NotModified:
        """`fetch`, conditional on the validators of a stored copy (at least one given):
        NotModified when the origin answers 304, else the new source."""
        conditions = {"If-None-Match": etag, "If-Modified-Since": last_modified}
        headers = {name: value for name, value in conditions.items() if value is not None}
        if not headers:
            raise ValueError("revalidation needs an ETag or a Last-Modified")
        return await self._observed(url, headers)

    async def _observed(self, url: str, headers: dict[str, str]) -> FetchResult | NotModified:
        """`_fetch`, told to the observer (an origin 304 is `ok` too)."""
        if self.observer is None:
            return await self._fetch(url, headers)
        started = time.monotonic()
        outcome = FetchError.outcome  # also when cancelled
        try:
            result = await self._fetch(url, headers)
            outcome = OK
            return result
        except FetchError as exc:
            outcome = exc.outcome
            raise
        finally:
            self.observer.fetch_done(outcome, time.monotonic() - started)

    async def _fetch(self, url: str, headers: dict[str, str]) -> FetchResult | NotModified:
        target = parse_target(url)
        redirects = 0
        while True:
            outcome = await self._hop(target, headers)
            if not isinstance(outcome, _Redirect):
                return outcome
            if redirects >= self.max_redirects:
                raise FetchHttpError("too many redirects", 502)
            if not outcome.location:
                raise FetchHttpError("redirect response missing location header", 502)
            target = parse_target(redirect_url(outcome.location, target.href))
            redirects += 1

    async def _hop(
        self, target: Target, headers: dict[str, str]
    ) -> FetchResult | NotModified | _Redirect:
        if not host_allowed(self.allowed, target.hostname):
            raise FetchBlocked("host is not allowed", 403)
        pin: AbstractContextManager[None] = nullcontext()
        if self.ssrf_protection:
            addresses = await checked_addresses(
                target.hostname, target.port, self._lookup, self._policy, self.timeout
            )
            pin = pinned(target.hostname, addresses)
        reading = False
        try:
            with pin:
                async with asyncio.timeout(self.timeout):
                    async with self._client().get(
                        URL(target.href, encoded=True),
                        allow_redirects=False,
                        headers=_hop_headers(headers),
                    ) as response:
                        final = _final_status(response, conditional=bool(headers))
                        if final is not None:
                            return final
                        reading = True
                        body = await read_body(response, self.body_limit)
                        return FetchResult.from_headers(body, response.headers)
        except FetchError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            kind = FetchTimeout if isinstance(exc, TimeoutError) else FetchError
            if reading:
                raise kind("error reading response body", 502) from exc
            raise kind("unable to make request", 502) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _hop_headers(conditional: dict[str, str]) -> dict[str, str] | None:
    """Headers of this one request on top of `HEADERS` (aiohttp merges them): the request
    id, and a revalidation's conditional headers."""
    request_id = current_request_id()
    if request_id is None:
        return conditional or None
    return {REQUEST_ID_HEADER: request_id, **conditional}


def _final_status(
    response: aiohttp.ClientResponse, conditional: bool
) -> _Redirect | NotModified | None:
    """A redirect to follow, NotModified for the 304 of a `conditional` request, or None for
    a 2xx with a body; raises for every other status."""
    status = response.status
    if status in REDIRECT_STATUSES:
        return _Redirect(response.headers.get("Location"))
    if status == 304 and conditional:
        return NotModified.from_headers(response.headers)
    if status == 404:
        raise FetchHttpError("not found", 404)
    if status < 200 or status >= 300:
        raise FetchHttpError(f"received status {status}", 502)
    if status in NULL_BODY_STATUSES:
        raise FetchHttpError("no body in response", 502)
    return None
