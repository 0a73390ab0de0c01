"""Helpers shared by the hardening and fuzz tests: raw HTTP, process memory, tiny images.

Raw sockets are used where httpx would normalise what we want to send (percent-escapes,
raw bytes in the request target) or hide how a connection ended.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from pathlib import Path

import pyvips

TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=utf-8"
IMAGE_TYPES = {
    "image/avif",
    "image/gif",
    "image/heic",
    "image/jpeg",
    "image/jxl",
    "image/png",
    "image/tiff",
    "image/webp",
    "application/octet-stream",
}


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> object:
        return json.loads(self.body)


def request_bytes(
    method: str, target: bytes, body: bytes | None = None, headers: dict[str, str] | None = None
) -> bytes:
    """One HTTP/1.1 request with `Connection: close`; `target` is sent byte for byte."""
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}".encode("latin-1"))
    if body is not None:
        lines.append(f"Content-Length: {len(body)}".encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def send_request(port: int, request: bytes, timeout: float = 60.0) -> socket.socket:
    """Send `request` (see `request_bytes`) over a fresh connection; the caller reads the
    answer (`read_raw_response`), which closes the socket. Split from `raw_request` for tests
    that must know the server has read a request before they go on (`read_by_peer`)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(request)
    except BaseException:
        sock.close()
        raise
    return sock


def read_raw_response(sock: socket.socket, method: str) -> RawResponse:
    """The answer on `sock`, parsed with http.client; closes the socket."""
    with sock:
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        payload = response.read()
        return RawResponse(response.status, list(response.getheaders()), payload)


def raw_request(
    port: int,
    method: str,
    target: bytes | str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> RawResponse:
    """Send one request over a fresh connection and parse the answer with http.client."""
    if isinstance(target, str):
        target = target.encode()
    sock = send_request(port, request_bytes(method, target, body, headers), timeout)
    return read_raw_response(sock, method)


def proc_status(pid: int, field: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmHWM, VmRSS) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def synthetic(width: int, height: int, bands: int = 3, seed: int = 1) -> pyvips.Image:
    """A deterministic noisy uchar image (noise compresses badly, so decoders really work)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, size=(height, width, bands), dtype=np.uint8)
    return pyvips.Image.new_from_array(array, interpretation="srgb" if bands >= 3 else "b-w")


def encode(image: pyvips.Image, suffix: str, **options: object) -> bytes:
    return bytes(image.write_to_buffer(suffix, **options))


def has_red(data: bytes) -> bool:
    """True if any pixel of an encoded image is clearly red (R high, G and B low)."""
    image = pyvips.Image.new_from_buffer(data, "")
    if image.bands < 3:
        return False
    rgb = image.extract_band(0, n=3).cast("int")
    red = (rgb[0] > 180) & (rgb[1] < 80) & (rgb[2] < 80)
    return bool(red.max() > 0)
