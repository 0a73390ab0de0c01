"""CDN-ready GET routes (caching.md): ETag, Cache-Control, 304, coalescing, the result cache.

The whole flow of `GET`/`HEAD` `/transform` and `/metadata` after validation reads top-down
in `Caching.serve` and `Caching._work`:

    validated options (handler) → key → fresh cache entry? → join or start the flight
      flight: fetch (or revalidate a stale entry) → ETag → render if anyone needs a body
    → 304 when the request's preconditions match the ETag, else 200

The key is (route, source URL, effective options); the negotiated format is one of the
options. `sig` and `expires` are control parameters, never options, so they are in no key or
ETag: access control has already accepted the request (server/access.py) before it gets
here. Everything that depends on the request — its parameter warnings, `Vary`,
`X-Response-Time-Ms`, `X-Cache`, the `max-age` cap of a signed `expires` — is added per
request, for cache hits and coalesced waiters too.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler

from imaged.engine.options import MetadataOptions, ParamWarning, TransformOptions
from imaged.fetch.result import FetchResult, NotModified
from imaged.server.access import SIGNED_PATHS, seconds_left
from imaged.server.coalesce import Flight, Flights
from imaged.server.conditional import Conditions, last_modified, make_etag, source_digest
from imaged.server.metrics import CACHE_REQUESTS, COALESCED, DISABLED, Recorder
from imaged.server.output import Rendered, ok_response
from imaged.server.resultcache import Entry, ResultCache
from imaged.settings import PRINTABLE_ASCII, Settings

if TYPE_CHECKING:
    from imaged.fetch.client import Fetcher

# The image GET routes: the ones this module answers, and whose errors are `no-store`.
GET_ROUTES = SIGNED_PATHS
NO_STORE = "no-store"
HIT, MISS = "HIT", "MISS"
# Bodies above this are hashed in a worker thread (hashlib releases the GIL): a 16 MiB
# source takes ~30 ms, too long to hold the event loop.
_HASH_INLINE_LIMIT = 256 * 1024
# `max-age=N` / `s-maxage=N` (any case, N possibly quoted), not the end of a longer name.
_TCHAR_BEFORE = r"(?<![A-Za-z0-9!#$%&'*+.^_`|~-])"
_MAX_AGE = re.compile(_TCHAR_BEFORE + r'(max-age|s-maxage)[ \t]*=[ \t]*"?([0-9]+)"?', re.I)


# --- what a GET asks for --------------------------------------------------------------------


@dataclass(frozen=True)
class GetJob:
    """One validated image GET: the source, the effective options, how to render it and the
    request's own view of the result (its warnings, whether the format was negotiated)."""

    route: str
    url: str
    options: TransformOptions | MetadataOptions
    render: Callable[[bytes], Awaitable[Rendered]]
    warnings: list[ParamWarning]  # the parameters' own, for X-Imaged-Warnings
    strict: bool
    negotiated: bool = False  # `Vary: Accept`

    @property
    def key(self) -> Hashable:
        return (self.route, self.url, self.options)


@dataclass(frozen=True)
class Validated:
    """What the first stage of a flight publishes: the response's validators."""

    etag: str
    last_modified: str | None
    revalidated: bool = False  # an origin 304 renewed a cached entry


# --- Cache-Control ---------------------------------------------------------------------------


def capped(cache_control: str, seconds: int | None) -> str:
    """`cache_control` with `max-age` and `s-maxage` at most `seconds` (a signed URL's time
    left, access.md). Without either directive, and unless it is `no-store`, `max-age` is
    added: a cache must not fall back on heuristic freshness past the URL's expiry."""
    if seconds is None or not cache_control:
        return cache_control

    def cap(match: re.Match[str]) -> str:
        return f"{match.group(1)}={min(int(match.group(2)), seconds)}"

    text, count = _MAX_AGE.subn(cap, cache_control)
    if count == 0 and NO_STORE not in cache_control.lower():
        text = f"{text}, max-age={seconds}"
    return text


# --- the flow -------------------------------------------------------------------------------


class Caching:
    """The GET routes' caching layer, one per server."""

    def __init__(
        self,
        settings: Settings,
        fetcher: Fetcher,
        metrics: Recorder = DISABLED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache_control = settings.cache_control
        self.cache = (
            ResultCache(settings.result_cache_size, settings.result_cache_ttl, clock)
            if settings.result_cache_size
            else None
        )
        self.flights: Flights[Validated, Rendered] = Flights()
        self._fetcher = fetcher
        self._metrics = metrics

    async def serve(self, request: web.Request, job: GetJob) -> web.Response:
        """The response to a validated image GET or HEAD (HEAD: aiohttp drops the body)."""
        conditions = Conditions.parse(
            request.headers.getall("If-None-Match", []), request.headers.get("If-Modified-Since")
        )
        stale: Entry | None = None
        if self.cache is not None:
            entry, fresh = self.cache.lookup(job.key)
            if entry is not None and fresh:  # no fetch, no image work
                validated = Validated(entry.etag, entry.last_modified)
                rendered = None if _matches(conditions, validated) else entry.rendered
                return self._answer(request, job, validated, rendered, hit=True)
            stale = entry

        def needs_body(validated: Validated) -> bool:
            return not _matches(conditions, validated)

        flight, joined = self.flights.join(
            job.key, needs_body, lambda flight: self._work(flight, job, stale)
        )
        if joined:
            self._metrics.inc(COALESCED)
        validated = await flight.first()
        rendered = await flight.result() if needs_body(validated) else None
        return self._answer(request, job, validated, rendered, hit=False)

    async def _work(
        self, flight: Flight[Validated, Rendered], job: GetJob, stale: Entry | None
    ) -> Rendered | None:
        """The shared work of one flight: runs once however many requests wait for it, and
        is never cancelled by them."""
        if stale is not None and stale.revalidatable:
            source = await self._fetcher.revalidate(
                job.url, stale.origin_etag, stale.origin_last_modified
            )
        else:
            source = await self._fetcher.fetch(job.url)
        if isinstance(source, NotModified):  # the origin's copy is the one we rendered
            assert stale is not None and self.cache is not None
            origin = _origin_validators(source, stale)
            renewed = self.cache.renew(job.key, stale, stale.last_modified, origin)
            flight.publish(Validated(renewed.etag, renewed.last_modified, revalidated=True))
            return renewed.rendered
        digest = await _digest(source.body)
        validated = Validated(
            make_etag(digest, job.route, job.options), last_modified(source.last_modified)
        )
        flight.publish(validated)
        if stale is not None and stale.etag == validated.etag:  # same bytes, same output
            assert self.cache is not None
            origin = _origin_validators(source)
            return self.cache.renew(job.key, stale, validated.last_modified, origin).rendered
        if not flight.wanted(validated):  # every participant gets a 304
            return None
        rendered = await job.render(source.body)
        if self.cache is not None:
            origin_etag, origin_modified = _origin_validators(source)
            entry = Entry(
                rendered,
                validated.etag,
                validated.last_modified,
                origin_etag,
                origin_modified,
                self.cache.fresh_until(),
            )
            self.cache.put(job.key, entry)
        return rendered

    def _answer(
        self,
        request: web.Request,
        job: GetJob,
        validated: Validated,
        rendered: Rendered | None,
        *,
        hit: bool,
    ) -> web.Response:
        """304 when `rendered` is None (the preconditions matched), else the 200."""
        headers = {"ETag": validated.etag}
        cache_control = capped(self.cache_control, seconds_left(request))
        if cache_control:
            headers["Cache-Control"] = cache_control
        if validated.last_modified is not None:
            headers["Last-Modified"] = validated.last_modified
        if self.cache is not None:
            headers["X-Cache"] = HIT if hit else MISS
        if rendered is None:
            self._metrics.inc(CACHE_REQUESTS, "not_modified")
            if job.negotiated:
                headers["Vary"] = "Accept"
            return web.Response(status=304, headers=headers)
        response = ok_response(
            request, rendered, job.warnings, job.strict, negotiated=job.negotiated, extra=headers
        )
        result = "hit" if hit else "revalidated" if validated.revalidated else "miss"
        self._metrics.inc(CACHE_REQUESTS, result)
        return response


# The server's caching layer, on the application when fetching is enabled.
CACHING = web.AppKey("caching", Caching)


def _matches(conditions: Conditions, validated: Validated) -> bool:
    return conditions.not_modified(validated.etag, validated.last_modified)


def _validator(value: str | None) -> str | None:
    """An origin validator worth sending back: printable ASCII only (anything else could
    not be a valid header value of ours)."""
    return value if value is not None and PRINTABLE_ASCII.fullmatch(value) else None


def _origin_validators(
    source: FetchResult | NotModified, stale: Entry | None = None
) -> tuple[str | None, str | None]:
    """The origin's (ETag, Last-Modified) to store: the response's own; a 304 that omits
    one keeps the stored one (RFC 9111 §4.3.4)."""
    etag, modified = _validator(source.etag), _validator(source.last_modified)
    if stale is not None:
        etag = etag or stale.origin_etag
        modified = modified or stale.origin_last_modified
    return etag, modified


async def _digest(body: bytes) -> bytes:
    if len(body) <= _HASH_INLINE_LIMIT:
        return source_digest(body)
    return await asyncio.get_running_loop().run_in_executor(None, source_digest, body)


# --- errors ---------------------------------------------------------------------------------


def is_image_get(request: web.Request) -> bool:
    if request.method not in ("GET", "HEAD") or request.match_info.http_exception is not None:
        return False
    resource = request.match_info.route.resource
    return resource is not None and resource.canonical in GET_ROUTES


@web.middleware
async def no_store_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors of the image GET routes must not be cached by anyone: `no-store`, no ETag
    (and `X-Cache: MISS` when the result cache is on: every GET response says). Outside the
    error mapping, so it sees every error response, whatever raised it."""
    response = await handler(request)
    if response.status >= 400 and is_image_get(request):
        response.headers["Cache-Control"] = NO_STORE
        response.headers.popall("ETag", None)
        caching = request.app.get(CACHING)
        if caching is not None and caching.cache is not None:
            response.headers["X-Cache"] = MISS
    return response
