"""The one exception hierarchy of imaged.

Every deliberate failure is an `ImagedError` carrying the HTTP status and the exact
plain-text body of the spec. Only `server/errors.py` turns them into responses; the
engine, params, fetch and pipeline code just raise them.
"""

from __future__ import annotations


class ImagedError(Exception):
    """A deliberate, client-visible error: `status` and the body text `message`."""

    status: int = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(ImagedError):
    """400 with a plain-text body."""


class ImageError(ImagedError):
    """Any failure detecting, decoding, processing or encoding an image: 400 `image: …`."""

    def __init__(self, message: str) -> None:
        super().__init__(f"image: {message}", 400)
        self.detail = message


class FetchError(ImagedError):
    """A failure fetching a remote source: `fetch: …` with its own status. `outcome` is its
    kind for the fetch metric; the subclasses below name the distinguishable ones."""

    outcome = "error"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(f"fetch: {message}", status)
        self.detail = message


class FetchBlocked(FetchError):
    """Refused before connecting: SSRF protection or the host allow-list."""

    outcome = "blocked"


class FetchTimeout(FetchError):
    """The origin (or its name lookup) did not answer in time."""

    outcome = "timeout"


class FetchTooLarge(FetchError):
    """The origin's body is over the size limit."""

    outcome = "too_large"


class FetchHttpError(FetchError):
    """The origin answered, but not with a usable image response (404, another status, no
    body, a broken redirect chain)."""

    outcome = "http_error"


class PayloadTooLarge(ImagedError):
    """413: the request body is over `--body-limit`."""

    status = 413


class RequestTimeout(ImagedError):
    """408: the request head or body did not arrive within the read deadline."""

    status = 408


class ServerBusy(ImagedError):
    """503: the image queue is full; the client should retry after `retry_after` seconds."""

    status = 503

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__("server busy, retry later", 503)
        self.retry_after = retry_after


class AccessDenied(ImagedError):
    """401/403 of access control (access.md): never cached, plus `headers` (the 401 names
    its authentication scheme)."""

    def __init__(self, message: str, status: int, headers: dict[str, str] | None = None):
        super().__init__(message, status)
        self.headers = {"Cache-Control": "no-store", **(headers or {})}


class StrictMetadataError(ImagedError):
    """Strict-mode /metadata failure: the body is a JSON document, not plain text."""

    def __init__(self, body: str) -> None:
        super().__init__(body, 400)


class ConfigError(Exception):
    """Invalid configuration: logged as one FATAL line, exit status 1."""

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
