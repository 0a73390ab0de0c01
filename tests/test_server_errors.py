"""The response helpers of `server/errors.py` that every error path shares (the connection,
the middleware, the routes): one text per failure, whoever detects it."""

from __future__ import annotations

import pytest

from imaged.errors import BadRequest, ServerBusy, StrictMetadataError
from imaged.server.body import too_large
from imaged.server.errors import error_response, json_response, status_text, text_response


@pytest.mark.parametrize(
    ("status", "text"),
    [(400, "400 Bad Request"), (404, "404 Not Found"), (417, "417 Expectation Failed")],
)
def test_status_text(status: int, text: str) -> None:
    assert status_text(status) == text


def test_text_and_json_responses_are_utf8() -> None:
    text = text_response(404, "404 Not Found")
    assert (text.status, text.text, text.content_type, text.charset) == (
        404,
        "404 Not Found",
        "text/plain",
        "utf-8",
    )
    body = json_response('{"a":1}')
    assert (body.status, body.text, body.content_type, body.charset) == (
        200,
        '{"a":1}',
        "application/json",
        "utf-8",
    )


def test_too_large_closes_the_connection_with_the_limit_in_its_text() -> None:
    response = error_response(too_large(100))
    assert (response.status, response.text) == (413, "request body exceeds the limit of 100 bytes")
    assert response.keep_alive is False


def test_error_kinds() -> None:
    plain = error_response(BadRequest("nope"))
    assert (plain.status, plain.text, plain.content_type) == (400, "nope", "text/plain")
    assert plain.keep_alive is None  # the connection's own keep-alive decision stands
    busy = error_response(ServerBusy(3))
    assert (busy.status, busy.headers["Retry-After"]) == (503, "3")
    strict = error_response(StrictMetadataError('{"errors":[]}'))
    assert (strict.status, strict.content_type, strict.text) == (
        400,
        "application/json",
        '{"errors":[]}',
    )
