"""TLS and mTLS (config.md, Listening) with certificates generated here: a CA, a server
certificate for 127.0.0.1/::1/localhost, a client certificate from that CA and one from an
unrelated CA. mTLS clients without a certificate signed by the CA fail in the handshake."""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.serverkit import (
    LINE_TIME,
    Pki,
    Proc,
    closed_by_peer,
    connect,
    free_port,
    make_pki,
    read_response,
    run_cli_many,
)

HANDSHAKE = 2  # --header-timeout, which also bounds the TLS handshake


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_args(pki: Pki, port: int) -> list[str]:
    cert, key = str(pki.server_cert), str(pki.server_key)
    return ["-H", "127.0.0.1", "-p", str(port), "--tls-cert", cert, "--tls-key", key]


@pytest.fixture(scope="module")
def tls_server(pki: Pki) -> Iterator[tuple[Proc, int]]:
    port = free_port()
    with Proc(tls_args(pki, port)) as proc:
        yield proc, port
        assert " ERROR " not in proc.log(), proc.log()


@pytest.fixture(scope="module")
def mtls_server(pki: Pki) -> Iterator[tuple[Proc, int]]:
    port = free_port()
    args = [*tls_args(pki, port), "--mtls-ca", str(pki.ca), "--header-timeout", str(HANDSHAKE)]
    with Proc(args) as proc:
        yield proc, port
        assert " ERROR " not in proc.log(), proc.log()


def client_context(pki: Pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def https_get(port: int, context: ssl.SSLContext, host: str = "127.0.0.1") -> httpx.Response:
    with httpx.Client(verify=context, timeout=10) as client:
        return client.get(f"https://{host}:{port}/healthz")


def test_tls_serves_https(pki: Pki, tls_server: tuple[Proc, int]) -> None:
    proc, port = tls_server
    response = https_get(port, client_context(pki))
    assert response.status_code == 200 and response.http_version == "HTTP/1.1"
    assert response.json()["version"] == "0.2.3"
    assert f"INFO server listening tls=true mtls=false url=https://127.0.0.1:{port}" in proc.log()


def test_tls_alpn_is_http_1_1(pki: Pki, tls_server: tuple[Proc, int]) -> None:
    _, port = tls_server
    context = client_context(pki)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.selected_alpn_protocol() == "http/1.1"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(tls).status == 200


def test_plain_http_to_a_tls_port_gets_no_http_answer(tls_server: tuple[Proc, int]) -> None:
    _, port = tls_server
    with connect(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        try:
            answer = sock.recv(100)
        except ConnectionError:
            answer = b""
    assert not answer.startswith(b"HTTP/")


def test_tls_without_trusting_the_server_fails_on_the_client(tls_server: tuple[Proc, int]) -> None:
    _, port = tls_server
    with pytest.raises(httpx.ConnectError):
        https_get(port, ssl.create_default_context())  # system CAs do not know our CA


def test_mtls_accepts_a_client_certificate_signed_by_the_ca(
    pki: Pki, mtls_server: tuple[Proc, int]
) -> None:
    proc, port = mtls_server
    context = client_context(pki, pki.client_cert, pki.client_key)
    response = https_get(port, context)
    assert response.status_code == 200
    assert f"INFO server listening tls=true mtls=true url=https://127.0.0.1:{port}" in proc.log()


def handshake_and_request(port: int, context: ssl.SSLContext) -> bytes:
    """TLS 1.3 reports a refused client certificate after the client's side of the
    handshake, so try a request too; return what the server sent (b"" if it refused)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                return tls.recv(100)
        except (ssl.SSLError, ConnectionError):
            return b""


@pytest.mark.parametrize("client", ["none", "rogue"])
def test_mtls_rejects_clients_without_a_certificate_from_the_ca(
    pki: Pki, mtls_server: tuple[Proc, int], client: str
) -> None:
    _, port = mtls_server
    if client == "none":
        context = client_context(pki)
    else:
        context = client_context(pki, pki.rogue_client_cert, pki.rogue_client_key)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context.minimum_version = context.maximum_version = version
        assert handshake_and_request(port, context) == b"", version
        with pytest.raises(httpx.TransportError):
            https_get(port, context)


def test_read_deadlines_apply_to_tls(pki: Pki, mtls_server: tuple[Proc, int]) -> None:
    """A client that never completes the handshake is cut off; one that completes it but
    trickles its head gets 408 — both after --header-timeout (run side by side)."""
    _, port = mtls_server
    outcome: dict[str, object] = {}

    def stalled_handshake() -> None:
        with connect(("127.0.0.1", port)) as sock:  # TCP only, never says hello
            opened = time.monotonic()
            outcome["closed"] = closed_by_peer(sock, HANDSHAKE + 5)
            outcome["handshake_s"] = time.monotonic() - opened

    def trickled_head() -> None:
        context = client_context(pki, pki.client_cert, pki.client_key)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            opened = time.monotonic()
            tls.sendall(b"GET /healthz HTTP/1.1\r\n")
            answer = b""
            while chunk := tls.recv(4096):
                answer += chunk
            outcome["head"] = answer
            outcome["head_s"] = time.monotonic() - opened

    threads = [threading.Thread(target=f) for f in (stalled_handshake, trickled_head)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcome["closed"] is True
    assert float(outcome["handshake_s"]) < HANDSHAKE + 3
    head = outcome["head"]
    assert isinstance(head, bytes) and head.startswith(b"HTTP/1.1 408 "), head
    assert HANDSHAKE - 0.5 <= float(outcome["head_s"]) < HANDSHAKE + 3


def test_unusable_tls_files_abort_startup(pki: Pki, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    cert, key, bad = str(pki.server_cert), str(pki.server_key), str(garbage)
    cases = [
        ["--tls-cert", bad, "--tls-key", key],
        ["--tls-cert", cert, "--tls-key", str(pki.client_key)],  # not the certificate's key
        ["--tls-cert", cert, "--tls-key", key, "--mtls-ca", bad],
    ]
    results = run_cli_many([(["-H", "127.0.0.1", "-p", str(free_port()), *a], None) for a in cases])
    for result in results:
        assert result.returncode == 1, result
        last = result.stdout.splitlines()[-1]
        assert re.fullmatch(f"{LINE_TIME} FATAL Cannot load the (TLS|mTLS) .*", last), last
        assert "server listening" not in result.stdout
