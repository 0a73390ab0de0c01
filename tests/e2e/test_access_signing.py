"""Signed GET URLs end to end (access.md): the real server with two signing keys and an API
token, a loopback origin that counts every connection, and signatures computed in the test
with plain `hmac` (tests/access_support.py). Requests go over raw sockets, so the request
target is sent byte for byte (an HTTP library would normalise percent-escapes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
from tests.access_support import (
    FAR_FUTURE,
    KEY_NEW,
    KEY_OLD,
    KEY_OTHER,
    KEYS,
    TOKEN,
    TOKENS,
    mac,
    signed,
    vectors,
)
from tests.fetch_origin import SMALL_JPEG, SMALL_PNG, Origin
from tests.hardening import (
    TEXT,
    RawResponse,
    raw_request,
    read_raw_response,
    request_bytes,
    send_request,
)
from tests.serverkit import read_by_peer
from tests.serverproc import CORPUS, ServerProcess
from tests.waiting import wait_until

JPEG = (CORPUS / SMALL_JPEG).read_bytes()
ACCESS = {"SIGNING_KEYS": KEYS, "API_TOKENS": TOKENS}
FETCH = ["--enable-fetch", "--disable-ssrf-protection", "--concurrency", "2"]
MISSING, INVALID, BAD_EXPIRES, EXPIRED = (
    "missing signature",
    "invalid signature",
    "invalid expires",
    "signature expired",
)


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as running:
        yield running


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess(FETCH, ACCESS) as proc:
        yield proc


def source(origin: Origin, path: str = f"/img/{SMALL_JPEG}") -> str:
    """The `url` value of an origin resource, percent-encoded as clients send it."""
    return quote(origin.url(path), safe="")


def call(
    server: ServerProcess, target: str, method: str = "GET", headers: dict[str, str] | None = None
) -> RawResponse:
    return raw_request(server.port, method, target.encode(), headers=headers)


def assert_refused(response: RawResponse, text: str, method: str = "GET") -> None:
    assert response.status == 403, (response.status, response.text)
    assert response.text == (text if method == "GET" else "")
    assert response.header("Content-Type") == TEXT
    assert response.header("Cache-Control") == "no-store"
    assert response.header("Vary") is None
    for name in ("X-Imaged-Warnings", "X-Image-Width", "X-Response-Time-Ms", "WWW-Authenticate"):
        assert response.header(name) is None, name


def assert_refused_untouched(
    server: ServerProcess, origin: Origin, target: str, text: str, method: str = "GET"
) -> None:
    """Refused with `text`, and the origin was never contacted."""
    with origin.untouched():
        assert_refused(call(server, target, method), text, method)


# --- served -------------------------------------------------------------------------------


def test_signed_transform_and_metadata_are_served(server: ServerProcess, origin: Origin) -> None:
    origin.reset()
    transform = call(server, signed(f"/transform?url={source(origin)}&width=40&format=png"))
    assert transform.status == 200, transform.text
    assert transform.header("Content-Type") == "image/png"
    assert transform.header("X-Image-Width") == "40"
    assert transform.header("X-Imaged-Warnings") is None  # `sig` is a known parameter
    metadata = call(server, signed(f"/metadata?url={source(origin)}&strict=1"))
    assert metadata.status == 200, metadata.text
    assert metadata.json()["format"] == "jpeg"
    assert origin.paths == [f"/img/{SMALL_JPEG}"] * 2


def test_every_configured_key_verifies_and_no_other(server: ServerProcess, origin: Origin) -> None:
    target = f"/metadata?url={source(origin)}"
    for key in (KEY_NEW, KEY_OLD):
        assert call(server, signed(target, key)).status == 200, key
    assert_refused_untouched(server, origin, signed(target, KEY_OTHER), INVALID)


def test_dropping_the_old_key_ends_its_urls(origin: Origin) -> None:
    """Rotation's last step: with only the new key, old URLs are refused, new ones not."""
    target = f"/metadata?url={source(origin)}"
    with ServerProcess(FETCH, {"SIGNING_KEYS": KEY_NEW}) as rotated:
        assert call(rotated, signed(target, KEY_NEW)).status == 200
        with origin.untouched():
            assert_refused(call(rotated, signed(target, KEY_OLD)), INVALID)


def test_expires_in_the_future_is_served(server: ServerProcess, origin: Origin) -> None:
    soon = int(time.time()) + 120
    for expires in (soon, FAR_FUTURE, 999999999999):
        target = signed(f"/metadata?url={source(origin)}&expires={expires}&strict=true")
        response = call(server, target)
        assert response.status == 200, (expires, response.text)


def test_head_shares_the_signature(server: ServerProcess, origin: Origin) -> None:
    target = signed(f"/transform?url={source(origin)}&width=30")
    get, head = call(server, target), call(server, target, "HEAD")
    assert head.status == get.status == 200 and head.body == b""
    for name in ("Content-Type", "X-Image-Width", "X-Image-Height"):
        assert head.header(name) == get.header(name), name
    # Another last character (an "A" there is a valid signature's 1 in 16: not tampered).
    tampered = target[:-1] + ("B" if target[-1] != "B" else "C")
    assert_refused_untouched(server, origin, tampered, INVALID, "HEAD")
    assert_refused_untouched(server, origin, f"/transform?url={source(origin)}", MISSING, "HEAD")


def test_other_get_routes_need_no_signature(server: ServerProcess) -> None:
    for method in ("GET", "HEAD"):
        assert call(server, "/healthz", method).status == 200
    assert call(server, "/transform/").status == 404  # unknown routes stay 404
    assert call(server, "/pipeline").status == 404
    assert call(server, signed("/healthz?width=1")).status == 200


def test_a_valid_api_token_replaces_the_signature(server: ServerProcess, origin: Origin) -> None:
    target = f"/transform?url={source(origin)}&width=20"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert call(server, target, headers=bearer).status == 200
    assert call(server, target, "HEAD", headers=bearer).status == 200
    wrong = {"Authorization": f"Bearer {TOKEN}x"}
    with origin.untouched():
        assert_refused(call(server, target, headers=wrong), MISSING)
    assert call(server, signed(target), headers=wrong).status == 200  # the signature counts


# --- the spec's table, row by row ---------------------------------------------------------


def test_missing_signature(server: ServerProcess, origin: Origin) -> None:
    url = source(origin)
    good = mac(KEY_NEW, f"/transform?url={url}".encode())
    for target in (
        f"/transform?url={url}",
        "/transform",
        "/metadata",
        f"/transform?sig={good}&url={url}",  # sig first
        f"/transform?url={url}&sig={good}&width=10",  # a parameter after sig
        f"/transform?url={url}&sig={good}&",
        f"/transform?url={url}&s%69g={good}",  # only `sig` as sent is the signature
    ):
        assert_refused_untouched(server, origin, target, MISSING)


def test_invalid_signature(server: ServerProcess, origin: Origin) -> None:
    target = f"/transform?url={source(origin)}&width=10"
    good = mac(KEY_NEW, target.encode())
    for sig in ("", "A" * 43, good[:-1], good + "A", good + "=", good.swapcase(), "%41" * 43):
        assert_refused_untouched(server, origin, f"{target}&sig={sig}", INVALID)
    assert_refused_untouched(server, origin, f"{target}&sig", INVALID)


@pytest.mark.parametrize(
    "raw", ["+1", "-1", "1.5", "1e3", "%201", "%31", "", "1234567890123", "0x1", "1%2C2"]
)
def test_invalid_expires(server: ServerProcess, origin: Origin, raw: str) -> None:
    target = signed(f"/metadata?url={source(origin)}&expires={raw}")
    assert_refused_untouched(server, origin, target, BAD_EXPIRES)


def test_expired(server: ServerProcess, origin: Origin) -> None:
    for expires in (1, int(time.time()) - 2, 1767225600):
        target = signed(f"/transform?url={source(origin)}&expires={expires}")
        assert_refused_untouched(server, origin, target, EXPIRED)


def test_checks_come_in_the_tables_order(server: ServerProcess, origin: Origin) -> None:
    """A forged signature is `invalid signature` whatever `expires` says; a valid one with
    a bad `expires` is `invalid expires` even when long past."""
    url = source(origin)
    assert_refused_untouched(
        server, origin, f"/metadata?url={url}&expires=1&sig={'A' * 43}", INVALID
    )
    assert_refused_untouched(
        server, origin, f"/metadata?url={url}&expires=x&sig={'A' * 43}", INVALID
    )
    assert_refused_untouched(server, origin, signed(f"/metadata?url={url}&expires=-1"), BAD_EXPIRES)


# --- nothing happens before the check -----------------------------------------------------


def test_refused_before_parameters_are_read(server: ServerProcess, origin: Origin) -> None:
    """Errors the parameters would give (400 strict, 400 missing url, 400 too many
    parameters, 414 too long) never come before the signature check."""
    too_many = "&".join(f"p{i}=1" for i in range(150))
    for target in (
        "/transform?width=abc&strict=1",
        "/metadata?exif=maybe&strict=1",
        "/transform?format=webp,png",  # would be negotiated: still no Vary on the 403
        "/transform",
        f"/transform?url={source(origin)}&{too_many}",
        f"/transform?url={'x' * 8100}",
    ):
        assert_refused_untouched(server, origin, target, MISSING)
        separator = "&" if "?" in target else "?"
        assert_refused_untouched(server, origin, f"{target}{separator}sig={'B' * 43}", INVALID)


def test_sig_and_expires_are_known_parameters(server: ServerProcess, origin: Origin) -> None:
    strict = call(server, signed(f"/transform?url={source(origin)}&strict=1&expires={FAR_FUTURE}"))
    assert strict.status == 200, strict.text
    lenient = call(server, signed(f"/transform?url={source(origin)}&bogus=1"))
    assert lenient.header("X-Imaged-Warnings") == "bogus: unknown parameter"


@pytest.mark.slow
def test_refused_without_waiting_for_a_permit(origin: Origin) -> None:
    """One permit held by a long transform, the queue full: a signed request is turned
    away with 503, a refused one still gets its 403 at once."""
    import pyvips

    flat = (pyvips.Image.black(4000, 3000, bands=3) + 90).cast("uchar").pngsave_buffer()
    blocker = request_bytes("PUT", b"/transform?blur=50", bytes(flat))
    args = ["--concurrency", "1", "--queue-limit", "1", *FETCH[:2]]
    with ServerProcess(args, {"SIGNING_KEYS": KEY_NEW}) as busy, ThreadPoolExecutor(2) as pool:
        held = [send_request(busy.port, blocker) for _ in range(2)]  # running + queued
        wait_until(lambda: all(read_by_peer(s) for s in held), "the server to read both")
        answers = [pool.submit(read_raw_response, sock, "PUT") for sock in held]
        target = f"/metadata?url={source(origin)}"
        assert call(busy, signed(target)).status == 503  # the queue is full
        with origin.untouched():
            assert_refused(call(busy, target), MISSING)
            assert_refused(call(busy, f"{target}&sig={'C' * 43}"), INVALID)
        assert not any(answer.done() for answer in answers)  # they still hold the slots
        assert [answer.result().status for answer in answers] == [200, 200]


# --- tampering with every part of a signed URL --------------------------------------------


def test_tampering_with_any_part_is_refused(server: ServerProcess, origin: Origin) -> None:
    url = source(origin)
    other = source(origin, f"/img/{SMALL_PNG}")
    original = f"/transform?url={url}&width=30&format=png&expires={FAR_FUTURE}"
    target = signed(original)
    sig = target.rsplit("&sig=", 1)[1]
    assert call(server, target).status == 200
    tampered = [
        target.replace("/transform", "/metadata"),  # the path
        target.replace("/transform", "/%74ransform"),  # the path's spelling
        target.replace(url, other),  # the source
        target.replace("127.0.0.1", "127.0.0.2"),
        target.replace("width=30", "width=31"),  # a value
        target.replace("width=30", "width=030"),
        target.replace("width=30", "Width=30"),  # a name
        target.replace("width=30&format=png", "format=png&width=30"),  # the order
        target.replace("&format=png", ""),  # a parameter removed
        target.replace("&width=30", "&width=30&blur=5"),  # a parameter added
        target.replace("&width=30", "&width=30&"),  # even an empty pair
        target.replace(f"expires={FAR_FUTURE}", f"expires={FAR_FUTURE + 1}"),  # the expiry
        target.replace(f"&expires={FAR_FUTURE}", ""),
        f"{original}&sig={sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}",  # the signature
        f"{original}&sig={sig[1:]}",
        f"{target}&sig={sig}",  # twice: the last one is checked, over a message with the first
    ]
    for changed in tampered:
        assert changed != target
        assert_refused_untouched(server, origin, changed, INVALID)
    for appended in (f"{target}&width=300", f"{target}&expires={FAR_FUTURE}", f"{target}&"):
        assert_refused_untouched(server, origin, appended, MISSING)


# --- percent-encoding: the bytes signed are the bytes checked ------------------------------


@pytest.mark.parametrize(
    ("signed_form", "variant", "origin_sees"),
    [
        # `+` is a space to the query parser (`right top`), and so is `%20`
        ("position=right+top", "position=right%20top", None),
        ("position=right+top", "position=right%2Btop", None),
        # inside the source URL: `%2B` is a literal plus there, `+` a space
        ("q%3Da%252Bb", "q%3Da%2Bb", "/echo?q=a%2Bb"),
        ("q%3D~x", "q%3D%7Ex", "/echo?q=~x"),
        ("q%3D%28x%29", "q%3D(x)", "/echo?q=(x)"),
        ("q%3D%C3%A9", "q%3D%c3%a9", "/echo?q=%C3%A9"),
        # a source URL carrying its own `?` and `&`
        ("a%3D1%26b%3D2", "a%3D1%26b=2", "/echo?a=1&b=2"),
    ],
)
def test_percent_encoding_is_signed_as_sent(
    server: ServerProcess, origin: Origin, signed_form: str, variant: str, origin_sees: str | None
) -> None:
    """The signed spelling is served; another spelling of (nearly) the same URL with the
    same `sig` is refused, whether or not it decodes to the same values."""
    echo = quote(origin.url("/echo"), safe="")
    if origin_sees is None:  # a transform parameter
        base = f"/transform?url={source(origin)}&width=20&height=20&fit=cover&"
    else:  # part of the source URL's own query
        base = f"/transform?width=20&url={echo}%3F"
    target = signed(base + signed_form)
    origin.reset()
    response = call(server, target)
    assert response.status == 200, response.text
    assert response.header("X-Imaged-Warnings") is None
    if origin_sees is not None:
        assert origin.paths == [origin_sees]
    sig = target.rsplit("&sig=", 1)[1]
    assert_refused_untouched(server, origin, f"{base}{variant}&sig={sig}", INVALID)


def test_a_raw_question_mark_in_the_query(server: ServerProcess, origin: Origin) -> None:
    """`?` is legal inside a query and only the first one ends the path: a source URL sent
    unencoded is signed and served as sent."""
    target = signed(f"/transform?url={origin.url('/echo')}?id=7&width=20")
    origin.reset()
    assert call(server, target).status == 200
    assert origin.paths == ["/echo?id=7"]
    assert_refused_untouched(server, origin, target.replace("?id=7", "%3Fid=7"), INVALID)


def test_an_absolute_form_target_signs_only_path_and_query(
    server: ServerProcess, origin: Origin
) -> None:
    target = signed(f"/metadata?url={source(origin)}")
    absolute = f"http://cdn.example:8080{target}"
    assert call(server, absolute).status == 200


# --- the published test vectors -----------------------------------------------------------


def test_the_published_vectors_are_accepted() -> None:
    """A server with both vector keys accepts every vector that has not expired: the
    answer comes from the allow-list (after the signature check), not from access control."""
    keys = ",".join(dict.fromkeys(v.key for v in vectors()))
    args = ["--enable-fetch", "--allowed-hosts", r"^never\.invalid$"]
    with ServerProcess(args, {"SIGNING_KEYS": keys}) as proc:
        for vector in vectors():
            response = call(proc, vector.signed)
            assert (response.status, response.text) == (403, "fetch: host is not allowed"), vector
            tampered = call(proc, vector.signed.replace("a.example", "b.example"))
            assert tampered.text == INVALID
