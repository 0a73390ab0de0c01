"""The HTTP error model of http-api.md at the protocol level: 413 for an over-limit body
(declared or chunked, answered without reading it), 400 for a body shorter than its
Content-Length or a malformed Content-Type, plain-text 400 for a broken request, 404 text
for everything unrouted, `Expect: 100-continue`; the server stays up and logs no errors."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest
import pyvips
from tests.serverkit import (
    TEXT,
    Proc,
    connect,
    exchange,
    free_port,
    read_by_peer,
    read_response,
    recv_all,
)
from tests.waiting import wait_until

LIMIT = 1000
TOO_LARGE = f"request body exceeds the limit of {LIMIT} bytes"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    port = free_port()
    with Proc(["-H", "127.0.0.1", "-p", str(port), "--body-limit", str(LIMIT)]) as proc:
        yield ("127.0.0.1", port)
        log = proc.log()
        assert " ERROR " not in log and " WARN " not in log and "Traceback" not in log, log


@pytest.fixture(scope="module")
def png() -> bytes:
    data = bytes(pyvips.Image.black(4, 3).write_to_buffer(".png"))
    assert len(data) < LIMIT
    return data


def put(path: str, body: bytes, headers: str = "") -> bytes:
    head = f"PUT {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def test_declared_length_over_limit_is_answered_at_once(server: tuple[str, int]) -> None:
    for path in ("/transform", "/metadata", "/transform?width=abc&strict=1"):
        with connect(server) as sock:
            sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n".encode())
            started = time.monotonic()
            response = read_response(sock)  # no body byte was sent
            assert time.monotonic() - started < 1.0
        assert response.status == 413, path
        assert response.text == TOO_LARGE
        assert response.headers["Content-Type"] == TEXT
        assert response.headers["Connection"] == "close"


@pytest.mark.parametrize(
    ("request_line", "status"),
    [("GET /healthz", 200), ("POST /transform", 404), ("PUT /nothing", 404)],
)
def test_the_body_limit_is_for_put_routes_only(
    server: tuple[str, int], request_line: str, status: int
) -> None:
    """Other requests get their own answer whatever body they declare (http-api.md)."""
    body = bytes(LIMIT + 1)
    raw = f"{request_line} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    response = exchange(server, raw.encode() + body)
    assert response.status == status


def test_huge_declared_length_is_413_not_a_crash(server: tuple[str, int]) -> None:
    raw = b"PUT /metadata HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\n\r\n"
    response = exchange(server, raw)
    assert (response.status, response.text) == (413, TOO_LARGE)


def test_body_of_exactly_the_limit_is_accepted(server: tuple[str, int]) -> None:
    response = exchange(server, put("/metadata", b"\x00" * LIMIT), "PUT")
    assert (response.status, response.text) == (400, "image: unknown image type")
    response = exchange(server, put("/metadata", b"\x00" * (LIMIT + 1)), "PUT")
    assert (response.status, response.text) == (413, TOO_LARGE)


def test_chunked_body_is_cut_as_soon_as_it_exceeds_the_limit(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(b"PUT /metadata HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for chunk in range(3):  # 1200 bytes > 1000; the body never ends
            sock.sendall(b"190\r\n" + b"z" * 400 + b"\r\n")
            if chunk < 2:  # one chunk at a time: the server counts as they arrive
                wait_until(lambda: read_by_peer(sock), "the server to read the chunk")
        started = time.monotonic()
        response = read_response(sock)
        assert time.monotonic() - started < 2.0
    assert (response.status, response.text) == (413, TOO_LARGE)
    assert response.headers["Connection"] == "close"


def test_body_shorter_than_content_length_is_400(server: tuple[str, int]) -> None:
    for path in ("/metadata", "/transform"):
        with connect(server) as sock:
            sock.sendall(
                f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n".encode()
                + b"\x89PNG"
            )
            sock.shutdown(socket.SHUT_WR)  # the client is done sending: 496 bytes are missing
            response = read_response(sock)
        assert response.status == 400, path
        assert response.text == "request body is shorter than its Content-Length"
        assert response.headers["Content-Type"] == TEXT


@pytest.mark.parametrize(
    "content_type",
    ["image", "image/", "/png", "image/png;;x", "image/png; charset", 'image/png; a="open',
     "a b/c", "image/png, image/jpeg", "image/png; a=b c"],
)  # fmt: skip
def test_malformed_content_type_is_400(
    server: tuple[str, int], png: bytes, content_type: str
) -> None:
    header = f"Content-Type: {content_type}\r\n"
    response = exchange(server, put("/metadata", png, header), "PUT")
    assert (response.status, response.text) == (400, "malformed Content-Type header")
    assert response.headers["Content-Type"] == TEXT


@pytest.mark.parametrize(
    "content_type",
    ["image/png", "application/octet-stream", "text/plain; charset=utf-8", "image/png;",
     'application/x; name="a \\"b\\""; q=1', "IMAGE/PNG ; A=B", "application/json"],
)  # fmt: skip
def test_well_formed_content_types_are_accepted(
    server: tuple[str, int], png: bytes, content_type: str
) -> None:
    response = exchange(server, put("/metadata", png, f"Content-Type: {content_type}\r\n"), "PUT")
    assert response.status == 200, (content_type, response.text)


def test_two_content_type_headers_are_a_bad_request(server: tuple[str, int], png: bytes) -> None:
    headers = "Content-Type: image/png\r\nContent-Type: image/png\r\n"
    response = exchange(server, put("/metadata", png, headers), "PUT")
    assert (response.status, response.text) == (400, "400 Bad Request")


def test_unrouted_requests_are_404_text(server: tuple[str, int]) -> None:
    for raw in (
        b"PATCH /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"TRACE /metadata HTTP/1.1\r\nHost: x\r\n\r\n",
        b"HEAD /transform HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /metadata?url=http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",  # fetch disabled
        put("/nope", b"abc", "Content-Type: ;;\r\n"),  # unrouted wins over the bad type
    ):
        method = raw.split(b" ")[0].decode()
        response = exchange(server, raw, method)
        assert response.status == 404, raw
        assert response.headers["Content-Type"] == TEXT
        if method != "HEAD":
            assert response.text == "404 Not Found"


def test_broken_requests_get_plain_text_400(server: tuple[str, int]) -> None:
    for raw in (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # TLS to a plain port
        b"GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nX-Bad: a\x7fb\r\n\r\n",
        b"BREW /healthz HTTP/1.1\r\n\r\n",  # not an HTTP method the parser knows
    ):
        with connect(server) as sock:
            sock.sendall(raw)
            answer = recv_all(sock, 5)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert re.match(rb"HTTP/1\.[01] 400 ", head), answer[:200]
        assert b"Content-Type: text/plain; charset=utf-8" in head
        assert body == b"400 Bad Request"


def test_expect_100_continue(server: tuple[str, int], png: bytes) -> None:
    with connect(server) as sock:
        sock.sendall(
            f"PUT /metadata HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            f"Content-Length: {len(png)}\r\n\r\n".encode()
        )
        interim = sock.recv(100)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(png)
        assert read_response(sock).status == 200


def test_expect_100_continue_over_the_limit_gets_413_instead(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"PUT /transform HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 5000\r\n\r\n"
        )
        response = read_response(sock)
    assert (response.status, response.text) == (413, TOO_LARGE)


def test_unknown_expectation_is_417(server: tuple[str, int]) -> None:
    raw = put("/metadata", b"abc", "Expect: something-else\r\n")
    response = exchange(server, raw, "PUT")
    assert (response.status, response.text) == (417, "417 Expectation Failed")


def test_http_1_0_is_served(server: tuple[str, int]) -> None:
    response = exchange(server, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert response.status == 200 and response.body.startswith(b'{"version":"0.2.3"')


def test_server_is_still_up(server: tuple[str, int]) -> None:
    assert exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").status == 200
