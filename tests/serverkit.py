"""Helpers for the server/CLI tests: raw HTTP over TCP or unix sockets, socket states (what
the server has read, what it listens on) and a throw-away PKI for TLS/mTLS. The process
wrappers live in `tests.serverproc` and are re-exported here.
"""

from __future__ import annotations

import array
import datetime
import fcntl
import http.client
import ipaddress
import os
import re
import socket
import subprocess
import sys
import termios
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.serverproc import (  # noqa: F401 (re-exported for the server tests)
    ROOT,
    Proc,
    clean_env,
    free_port,
    run_cli,
)
from tests.waiting import wait_until

TEXT = "text/plain; charset=utf-8"
LINE_TIME = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d"


def port_is_free(port: int) -> bool:
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def run_cli_many(
    cases: Sequence[tuple[Sequence[str], Mapping[str, str] | None]], timeout: float = 60.0
) -> list[subprocess.CompletedProcess[str]]:
    """`run_cli` for many argument sets at once (in parallel: the machine has spare time
    while each interpreter starts)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "imaged", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(env),
            cwd=ROOT,
        )
        for args, env in cases
    ]
    results = []
    for proc, (args, _env) in zip(procs, cases, strict=True):
        out, err = proc.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(list(args), proc.returncode, out, err))
    return results


# --- raw HTTP ----------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    version: int

    @property
    def text(self) -> str:
        return self.body.decode()


def connect(address: tuple[str, int] | str, timeout: float = 10.0) -> socket.socket:
    """A TCP connection to (host, port) or a unix-socket connection to a path."""
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address)
        return sock
    return socket.create_connection(address, timeout=timeout)


def read_response(sock: socket.socket, method: str = "GET") -> Response:
    """Read exactly one response from `sock` (no read-ahead into the next one)."""
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    body = response.read()
    return Response(response.status, response.headers, body, response.version)


def exchange(
    address: tuple[str, int] | str, raw: bytes, method: str = "GET", timeout: float = 10.0
) -> Response:
    with connect(address, timeout) as sock:
        sock.sendall(raw)
        return read_response(sock, method)


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True if the server closes `sock` (EOF or reset) within `timeout` seconds; any bytes
    it sends first are discarded."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        sock.settimeout(remaining)
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True


@dataclass(frozen=True)
class TcpSocket:
    """One row of /proc/net/tcp{,6}."""

    local: tuple[str, int]
    remote: tuple[str, int]
    state: int  # 0x01 established, 0x0A listening
    tx_queue: int  # bytes sent but not yet acknowledged by the peer's kernel
    rx_queue: int  # bytes received but not yet read by the process (listening: backlog)


LISTEN = 0x0A


def _proc_address(field: str) -> tuple[str, int]:
    address, port = field.split(":")
    raw = bytes.fromhex(address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))  # little-endian words
    return socket.inet_ntop(socket.AF_INET6, words), int(port, 16)


def tcp_sockets() -> list[TcpSocket]:
    """Every TCP socket of the machine's network namespace, IPv4 and IPv6."""
    found = []
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            tx_queue, rx_queue = fields[4].split(":")
            found.append(
                TcpSocket(
                    _proc_address(fields[1]),
                    _proc_address(fields[2]),
                    int(fields[3], 16),
                    int(tx_queue, 16),
                    int(rx_queue, 16),
                )
            )
    return found


def read_by_peer(sock: socket.socket) -> bool:
    """True once the process at the other end of `sock` (a loopback TCP or unix stream
    connection) has read every byte sent on it — e.g. the server has parsed a request head,
    so that request is in flight. TCP: nothing waits in our send queue nor in the peer
    socket's receive queue. Unix: SIOCOUTQ is 0 (bytes stay charged to the sender until the
    receiver reads them)."""
    if sock.family == socket.AF_UNIX:
        queued = array.array("i", [0])
        fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, queued)  # TIOCOUTQ == SIOCOUTQ
        return queued[0] == 0
    ours, theirs = sock.getsockname()[:2], sock.getpeername()[:2]
    rows = {(row.local, row.remote): row for row in tcp_sockets()}
    sending, receiving = rows.get((ours, theirs)), rows.get((theirs, ours))
    return (
        sending is not None
        and receiving is not None
        and sending.tx_queue == 0
        and receiving.rx_queue == 0
    )


def recv_all(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or `timeout`)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def status_of(raw: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", raw)
    return int(match.group(1)) if match else None


# --- PKI ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path
    rogue_client_cert: Path
    rogue_client_key: Path


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1/::1/localhost, a client certificate from
    that CA, and a client certificate from an unrelated CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return path

    def write_cert(cert: x509.Certificate, path: Path) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def make_ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(name(common))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def issue(
        ca_key: ec.EllipticCurvePrivateKey,
        ca_cert: x509.Certificate,
        common: str,
        usage: x509.ObjectIdentifier,
        sans: list[x509.GeneralName] | None = None,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    ca_key, ca_cert = make_ca("imaged test CA")
    rogue_key, rogue_cert = make_ca("rogue CA")
    server_key, server_cert = issue(
        ca_key,
        ca_cert,
        "localhost",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ],
    )
    client_key, client_cert = issue(ca_key, ca_cert, "client", ExtendedKeyUsageOID.CLIENT_AUTH)
    rogue_client_key, rogue_client_cert = issue(
        rogue_key, rogue_cert, "client", ExtendedKeyUsageOID.CLIENT_AUTH
    )
    return Pki(
        ca=write_cert(ca_cert, directory / "ca.pem"),
        server_cert=write_cert(server_cert, directory / "server.pem"),
        server_key=write_key(server_key, directory / "server.key"),
        client_cert=write_cert(client_cert, directory / "client.pem"),
        client_key=write_key(client_key, directory / "client.key"),
        rogue_ca=write_cert(rogue_cert, directory / "rogue-ca.pem"),
        rogue_client_cert=write_cert(rogue_client_cert, directory / "rogue-client.pem"),
        rogue_client_key=write_key(rogue_client_key, directory / "rogue-client.key"),
    )


def wait_gone(path: str, timeout: float = 10.0) -> bool:
    """True once `path` no longer exists; AssertionError after `timeout`."""
    return wait_until(lambda: not os.path.lexists(path), f"{path} to be removed", timeout)
