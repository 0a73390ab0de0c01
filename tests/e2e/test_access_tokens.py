"""API tokens on the PUT routes end to end (access.md): every PUT route, including both
forms of /pipeline, refuses a request without a configured bearer token with 401, before
its body is read (over-limit and endless bodies included, and no `100 Continue`)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from tests.access_support import KEY_NEW, TOKEN, TOKEN_2, TOKENS
from tests.fetch_origin import SMALL_JPEG, Origin
from tests.hardening import TEXT, RawResponse, raw_request, read_raw_response
from tests.pipeline_helpers import MULTIPART, config_part, file_part, multipart_body, task
from tests.serverkit import closed_by_peer, read_response
from tests.serverproc import CORPUS, ServerProcess

JPEG = (CORPUS / SMALL_JPEG).read_bytes()
LIMIT = 200_000
REFUSED = "missing or invalid API token"


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as running:
        yield running


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("out")


@pytest.fixture(scope="module")
def server(output: Path) -> Iterator[ServerProcess]:
    args = [
        "--enable-fetch",
        "--disable-ssrf-protection",
        "--enable-pipeline",
        "--output-dir",
        str(output),
        "--body-limit",
        str(LIMIT),
        "--concurrency",
        "2",
    ]
    with ServerProcess(args, {"API_TOKENS": TOKENS}) as proc:
        yield proc


def bearer(token: str = TOKEN, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


def pipeline_config(origin: Origin | None, name: str) -> dict[str, object]:
    config: dict[str, object] = {"tasks": [task(name, "png", width=8)]}
    if origin is not None:
        config["url"] = origin.url(f"/img/{SMALL_JPEG}")
    return config


def requests(origin: Origin, name: str) -> dict[str, tuple[str, bytes, dict[str, str]]]:
    """One request per PUT route (target, body, headers); pipeline tasks write `name`."""
    form = multipart_body(config_part(pipeline_config(None, name)), file_part(JPEG))
    return {
        "transform": ("/transform?width=8", JPEG, {"Content-Type": "image/jpeg"}),
        "metadata": ("/metadata", JPEG, {}),
        "pipeline-json": (
            "/pipeline",
            json.dumps(pipeline_config(origin, name)).encode(),
            {"Content-Type": "application/json"},
        ),
        "pipeline-multipart": ("/pipeline", form, {"Content-Type": MULTIPART}),
    }


ROUTES = ["transform", "metadata", "pipeline-json", "pipeline-multipart"]


def assert_401(response: RawResponse) -> None:
    assert response.status == 401, (response.status, response.text)
    assert response.text == REFUSED
    assert response.header("Content-Type") == TEXT
    assert response.header("WWW-Authenticate") == 'Bearer realm="imaged"'
    assert response.header("Cache-Control") == "no-store"
    for name in ("X-Imaged-Warnings", "X-Response-Time-Ms", "Vary"):
        assert response.header(name) is None, name


REFUSED_HEADERS = [
    {},
    bearer("wrong-token-0123456789"),
    bearer(TOKEN + "x"),
    bearer(TOKEN[:-1]),
    bearer(f"{TOKEN},{TOKEN_2}"),  # the whole list is not a token
    bearer(TOKEN, "Basic"),
    bearer(TOKEN, "Token"),
    bearer(TOKEN, "Bearer "),  # two spaces
    {"Authorization": f"Bearer\t{TOKEN}"},
    {"Authorization": f"Bearer{TOKEN}"},
    {"Authorization": TOKEN},
    {"Authorization": "Bearer"},
    {"X-Api-Token": TOKEN},
]


@pytest.mark.parametrize("route", ROUTES)
def test_every_put_route_needs_a_token(
    server: ServerProcess, origin: Origin, output: Path, route: str
) -> None:
    name = f"refused-{route}"
    target, body, headers = requests(origin, name)[route]
    with origin.untouched():
        for refused in REFUSED_HEADERS:
            assert_401(raw_request(server.port, "PUT", target, body, {**headers, **refused}))
    assert not (output / "out" / f"{name}.png").exists()
    name = f"served-{route}"
    target, body, headers = requests(origin, name)[route]
    for accepted in (bearer(), bearer(TOKEN_2), bearer(TOKEN, "bearer"), bearer(TOKEN, "BeArEr")):
        response = raw_request(server.port, "PUT", target, body, {**headers, **accepted})
        assert response.status == 200, (accepted, response.text)
    if route.startswith("pipeline"):
        assert (output / "out" / f"{name}.png").is_file()


def test_a_repeated_authorization_header_is_refused(server: ServerProcess) -> None:
    head = (
        f"PUT /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(JPEG)}\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode() + JPEG)
        response = read_raw_response(sock, "PUT")
    assert_401(response)


# --- before the body is read --------------------------------------------------------------


def head_only(port: int, target: str, headers: dict[str, str]) -> socket.socket:
    """A PUT head declaring a body that is never sent."""
    lines = [
        f"PUT {target} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


@pytest.mark.parametrize("target", ["/transform", "/metadata", "/pipeline"])
@pytest.mark.parametrize(
    "framing",
    [
        {"Content-Length": str(LIMIT + 1)},  # over the limit: 401, not 413
        {"Content-Length": str(LIMIT)},  # within it, but never sent
        {"Content-Length": str(10**12)},
        {"Transfer-Encoding": "chunked"},  # an endless chunked body
        {"Content-Length": str(LIMIT), "Expect": "100-continue"},  # no 100 Continue
        {"Content-Length": str(LIMIT + 1), "Content-Type": MULTIPART},
    ],
    ids=["over-limit", "within-limit", "huge", "chunked", "expect", "multipart"],
)
def test_refused_before_the_body_is_read(
    server: ServerProcess, target: str, framing: dict[str, str]
) -> None:
    """The answer comes while the body has not even been sent (a server that read it first
    would wait for the body deadline), and the connection is closed, not drained."""
    with head_only(server.port, target, framing) as sock:
        response = read_response(sock, "PUT")
        assert response.status == 401, response.body
        assert response.body.decode() == REFUSED
        assert response.headers["Connection"] == "close"
        assert closed_by_peer(sock, timeout=10)


def test_an_authorised_body_still_has_its_limits(server: ServerProcess) -> None:
    with head_only(server.port, "/transform", {"Content-Length": str(LIMIT + 1), **bearer()}) as s:
        assert read_response(s, "PUT").status == 413
    sock = head_only(
        server.port,
        "/metadata",
        {"Content-Length": str(len(JPEG)), "Expect": "100-continue", **bearer()},
    )
    with sock:
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(JPEG)
        response = read_response(sock, "PUT")
        assert response.status == 200 and json.loads(response.body)["format"] == "jpeg"


def test_an_unauthorised_request_with_a_small_body_keeps_no_state(server: ServerProcess) -> None:
    """A refused upload that was sent whole (one packet) is answered cleanly too, and the
    next request (a new connection) is served."""
    assert_401(raw_request(server.port, "PUT", "/transform", JPEG))
    assert raw_request(server.port, "PUT", "/transform", JPEG, bearer()).status == 200


# --- what tokens do not govern ------------------------------------------------------------


def test_get_routes_and_healthz_need_no_token(server: ServerProcess, origin: Origin) -> None:
    url = quote(origin.url(f"/img/{SMALL_JPEG}"), safe="")
    assert raw_request(server.port, "GET", f"/transform?url={url}&width=8").status == 200
    assert raw_request(server.port, "HEAD", f"/metadata?url={url}").status == 200
    assert raw_request(server.port, "GET", "/healthz").status == 200
    not_found = raw_request(server.port, "PUT", "/transform/", JPEG)  # no such route
    assert (not_found.status, not_found.text) == (404, "404 Not Found")
    assert raw_request(server.port, "POST", "/transform", JPEG).status == 404


def test_signing_alone_leaves_put_routes_open() -> None:
    with ServerProcess([], {"SIGNING_KEYS": KEY_NEW}) as proc:
        response = raw_request(proc.port, "PUT", "/transform?width=8&strict=1", JPEG)
        assert response.status == 200, response.text
