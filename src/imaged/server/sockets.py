"""Sockets and TLS for listening (config.md, Listening), kept free of aiohttp and pyvips so
the CLI can check them before the heavy imports (`preflight`).

* TCP: one socket per address; `localhost` is both loopbacks (127.0.0.1 and ::1, the
  latter when the machine has IPv6), whatever /etc/hosts says; `::` is dual-stack.
* Unix: the parent directory is created; a stale socket is replaced, a live one refused
  (Compatibility policy), anything else refused with the spec's message.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
import stat
from typing import Any

from imaged.settings import Settings

DEFAULT_HOST = "localhost"


class StartupError(Exception):
    """Startup cannot proceed (a taken unix socket path, unusable TLS files): exit 1."""

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields


# --- TLS ---------------------------------------------------------------------------------


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """Server context (TLS ≥ 1.2, ALPN http/1.1); with `--mtls-ca` a client certificate
    signed by that CA is required, so other clients fail in the handshake."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ValueError) as exc:
        raise StartupError(
            "Cannot load the TLS certificate and key",
            cert=settings.tls_cert,
            key=settings.tls_key,
            err=exc,
        ) from exc
    context.set_alpn_protocols(["http/1.1"])
    if settings.mtls_ca:
        try:
            context.load_verify_locations(cafile=settings.mtls_ca)
        except (OSError, ValueError) as exc:
            raise StartupError(
                "Cannot load the mTLS CA certificate", path=settings.mtls_ca, err=exc
            ) from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


# --- sockets -----------------------------------------------------------------------------


def _socket_is_live(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def prepare_unix_path(path: str) -> None:
    """Create the parent directory; replace a stale socket; refuse a live one or a file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise StartupError(f"Refusing to overwrite existing non-socket at UNIX path: {path}")
    if _socket_is_live(path):
        raise StartupError(f"Refusing to replace a UNIX socket that is in use: {path}")
    os.unlink(path)


def remove_unix_socket(path: str | None) -> None:
    if not path:
        return
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)


def bind_unix(path: str) -> socket.socket:
    prepare_unix_path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
    except OSError:
        sock.close()
        raise
    return sock


def bind_tcp(host: str, port: int) -> list[socket.socket]:
    """One socket per address of `host` (`localhost`: 127.0.0.1 and ::1). An IPv6 address
    that cannot be bound is skipped when the host also has IPv4 ones (no IPv6 on the
    machine); an IPv6-only host such as `::` is dual-stack."""
    infos: list[tuple[int, int, int, object, tuple[Any, ...]]]
    if host.lower() == DEFAULT_HOST:
        # Both loopbacks, whatever /etc/hosts says (many list only 127.0.0.1).
        infos = [
            (socket.AF_INET, socket.SOCK_STREAM, 0, "", ("127.0.0.1", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 0, "", ("::1", port, 0, 0)),
        ]
    else:
        infos = list(
            socket.getaddrinfo(
                host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
            )
        )
    has_ipv4 = any(info[0] == socket.AF_INET for info in infos)
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address[0]) in seen:
                continue
            seen.add((family, address[0]))
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(has_ipv4))
                sock.bind(address)
            except OSError as exc:
                sock.close()
                unavailable = exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
                if family == socket.AF_INET6 and has_ipv4 and unavailable:
                    continue
                raise
            sockets.append(sock)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def preflight(settings: Settings) -> None:
    """Fail fast (StartupError/OSError) on TLS files or a unix socket path that cannot be
    used, before the server's heavy start-up; `serve` checks them again when it binds."""
    tls_context(settings)
    if settings.unix:
        prepare_unix_path(settings.unix)
