"""Access control (access.md): signed GET URLs and API tokens, checked before anything else.

`access_middleware` sits right inside the error mapping, so it runs before the body-limit
and Content-Type checks of `upload_middleware`, before any parameter is parsed, anything
fetched or a permit taken: a refused request costs a header lookup and one HMAC per key.
The `Expect: 100-continue` handler (server/app.py) asks `refused` first, so an unauthorised
client is never invited to send its body; the refusal closes the connection instead of
draining a body it did not read.

With neither `--signing-keys` nor `--api-tokens` the middleware passes every request
through untouched (0.2.3 behaviour). Unknown routes keep their 404 either way.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from imaged.errors import AccessDenied
from imaged.server.errors import error_response
from imaged.server.state import CLOSE_UNREAD, STATE
from imaged.settings import Settings
from imaged.signing import SignatureError, equals_any, verify

# The image GET routes (GET and HEAD): the only ones that need a signature.
SIGNED_PATHS = frozenset({"/transform", "/metadata"})
TOKEN_REFUSED = "missing or invalid API token"
WWW_AUTHENTICATE = 'Bearer realm="imaged"'
# The verified `expires` of a signed request; read it through `seconds_left`.
EXPIRES = web.RequestKey("signed_expires", int)


def has_token(request: web.BaseRequest, tokens: tuple[str, ...]) -> bool:
    """`Authorization: Bearer <token>` (scheme in any case, exactly one space) with one of
    `tokens`; a repeated Authorization header is refused."""
    values = request.headers.getall("Authorization", [])
    if len(values) != 1:
        return False
    scheme, space, token = values[0].partition(" ")
    return bool(space) and scheme.lower() == "bearer" and equals_any(token, tokens)


def _signed_target(request: web.BaseRequest) -> str:
    """The path and query exactly as sent. An absolute-form target (`GET http://host/…`)
    is reduced to its path and query: scheme, host and port are never signed."""
    target = request.raw_path
    if target.startswith("/"):
        return target
    _, _, rest = target.partition("://")
    for index, char in enumerate(rest):
        if char in "/?":
            return ("/" if char == "?" else "") + rest[index:]
    return "/"


def _route(request: web.Request) -> str | None:
    """`token`, `signature` or None: what this request must show."""
    match = request.match_info
    if match.http_exception is not None:  # an unknown route stays a 404
        return None
    if request.method == "PUT":
        return "token"
    resource = match.route.resource
    if request.method in ("GET", "HEAD") and resource and resource.canonical in SIGNED_PATHS:
        return "signature"
    return None


def check(request: web.Request, settings: Settings) -> int | None:
    """The verified `expires` of a signed request (None: none, or nothing to verify);
    AccessDenied 401 / 403 when the request may not proceed."""
    tokens, keys = settings.api_tokens, settings.signing_keys
    needs = _route(request)
    if needs == "token" and tokens:
        if not has_token(request, tokens):
            raise AccessDenied(TOKEN_REFUSED, 401, {"WWW-Authenticate": WWW_AUTHENTICATE})
    elif needs == "signature" and keys:
        if tokens and has_token(request, tokens):
            return None  # server-to-server callers may use a token instead
        try:
            return verify(_signed_target(request), keys)
        except SignatureError as exc:
            raise AccessDenied(str(exc), 403) from None
    return None


def refused(request: web.Request) -> bool:
    """Whether `access_middleware` will refuse the request (for `Expect: 100-continue`)."""
    try:
        check(request, request.app[STATE].settings)
    except AccessDenied:
        return True
    return False


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        expires = check(request, request.app[STATE].settings)
    except AccessDenied as exc:
        response = error_response(exc)
        if request.can_read_body:  # the body is never read, not even drained
            response.force_close()
            request[CLOSE_UNREAD] = True
        return response
    if expires is not None:
        request[EXPIRES] = expires
    return await handler(request)


def seconds_left(request: web.Request, now: float | None = None) -> int | None:
    """The seam for caching.md: seconds until the verified `expires` of this signed request
    (0 once it is due), or None when no expiry applies (signing off, no `expires`, or a
    token instead of a signature). `max-age` and `s-maxage` are capped at it, so no cache
    keeps serving a signed URL past its expiry."""
    expires: int | None = request.get(EXPIRES)
    if expires is None:
        return None
    return max(0, expires - int(time.time() if now is None else now))
