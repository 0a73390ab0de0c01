"""Request ids and the access log of the real server (observability.md): `X-Request-Id` on
every kind of response (echoed when well-formed, else 32 new hex characters), the id in
every log line of a request in both formats (pipeline task failures included) and in the
fetch client's requests to the origin; the `--access-log` line with its fields in order and
never a query string, over TCP and a unix socket."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tests.fetch_origin import SMALL_JPEG, Origin
from tests.hardening import raw_request
from tests.pipeline_helpers import MULTIPART, multipart_body, part, sample_image, task
from tests.serverkit import LINE_TIME, Proc, connect, read_by_peer, recv_all
from tests.serverproc import CORPUS, ServerProcess
from tests.waiting import wait_until

PNG = (CORPUS / "png-palette-8bit.png").read_bytes()
NEW_ID = re.compile("[0-9a-f]{32}")
ACCESS_FIELDS = [
    "level",
    "time",
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "bytes_in",
    "bytes_out",
    "remote",
    "msg",
]


def header_of(raw: bytes, name: str) -> str | None:
    match = re.search(rb"\r\n" + name.encode() + rb": ([^\r\n]*)\r\n", raw, re.IGNORECASE)
    return match.group(1).decode() if match else None


def test_request_ids_on_every_kind_of_response(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--body-limit", "100", "--header-timeout", "1", "--body-timeout", "1")
    port = server.port

    def answer(
        method: str, target: str, request_id: str | None = None, body: bytes | None = None
    ) -> tuple[int, str | None]:
        headers = {} if request_id is None else {"X-Request-Id": request_id}
        response = raw_request(port, method, target, body, headers)
        return response.status, response.header("x-request-id")

    for kept in ("lb-7f.a:b_c", "A" * 128, "1", "0123-4567"):
        assert answer("GET", "/healthz", kept) == (200, kept)
    assert answer("GET", "/readyz", "probe.1") == (200, "probe.1")
    status, generated = answer("PUT", "/metadata", body=b"not an image")
    assert status == 400 and generated is not None and NEW_ID.fullmatch(generated)
    refused = ["has space", "x" * 129, "a/b", "semi;colon", 'quote"d', "é"]
    ids = set()
    for malformed in refused:
        status, new = answer("GET", "/nope", malformed)
        assert status == 404 and new is not None and NEW_ID.fullmatch(new), malformed
        ids.add(new)
    assert len(ids) == len(refused)  # a new random id each time
    assert answer("PUT", "/transform", "big-1", b"x" * 101) == (413, "big-1")

    with connect(("127.0.0.1", port)) as sock:  # refused by the Expect handler
        sock.sendall(
            b"PUT /metadata HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n"
            b"X-Request-Id: expect-1\r\nContent-Length: 5\r\n\r\n"
        )
        raw = recv_all(sock, timeout=10)
    assert raw.startswith(b"HTTP/1.1 417 ") and header_of(raw, "X-Request-Id") == "expect-1"

    with connect(("127.0.0.1", port)) as sock:  # a head aiohttp's parser refuses
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
        raw = recv_all(sock, timeout=10)
    assert raw.startswith(b"HTTP/1.0 400 ")  # aiohttp's answer to a head it cannot parse
    assert NEW_ID.fullmatch(header_of(raw, "X-Request-Id") or "")

    with connect(("127.0.0.1", port)) as sock:  # the head never completes: no request at all
        sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Request-Id: never-seen\r\n")
        raw = recv_all(sock, timeout=10)
    assert raw.startswith(b"HTTP/1.1 408 ")
    assert NEW_ID.fullmatch(header_of(raw, "X-Request-Id") or "")

    with connect(("127.0.0.1", port)) as sock:  # the body never completes
        sock.sendall(
            b"PUT /metadata HTTP/1.1\r\nHost: x\r\nX-Request-Id: slow-body\r\n"
            b"Content-Length: 50\r\n\r\n0123456789"
        )
        raw = recv_all(sock, timeout=10)
    assert raw.startswith(b"HTTP/1.1 408 ") and header_of(raw, "X-Request-Id") == "slow-body"
    # (503: tests/e2e/test_observability_metrics.py; 500: tests/test_listen.py)


def _lines_with(proc: Proc, request_id: str) -> list[str]:
    return [line for line in proc.lines() if request_id in line]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_log_line_of_a_request_carries_its_id(
    fmt: str, tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(
        "--log-format", fmt, "--log-level", "debug", "--access-log",
        "--enable-pipeline", "--output-dir", str(tmp_path), "--pipeline-buckets", "out",
    )  # fmt: skip
    config = {"tasks": [task("good", "png", "out"), task("elsewhere", "png", "forbidden")]}
    form = multipart_body(
        part("config", json.dumps(config)), part("file", sample_image(), filename="s.png")
    )
    with server.client() as client:
        response = client.put(
            "/pipeline?x=1",
            content=form,
            headers={"Content-Type": MULTIPART, "X-Request-Id": "pipe-1"},
        )
        assert response.headers["x-request-id"] == "pipe-1"
        assert [t["status"] for t in response.json()["tasks"]] == ["success", "failed"]
        unnamed = client.put("/metadata", content=b"junk")
    generated = unnamed.headers["x-request-id"]
    assert NEW_ID.fullmatch(generated)
    # Both requests' lines are written once their responses are: poll for the last ones.
    wait_until(lambda: len(_lines_with(server, generated)) == 2, lambda: server.log())
    wait_until(lambda: len(_lines_with(server, "pipe-1")) == 3, lambda: server.log())
    error = "task 'elsewhere': bucket 'forbidden' is not allowed"
    if fmt == "json":
        records = [json.loads(line) for line in _lines_with(server, "pipe-1")]
        assert all(list(r)[:3] == ["level", "time", "request_id"] for r in records), records
        assert all(r["request_id"] == "pipe-1" for r in records)
        by_msg = {(r["level"], r["msg"]): r for r in records}
        assert set(by_msg) == {
            ("warn", "pipeline task failed"),
            ("debug", "request"),
            ("info", "request"),
        }
        failed = by_msg[("warn", "pipeline task failed")]
        assert (failed["id"], failed["err"]) == ("elsewhere", error)
        assert by_msg[("debug", "request")]["path"] == "/pipeline?x=1"  # unchanged debug line
        other = [json.loads(line) for line in _lines_with(server, generated)]
        assert [r["request_id"] for r in other] == [generated, generated]
    else:
        lines = _lines_with(server, "pipe-1")
        prefix = f"{LINE_TIME} (WARN pipeline task failed|DEBUG request|INFO request) "
        assert all(re.match(prefix + "request_id=pipe-1 ", line) for line in lines), lines
        assert any(
            line.endswith(f'request_id=pipe-1 id=elsewhere err="{error}"') for line in lines
        ), lines
        assert all(f"request_id={generated} " in line for line in _lines_with(server, generated))
    assert "internal error" not in server.log()


def test_the_fetch_client_sends_the_request_id_to_the_origin(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--enable-fetch", "--disable-ssrf-protection")
    with Origin() as origin, server.client() as client:
        url = origin.url(f"/img/{SMALL_JPEG}")
        named = client.get("/metadata", params={"url": url}, headers={"X-Request-Id": "join-1"})
        unnamed = client.get("/transform", params={"url": url, "width": "8"})
        seen = [{k.lower(): v for k, v in r.headers.items()} for r in origin.requests]
    assert (named.status_code, unnamed.status_code) == (200, 200)
    assert [headers.get("x-request-id") for headers in seen] == [
        "join-1",
        unnamed.headers["x-request-id"],  # the generated one, the same on both sides
    ]


def access_records(proc: Proc) -> list[dict[str, object]]:
    records = [json.loads(line) for line in proc.lines()]
    return [r for r in records if r["msg"] == "request" and r["level"] == "info"]


def test_the_access_log_has_its_fields_in_order_and_never_the_query_string(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--access-log", "--log-format", "json")
    with server.client() as client:
        responses = [
            client.get("/healthz?token=SECRET-1"),
            client.put("/transform?width=8&format=png&sig=SECRET-2", content=PNG),
            client.get("/nope?SECRET-3"),
            client.head("/healthz?SECRET-4"),
            client.put("/metadata?exif=true&expires=SECRET-5", content=b"junk"),
        ]
    wait_until(lambda: len(access_records(server)) == len(responses), server.log)
    records = access_records(server)
    assert all(list(r) == ACCESS_FIELDS for r in records), records
    expected = [
        ("GET", "/healthz", 200, 0),
        ("PUT", "/transform", 200, len(PNG)),
        ("GET", "other", 404, 0),
        ("HEAD", "/healthz", 200, 0),
        ("PUT", "/metadata", 400, 4),
    ]
    for record, response, (method, route, status, bytes_in) in zip(
        records, responses, expected, strict=True
    ):
        assert (record["method"], record["route"], record["status"]) == (method, route, status)
        assert record["request_id"] == response.headers["x-request-id"]
        assert record["bytes_in"] == bytes_in
        assert record["bytes_out"] == len(response.content)  # 0 for the HEAD
        assert isinstance(record["duration_ms"], int) and record["duration_ms"] >= 0
        assert record["remote"] == "127.0.0.1"
    assert "SECRET" not in server.log()
    assert not any("?" in json.dumps(r) for r in records)


def test_the_access_log_in_text_over_a_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "imaged.sock")
    with Proc(["--unix", path, "--access-log"]) as proc:
        with httpx.Client(transport=httpx.HTTPTransport(uds=path), timeout=30) as client:
            response = client.get(
                "http://imaged/healthz?q=SECRET", headers={"X-Request-Id": "uds-1"}
            )
        wait_until(lambda: _lines_with(proc, "uds-1"), proc.log)
        line = _lines_with(proc, "uds-1")[0]
    n = len(response.content)
    assert re.fullmatch(
        f"{LINE_TIME} INFO request request_id=uds-1 method=GET route=/healthz status=200 "
        f"duration_ms=\\d+ bytes_in=0 bytes_out={n} remote=unix",
        line,
    ), line
    assert "SECRET" not in proc.log()


def test_a_client_that_leaves_before_its_response_is_still_logged(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--access-log", "--log-format", "json", "--concurrency", "1")
    sock = connect(("127.0.0.1", server.port))
    image = sample_image(2000, 2000)
    sock.sendall(
        b"PUT /transform?blur=20 HTTP/1.1\r\nHost: x\r\nX-Request-Id: gone-1\r\n"
        + f"Content-Length: {len(image)}\r\n\r\n".encode()
        + image
    )
    wait_until(lambda: read_by_peer(sock), "the server to read the request")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # a reset, while the image is being processed
    wait_until(lambda: _lines_with(server, "gone-1"), server.log)
    (record,) = [json.loads(line) for line in _lines_with(server, "gone-1")]
    assert (record["msg"], record["route"], record["bytes_in"]) == (
        "request",
        "/transform",
        len(image),
    )
