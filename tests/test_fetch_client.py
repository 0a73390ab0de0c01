"""The fetch client in-process, against the loopback origin (fetch-and-security.md).

A "public" host name is simulated with an injected lookup (`public.test` → 127.0.0.1) and a
policy that treats exactly 127.0.0.1 as public and applies the real rules to everything
else. A trap listener on 127.0.0.2 (same port) shows where a rebinding or redirect would
have led: nothing may ever connect to it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import gzip
import ssl
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from imaged.errors import FetchError
from imaged.fetch import FetchResult, NotModified
from imaged.fetch.client import Fetcher
from imaged.fetch.hosts import compile_allowed_hosts
from imaged.fetch.pinning import PinnedResolver, pinned
from imaged.fetch.ssrf import blocked_reason
from imaged.log import set_request_id
from tests.fetch_origin import SMALL_JPEG, SMALL_PNG, Origin, Resource, Trap
from tests.serverproc import CORPUS

JPEG = (CORPUS / SMALL_JPEG).read_bytes()
PNG = (CORPUS / SMALL_PNG).read_bytes()


def only_origin_is_public(address: str) -> str | None:
    return None if address == "127.0.0.1" else blocked_reason(address)


class Lookup:
    """Records every lookup; answers from a table, or from a list of successive answers."""

    def __init__(self, answers: dict[str, list[Sequence[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        answers = self.answers.get(host)
        if not answers:
            raise OSError(f"unknown host {host}")
        return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as running:
        yield running


@pytest.fixture
def trap(origin: Origin) -> Iterator[Trap]:
    with Trap("127.0.0.2", origin.port) as running:
        yield running


def q(**params: str) -> str:
    return urlencode(params)


def public(origin: Origin, path: str, host: str = "public.test") -> str:
    return f"http://{host}:{origin.port}{path}"


def fetcher(lookup: Lookup | None = None, **kwargs: object) -> Fetcher:
    kwargs.setdefault("body_limit", 1_000_000)
    kwargs.setdefault("policy", only_origin_is_public)
    if lookup is not None:
        kwargs["lookup"] = lookup
    return Fetcher(**kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def client() -> AsyncIterator[Fetcher]:
    f = fetcher(Lookup({"public.test": [["127.0.0.1"]]}))
    yield f
    await f.close()


async def expect(f: Fetcher, url: str, status: int, message: str) -> None:
    with pytest.raises(FetchError) as caught:
        await f.fetch(url)
    assert (caught.value.status, caught.value.message) == (status, message)


# --- pinning: the checked address is the connected address -------------------------------


async def test_a_rebinding_resolver_is_asked_once_and_its_first_answer_is_used(
    origin: Origin, trap: Trap
) -> None:
    lookup = Lookup({"public.test": [["127.0.0.1"], ["127.0.0.2"]]})
    f = fetcher(lookup)
    try:
        origin.reset()
        assert (await f.fetch(public(origin, f"/img/{SMALL_JPEG}"))).body == JPEG
        assert lookup.calls == ["public.test"]
        assert origin.requests[0].headers["Host"] == f"public.test:{origin.port}"
        # The next request resolves again, gets the private answer and is refused.
        await expect(
            f,
            public(origin, f"/img/{SMALL_JPEG}"),
            403,
            "fetch: host resolves to private IP (Loopback)",
        )
        assert lookup.calls == ["public.test", "public.test"]
        assert len(origin.requests) == 1
        assert trap.connections == 0
    finally:
        await f.close()


async def test_every_resolved_address_is_checked_before_connecting(
    origin: Origin, trap: Trap
) -> None:
    for answer, reason in [
        (["127.0.0.1", "10.0.0.1"], "Private network"),
        (["127.0.0.1", "127.0.0.2"], "Loopback"),
        (["::1", "127.0.0.1"], "Loopback"),
        (["127.0.0.1", "169.254.169.254"], "Link-local"),
        (["127.0.0.1", "::ffff:7f00:2"], "IPv4-mapped Loopback"),
        (["127.0.0.1", "garbage"], "Unrecognised address"),
    ]:
        f = fetcher(Lookup({"public.test": [answer]}))
        with origin.untouched():
            await expect(
                f,
                public(origin, f"/img/{SMALL_JPEG}"),
                403,
                f"fetch: host resolves to private IP ({reason})",
            )
        await f.close()
    assert trap.connections == 0


async def test_redirect_chains_resolve_each_hop_once(origin: Origin) -> None:
    lookup = Lookup({"public.test": [["127.0.0.1"]]})
    f = fetcher(lookup)
    try:
        origin.reset()
        assert (await f.fetch(public(origin, "/chain/3"))).body == JPEG
        assert lookup.calls == ["public.test"] * 4
        assert origin.paths == [
            "/chain/3",
            f"/chain/2?name={SMALL_JPEG}",
            f"/chain/1?name={SMALL_JPEG}",
            f"/chain/0?name={SMALL_JPEG}",
        ]
    finally:
        await f.close()


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://10.0.0.1/x", "Private network"),
        ("http://169.254.169.254/latest/meta-data/", "Link-local"),
        ("http://127.0.0.2:{port}/x", "Loopback"),
        ("http://0x7f000002:{port}/x", "Loopback"),
        ("http://2130706434:{port}/x", "Loopback"),
        ("http://127.2:{port}/x", "Loopback"),
        ("http://0177.0.0.2:{port}/x", "Loopback"),
        ("http://[::1]:{port}/x", "Loopback"),
        ("http://[::ffff:127.0.0.2]:{port}/x", "IPv4-mapped Loopback"),
        ("http://[::127.0.0.2]:{port}/x", "IPv4-compatible Loopback"),
        ("http://0:{port}/x", "Current network"),
        ("http://[::]:{port}/x", "Unspecified"),
        ("http://localhost:{port}/x", "Loopback"),
        ("http://rebind.test:{port}/x", "Loopback"),
    ],
)
async def test_a_redirect_from_a_public_host_to_a_private_one_is_refused(
    origin: Origin, trap: Trap, target: str, reason: str
) -> None:
    lookup = Lookup(
        {
            "public.test": [["127.0.0.1"]],
            "localhost": [["::1", "127.0.0.1"]],
            "rebind.test": [["127.0.0.2"]],
        }
    )
    f = fetcher(lookup)
    try:
        origin.reset()
        location = target.format(port=origin.port)
        url = public(origin, "/redirect?" + q(to=location, status="307"))
        await expect(f, url, 403, f"fetch: host resolves to private IP ({reason})")
        assert len(origin.requests) == 1
        assert trap.connections == 0
    finally:
        await f.close()


async def test_the_pinned_resolver_never_resolves_by_itself() -> None:
    resolver = PinnedResolver()
    with pytest.raises(OSError):
        await resolver.resolve("public.test", 80)
    with pinned("public.test", ["127.0.0.1", "::1"]):
        results = await resolver.resolve("public.test", 80)
        assert [r["host"] for r in results] == ["127.0.0.1", "::1"]
        assert all(r["hostname"] == "public.test" and r["port"] == 80 for r in results)
        with pytest.raises(OSError):
            await resolver.resolve("other.test", 80)
    with pytest.raises(OSError):
        await resolver.resolve("public.test", 80)


# --- TLS keeps the host name for SNI and certificate checks -------------------------------


def _certificate(tmp: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp / "cert.pem").write_bytes(cert_pem)
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


async def test_https_to_a_pinned_address_verifies_the_original_host_name(
    tmp_path: Path,
) -> None:
    server_ctx, client_ctx = _certificate(tmp_path, "public.test")
    sni: list[str | None] = []

    def record_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        sni.append(name)

    server_ctx.sni_callback = record_sni
    with Origin(ssl_context=server_ctx) as tls_origin:
        lookup = Lookup({"public.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})
        f = fetcher(lookup, ssl_context=client_ctx)
        try:
            url = f"https://public.test:{tls_origin.port}/img/{SMALL_PNG}"
            assert (await f.fetch(url)).body == PNG
            assert sni == ["public.test"]
            assert tls_origin.requests[0].headers["Host"] == f"public.test:{tls_origin.port}"
            # The certificate is for public.test only: another name at the same address fails.
            await expect(
                f,
                f"https://other.test:{tls_origin.port}/img/{SMALL_PNG}",
                502,
                "fetch: unable to make request",
            )
            # An IP literal is not a name the certificate covers either.
            plain = fetcher(ssl_context=client_ctx)
            await expect(
                plain, tls_origin.url(f"/img/{SMALL_PNG}"), 502, "fetch: unable to make request"
            )
            await plain.close()
        finally:
            await f.close()


# --- allow-list ---------------------------------------------------------------------------


async def test_allow_list_on_every_hop_before_the_lookup(origin: Origin) -> None:
    lookup = Lookup({"public.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})
    f = fetcher(lookup, allowed=compile_allowed_hosts(r"^public\.test$"))
    try:
        origin.reset()
        # The explicit port is not part of the matched text.
        assert (await f.fetch(public(origin, f"/img/{SMALL_JPEG}"))).body == JPEG
        to_other = public(origin, "/redirect?" + q(to=public(origin, "/x", "other.test")))
        await expect(f, to_other, 403, "fetch: host is not allowed")
        await expect(f, public(origin, "/x", "other.test"), 403, "fetch: host is not allowed")
        assert "other.test" not in lookup.calls
        assert len(origin.requests) == 2
    finally:
        await f.close()


# --- outbound request ----------------------------------------------------------------------


async def test_request_headers_cookies_and_credentials(origin: Origin, client: Fetcher) -> None:
    origin.reset()
    assert (await client.fetch(public(origin, "/set-cookie"))).body == PNG
    assert (await client.fetch(public(origin, "/echo"))).body == PNG
    first, second, third = origin.requests
    for seen in (first, second, third):
        assert seen.headers["User-Agent"] == "imaged/0.2.3"
        assert seen.headers["Accept-Encoding"] == "identity"
        assert "Cookie" not in seen.headers
    assert set(first.headers) == {"Host", "User-Agent", "Accept", "Accept-Encoding"}
    origin.reset()
    url = f"http://us%40er:p%20w@public.test:{origin.port}/echo"
    assert (await client.fetch(url)).body == PNG
    auth = origin.requests[0].headers["Authorization"]
    assert base64.b64decode(auth.removeprefix("Basic ")) == b"us@er:p w"


async def test_environment_proxies_are_ignored(
    origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Trap("127.0.0.2", 0) as proxy:
        proxy_url = f"http://127.0.0.2:{proxy.port}"
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy_url)
        f = fetcher(Lookup({"public.test": [["127.0.0.1"]]}))
        try:
            assert (await f.fetch(public(origin, f"/img/{SMALL_JPEG}"))).body == JPEG
        finally:
            await f.close()
        assert proxy.connections == 0


# --- statuses and redirects ----------------------------------------------------------------


@pytest.mark.parametrize("status", ["301", "302", "303", "307", "308"])
async def test_redirect_statuses(origin: Origin, client: Fetcher, status: str) -> None:
    url = public(origin, "/redirect?" + q(status=status, to=f"/img/{SMALL_PNG}"))
    assert (await client.fetch(url)).body == PNG


@pytest.mark.parametrize("status", ["300", "304", "305", "306"])
async def test_other_3xx_are_final_even_with_a_location(
    origin: Origin, client: Fetcher, status: str
) -> None:
    origin.reset()
    url = public(origin, "/redirect?" + q(status=status, to=f"/img/{SMALL_PNG}"))
    await expect(client, url, 502, f"fetch: received status {status}")
    assert len(origin.requests) == 1


async def test_redirect_limits(origin: Origin, client: Fetcher) -> None:
    origin.reset()
    assert (await client.fetch(public(origin, "/chain/10"))).body == JPEG
    assert len(origin.requests) == 11
    origin.reset()
    await expect(client, public(origin, "/chain/11"), 502, "fetch: too many redirects")
    assert len(origin.requests) == 11
    origin.reset()
    await expect(client, public(origin, "/loop"), 502, "fetch: too many redirects")
    assert origin.paths == ["/loop"] * 11


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({}, 502, "fetch: redirect response missing location header"),
        ({"to": ""}, 502, "fetch: redirect response missing location header"),
        ({"to": "http://"}, 502, "fetch: invalid redirect location"),
        ({"to": "http://[::1"}, 502, "fetch: invalid redirect location"),
        ({"to": "ftp://public.test/x"}, 400, "fetch: only http and https URLs are supported"),
        ({"to": "file:///etc/passwd"}, 400, "fetch: only http and https URLs are supported"),
    ],
)
async def test_bad_redirects(
    origin: Origin, client: Fetcher, query: dict[str, str], status: int, message: str
) -> None:
    await expect(client, public(origin, "/redirect?" + q(**query)), status, message)


async def test_relative_redirects(origin: Origin, client: Fetcher) -> None:
    for location in [
        f"/img/{SMALL_PNG}",
        f"img/{SMALL_PNG}",
        f"//public.test:{origin.port}/img/{SMALL_PNG}",
    ]:
        assert (await client.fetch(public(origin, "/redirect?" + q(to=location)))).body == PNG


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("404", 404, "fetch: not found"),
        ("500", 502, "fetch: received status 500"),
        ("503", 502, "fetch: received status 503"),
        ("400", 502, "fetch: received status 400"),
        ("403", 502, "fetch: received status 403"),
        ("410", 502, "fetch: received status 410"),
        ("204", 502, "fetch: no body in response"),
        ("205", 502, "fetch: no body in response"),
    ],
)
async def test_final_statuses(
    origin: Origin, client: Fetcher, code: str, status: int, message: str
) -> None:
    await expect(client, public(origin, f"/status/{code}"), status, message)


async def test_other_2xx_bodies_are_used(origin: Origin, client: Fetcher) -> None:
    assert (await client.fetch(public(origin, "/status/203"))).body == b"status 203"


# --- the result: the body and the final response's validators and type --------------------

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"


async def test_result_carries_the_origins_etag_last_modified_and_content_type(
    origin: Origin, client: Fetcher
) -> None:
    headers = {
        "ETag": '"v1-abc"',
        "Last-Modified": LAST_MODIFIED,
        "Content-Type": "image/png; charset=binary",  # kept as sent, not parsed
    }
    result = await client.fetch(public(origin, "/headers?" + q(**headers)))
    assert result == FetchResult(PNG, '"v1-abc"', LAST_MODIFIED, "image/png; charset=binary")
    # A weak validator is passed on verbatim: revalidation must send it back unchanged.
    weak = await client.fetch(public(origin, "/headers?" + q(ETag='W/"v2"')))
    assert (weak.etag, weak.last_modified, weak.content_type) == ('W/"v2"', None, None)


async def test_absent_headers_are_none(origin: Origin, client: Fetcher) -> None:
    result = await client.fetch(public(origin, "/headers"))
    assert result == FetchResult(body=PNG, etag=None, last_modified=None, content_type=None)


async def test_headers_are_those_of_the_final_response_not_a_redirect(
    origin: Origin, client: Fetcher
) -> None:
    # The redirect itself is `text/plain` (aiohttp adds it); the image response has no type.
    final = "/headers?" + q(ETag='"final"')
    result = await client.fetch(public(origin, "/redirect?" + q(to=final)))
    assert result == FetchResult(PNG, '"final"', None, None)
    # An ordinary aiohttp response: its own Content-Type, no validators.
    plain = await client.fetch(public(origin, f"/img/{SMALL_JPEG}"))
    assert plain == FetchResult(JPEG, None, None, "application/octet-stream")


# --- bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", ["0", "1"])
async def test_size_limit_exactly(origin: Origin, chunked: str) -> None:
    f = fetcher(Lookup({"public.test": [["127.0.0.1"]]}), body_limit=100_000)
    try:
        ok = public(origin, "/bytes?" + q(size="100000", chunked=chunked))
        assert (await f.fetch(ok)).body == b"x" * 100_000
        over = public(origin, "/bytes?" + q(size="100001", chunked=chunked))
        await expect(f, over, 400, "fetch: response body size limit of 100000 bytes exceeded")
        huge = public(origin, "/bytes?" + q(size="50000000", chunked=chunked))
        await expect(f, huge, 400, "fetch: response body size limit of 100000 bytes exceeded")
    finally:
        await f.close()


async def test_chunked_and_empty_bodies(origin: Origin, client: Fetcher) -> None:
    assert (await client.fetch(public(origin, f"/chunked/{SMALL_JPEG}"))).body == JPEG
    assert (await client.fetch(public(origin, "/bytes?size=0"))).body == b""
    assert (await client.fetch(public(origin, "/bytes?size=0&chunked=1"))).body == b""


async def test_short_bodies(origin: Origin, client: Fetcher) -> None:
    url = public(origin, "/short?declared=5000&actual=1234")
    await expect(client, url, 502, "fetch: received 1234 bytes but Content-Length was 5000")
    url = public(origin, "/short?declared=5000&actual=0")
    await expect(client, url, 502, "fetch: received 0 bytes but Content-Length was 5000")


async def test_encoded_bodies_are_not_decoded(origin: Origin) -> None:
    f = fetcher(Lookup({"public.test": [["127.0.0.1"]]}), body_limit=100_000)
    try:
        assert (await f.fetch(public(origin, f"/gzip/{SMALL_PNG}"))).body == gzip.compress(PNG)
        # 5 MB of zeros compress to a few KB: the limit applies to the bytes received.
        body = (await f.fetch(public(origin, "/gzip-zeros?size=5000000"))).body
        assert len(body) < 100_000 and gzip.decompress(body) == bytes(5_000_000)
    finally:
        await f.close()


async def test_timeouts_cover_the_whole_hop(origin: Origin) -> None:
    f = fetcher(Lookup({"public.test": [["127.0.0.1"]]}), timeout=0.5)
    try:
        await expect(
            f, public(origin, "/slow-headers?delay=2"), 502, "fetch: unable to make request"
        )
        # Bytes keep arriving, but the hop as a whole may take only `timeout`.
        trickle = public(origin, "/trickle?size=1000&interval=0.05&seconds=3")
        await expect(f, trickle, 502, "fetch: error reading response body")
        assert (await f.fetch(public(origin, "/slow-headers?delay=0.1"))).body == JPEG
    finally:
        await f.close()


# --- without SSRF protection ---------------------------------------------------------------


async def test_without_protection_names_resolve_normally(origin: Origin) -> None:
    lookup = Lookup({"public.test": [["127.0.0.1"]]})
    f = fetcher(lookup, ssrf_protection=False, policy=blocked_reason)
    try:
        assert (await f.fetch(origin.url(f"/img/{SMALL_JPEG}"))).body == JPEG
        assert (await f.fetch(public(origin, f"/img/{SMALL_JPEG}"))).body == JPEG
        await expect(f, public(origin, "/x", "gone.test"), 502, "fetch: unable to make request")
        assert "gone.test" in lookup.calls
    finally:
        await f.close()


async def test_dns_failure_with_protection(origin: Origin, client: Fetcher) -> None:
    await expect(
        client, public(origin, "/x", "gone.test"), 400, "fetch: DNS resolution failed for gone.test"
    )


async def test_connection_refused(client: Fetcher) -> None:
    from tests.serverproc import free_port

    f = fetcher(ssrf_protection=False)
    try:
        await expect(f, f"http://127.0.0.1:{free_port()}/x", 502, "fetch: unable to make request")
    finally:
        await f.close()


def test_from_settings() -> None:
    from imaged.settings import Settings

    f = Fetcher.from_settings(
        Settings(body_limit=1234, allowed_hosts=r"^a\.test$", disable_ssrf_protection=True)
    )
    assert f.body_limit == 1234 and not f.ssrf_protection
    assert f.allowed is not None and f.allowed.allows("a.test")
    assert Fetcher.from_settings(Settings()).ssrf_protection


# --- what the metrics and the logs see ------------------------------------------------------


class Outcomes:
    """A `FetchObserver` that keeps each outcome and duration."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float]] = []

    def fetch_done(self, outcome: str, seconds: float) -> None:
        self.seen.append((outcome, seconds))


async def test_the_observer_hears_each_fetch_outcome(origin: Origin) -> None:
    outcomes = Outcomes()
    lookup = Lookup({"public.test": [["127.0.0.1"]], "private.test": [["10.0.0.1"]]})
    f = fetcher(
        lookup,
        timeout=0.5,
        observer=outcomes,
        allowed=compile_allowed_hosts(r"\.test$"),
    )
    cases = [
        (public(origin, f"/img/{SMALL_JPEG}"), "ok"),
        (public(origin, "/status/404"), "http_error"),
        (public(origin, "/status/500"), "http_error"),
        (public(origin, "/status/204"), "http_error"),
        (public(origin, "/chain/20"), "http_error"),  # too many redirects
        (public(origin, "/x", "private.test"), "blocked"),  # SSRF
        (f"http://127.0.0.1:{origin.port}/x", "blocked"),  # a literal loopback address
        (public(origin, "/x", "elsewhere.example"), "blocked"),  # the allow-list
        (public(origin, "/bytes?size=1000001"), "too_large"),
        (public(origin, "/slow-headers?delay=2"), "timeout"),
        (public(origin, "/short?declared=5000&actual=10"), "error"),
        (public(origin, "/x", "gone.test"), "error"),  # no such host
        ("ftp://public.test/x", "error"),  # not even a fetchable URL
    ]
    try:
        for url, _ in cases:
            with contextlib.suppress(FetchError):
                await f.fetch(url)
    finally:
        await f.close()
    assert [outcome for outcome, _ in outcomes.seen] == [expected for _, expected in cases]
    assert all(seconds >= 0 for _, seconds in outcomes.seen)
    slow = dict(zip([e for _, e in cases], [s for _, s in outcomes.seen], strict=True))
    assert slow["timeout"] >= 0.45  # the whole fetch is timed


async def test_the_request_id_of_the_log_context_goes_to_the_origin(
    origin: Origin, client: Fetcher
) -> None:
    async def fetch_as(request_id: str | None) -> None:
        if request_id is not None:
            set_request_id(request_id)  # this task's context only
        await client.fetch(public(origin, "/redirect?" + q(to=public(origin, "/echo"))))

    origin.reset()
    await asyncio.create_task(fetch_as("req-42.a:b_c"))
    await asyncio.create_task(fetch_as(None))
    ids = [{k.lower(): v for k, v in seen.headers.items()} for seen in origin.requests]
    assert [headers.get("x-request-id") for headers in ids] == [
        "req-42.a:b_c",
        "req-42.a:b_c",  # every hop
        None,  # and only when there is one
        None,
    ]


# --- revalidation: conditional requests, and every guarantee still holds -----------------

MODIFIED = "Sun, 06 Nov 1994 08:49:37 GMT"


async def test_revalidation_sends_the_validators_and_maps_304(
    origin: Origin, client: Fetcher
) -> None:
    url = public(origin, "/res/reval")
    origin.put("reval", Resource(JPEG, '"v1"', MODIFIED))
    origin.reset()
    outcome = await client.revalidate(url, '"v1"', MODIFIED)
    assert outcome == NotModified('"v1"', MODIFIED)
    sent = origin.requests[0].headers
    assert (sent["If-None-Match"], sent["If-Modified-Since"]) == ('"v1"', MODIFIED)
    assert await client.revalidate(url, None, MODIFIED) == NotModified('"v1"', MODIFIED)
    assert "If-None-Match" not in origin.requests[1].headers
    origin.put("reval", Resource(PNG, '"v2"', MODIFIED))
    changed = await client.revalidate(url, '"v1"', None)
    assert isinstance(changed, FetchResult)
    assert (changed.body, changed.etag) == (PNG, '"v2"')
    with pytest.raises(ValueError):
        await client.revalidate(url, None, None)


async def test_only_a_revalidation_sends_conditional_headers_or_accepts_304(
    origin: Origin, client: Fetcher
) -> None:
    origin.put("plain304", Resource(JPEG, '"p"', MODIFIED))
    origin.reset()
    result = await client.fetch(public(origin, "/res/plain304"))
    assert result.body == JPEG
    assert not {"If-None-Match", "If-Modified-Since"} & set(origin.requests[0].headers)
    await expect(client, public(origin, "/status/304"), 502, "fetch: received status 304")


async def test_revalidation_follows_redirects_with_every_hop_checked(
    origin: Origin, trap: Trap
) -> None:
    lookup = Lookup({"public.test": [["127.0.0.1"]], "rebind.test": [["127.0.0.2"]]})
    f = fetcher(lookup)
    try:
        origin.put("hops", Resource(JPEG, '"h"'))
        origin.reset()
        url = public(origin, "/redirect?" + q(to="/res/hops", status="302"))
        assert await f.revalidate(url, '"h"', None) == NotModified('"h"', None)
        assert [seen.headers["If-None-Match"] for seen in origin.requests] == ['"h"', '"h"']
        # A redirect to a private address is refused for a revalidation too, unconnected.
        private = public(origin, "/redirect?" + q(to=f"http://rebind.test:{origin.port}/x"))
        with pytest.raises(FetchError) as caught:
            await f.revalidate(private, '"h"', None)
        assert caught.value.message == "fetch: host resolves to private IP (Loopback)"
        assert trap.connections == 0
    finally:
        await f.close()


async def test_revalidation_connects_to_the_checked_address_only(
    origin: Origin, trap: Trap
) -> None:
    lookup = Lookup({"public.test": [["127.0.0.1"], ["127.0.0.2"]]})
    f = fetcher(lookup)
    try:
        origin.put("pinned", Resource(JPEG, '"p"'))
        url = public(origin, "/res/pinned")
        assert await f.revalidate(url, '"p"', None) == NotModified('"p"', None)
        with pytest.raises(FetchError) as caught:  # the rebinding answer is checked, refused
            await f.revalidate(url, '"p"', None)
        assert caught.value.status == 403
        assert lookup.calls == ["public.test", "public.test"] and trap.connections == 0
    finally:
        await f.close()


async def test_revalidation_obeys_the_allow_list(origin: Origin) -> None:
    lookup = Lookup({"public.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})
    f = fetcher(lookup, allowed=compile_allowed_hosts(r"^public\.test$"))
    try:
        origin.reset()
        with pytest.raises(FetchError) as caught:
            await f.revalidate(public(origin, "/res/x", "other.test"), '"x"', None)
        assert caught.value.message == "fetch: host is not allowed"
        assert origin.requests == [] and lookup.calls == []
    finally:
        await f.close()
