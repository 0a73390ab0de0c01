"""A loopback origin server for fetch tests: an aiohttp app in a thread of the test process.

It listens on 127.0.0.1 and, where the machine has it, on [::1] at the same port, and records
every TCP connection it accepts and every request it sees, so tests can prove that a refused
URL never reached it. Routes serve corpus images and every misbehaviour the fetch client must
handle (redirects, chains, loops, statuses, slow, oversized, short and gzip-encoded bodies,
responses with exactly the headers a test names).

`/res/<name>` serves a resource the test controls (`put`): bytes that change, `ETag` and
`Last-Modified` that it answers conditional requests with (304), a status, and a gate
(`hold`/`release`) that keeps requests waiting until the test lets them through — a slow
origin whose slowness the test decides, without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from aiohttp import web

from tests.serverproc import CORPUS

SMALL_JPEG = "jpeg-small-nikon-p6000-gps.jpg"
SMALL_PNG = "png-palette-8bit.png"


@dataclass(frozen=True)
class Resource:
    """What `/res/<name>` answers: `status` with `body`, or 304 to a matching conditional
    request; `etag`/`last_modified` None = not sent; `conditional=False` ignores them."""

    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    status: int = 200
    conditional: bool = True


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # path and query as received
    headers: dict[str, str]
    listener: str  # the local address the request arrived on


def _free_dual_port() -> tuple[int, bool]:
    """A port free on 127.0.0.1 and, if IPv6 loopback exists, on ::1 too."""
    for _ in range(50):
        with socket.socket() as s4:
            s4.bind(("127.0.0.1", 0))
            port = int(s4.getsockname()[1])
        try:
            with socket.socket(socket.AF_INET6) as s6:
                s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s6.bind(("::1", port))
        except OSError as exc:
            if exc.errno == 99:  # EADDRNOTAVAIL: no IPv6 loopback here
                return port, False
            continue
        return port, True
    raise RuntimeError("no free port")


class Origin:
    """Start with `with Origin() as origin:`; `origin.url(path)` is an absolute URL."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.port, self.ipv6 = _free_dual_port()
        self.connections = 0
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._resources: dict[str, Resource] = {}
        self._gates: dict[str, asyncio.Event] = {}
        self.held = 0  # requests waiting at a closed gate now
        self.not_modified = 0  # 304s answered by /res

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Origin:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/img/{name:.+}", self._image)
        app.router.add_get("/chunked/{name:.+}", self._chunked)
        app.router.add_get("/bytes", self._bytes)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/chain/{n:[0-9]+}", self._chain)
        app.router.add_get("/loop", self._loop_route)
        app.router.add_get("/status/{code:[0-9]+}", self._status)
        app.router.add_get("/slow-headers", self._slow_headers)
        app.router.add_get("/trickle", self._trickle)
        app.router.add_get("/short", self._short)
        app.router.add_get("/gzip/{name:.+}", self._gzip)
        app.router.add_get("/gzip-zeros", self._gzip_zeros)
        app.router.add_get("/set-cookie", self._set_cookie)
        app.router.add_get("/echo", self._echo)
        app.router.add_get("/headers", self._headers)
        app.router.add_get("/res/{name}", self._resource)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        handler = self._runner.server
        assert handler is not None

        def factory() -> Any:
            with self._lock:
                self.connections += 1
            return handler()

        loop = asyncio.get_running_loop()
        hosts = ["127.0.0.1"] + (["::1"] if self.ipv6 else [])
        for host in hosts:
            self._servers.append(
                await loop.create_server(factory, host, self.port, ssl=self.ssl_context)
            )

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        assert self._runner is not None
        await self._runner.cleanup()

    # --- what tests use -----------------------------------------------------------------

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def reset(self) -> None:
        with self._lock:
            self.connections = 0
            self.requests.clear()

    @property
    def paths(self) -> list[str]:
        with self._lock:
            return [seen.path for seen in self.requests]

    def put(self, name: str, resource: Resource) -> str:
        """Serve `resource` at `/res/<name>` from now on; its URL."""
        with self._lock:
            self._resources[name] = resource
        return self.url(f"/res/{name}")

    def hold(self, name: str) -> None:
        """Requests for `/res/<name>` wait from now on until `release`."""

        def close() -> None:
            self._gates[name] = asyncio.Event()

        self._call(close)

    def release(self, name: str) -> None:
        def open_gate() -> None:
            gate = self._gates.pop(name, None)
            if gate is not None:
                gate.set()

        self._call(open_gate)

    def requests_for(self, path: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.requests if seen.path == path]

    def _call(self, fn: Any) -> None:
        """Run `fn` on the origin's loop and wait for it."""

        async def run() -> None:
            fn()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    @contextlib.contextmanager
    def untouched(self) -> Iterator[None]:
        """Asserts that nothing connected to the origin inside the block."""
        self.reset()
        yield
        with self._lock:
            assert self.connections == 0, f"origin was connected to: {self.requests}"
            assert self.requests == []

    # --- routes -------------------------------------------------------------------------

    def _record(self, request: web.Request) -> None:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        seen = Seen(
            request.method,
            request.path_qs,
            dict(request.headers),
            str(sockname[0]) if sockname else "",
        )
        with self._lock:
            self.requests.append(seen)

    @staticmethod
    def _file(name: str) -> bytes:
        path = (CORPUS / name).resolve()
        if CORPUS.resolve() not in path.parents:
            raise web.HTTPNotFound()
        return Path(path).read_bytes()

    async def _image(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        return web.Response(body=self._file(request.match_info["name"]))

    async def _chunked(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        data = self._file(request.match_info["name"])
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(data), 65536):
            await response.write(data[start : start + 65536])
        await response.write_eof()
        return response

    async def _bytes(self, request: web.Request) -> web.StreamResponse:
        """`size` bytes of `x`; `chunked=1` sends them without Content-Length."""
        self._record(request)
        size = int(request.query["size"])
        response = web.StreamResponse()
        if request.query.get("chunked") == "1":
            response.enable_chunked_encoding()
        else:
            response.content_length = size
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for start in range(0, size, 65536):
                await response.write(b"x" * min(65536, size - start))
            await response.write_eof()
        return response

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        """`status` (default 302) with `Location: to`; no `to` → no Location header."""
        self._record(request)
        status = int(request.query.get("status", "302"))
        headers = {"Location": request.query["to"]} if "to" in request.query else {}
        return web.Response(status=status, headers=headers, text="redirecting")

    async def _chain(self, request: web.Request) -> web.StreamResponse:
        """/chain/N redirects N times, then serves `name` (default the small JPEG)."""
        self._record(request)
        n = int(request.match_info["n"])
        name = request.query.get("name", SMALL_JPEG)
        if n == 0:
            return web.Response(body=self._file(name))
        return web.Response(status=302, headers={"Location": f"/chain/{n - 1}?name={name}"})

    async def _loop_route(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        return web.Response(status=301, headers={"Location": "/loop"})

    async def _status(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        code = int(request.match_info["code"])
        if code in (204, 304):
            return web.Response(status=code)
        return web.Response(status=code, text=f"status {code}")

    async def _slow_headers(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        await asyncio.sleep(float(request.query["delay"]))  # the slow origin under test
        return web.Response(body=self._file(SMALL_JPEG))

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        """Declares `size` bytes, then sends one every `interval` s for at most `seconds`."""
        self._record(request)
        interval = float(request.query.get("interval", "0.25"))
        seconds = float(request.query.get("seconds", "15"))
        response = web.StreamResponse()
        response.content_length = int(request.query.get("size", "1000"))
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        with contextlib.suppress(ConnectionError):
            while loop.time() < deadline:
                await response.write(b"x")
                await asyncio.sleep(interval)  # the trickle under test
        request.transport.close() if request.transport else None
        return response

    async def _short(self, request: web.Request) -> web.StreamResponse:
        """Declares `declared` bytes, sends `actual` of the small JPEG, closes the socket."""
        self._record(request)
        declared, actual = int(request.query["declared"]), int(request.query["actual"])
        data = self._file(SMALL_JPEG)[:actual]
        _raw(request, [f"Content-Length: {declared}", "Content-Type: image/jpeg"], data)

    async def _headers(self, request: web.Request) -> web.StreamResponse:
        """The small PNG with exactly the response headers named in the query (plus
        Content-Length): aiohttp itself would always add a Content-Type."""
        self._record(request)
        data = self._file(SMALL_PNG)
        head = [f"{name}: {value}" for name, value in request.query.items()]
        _raw(request, [*head, f"Content-Length: {len(data)}", "Connection: close"], data)

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        name = request.match_info["name"]
        gate = self._gates.get(name)
        if gate is not None:
            self.held += 1
            try:
                await gate.wait()  # until the test releases it
            finally:
                self.held -= 1
        with self._lock:
            resource = self._resources.get(name)
        if resource is None:
            return web.Response(status=404, text="no such resource")
        headers = {}
        if resource.etag is not None:
            headers["ETag"] = resource.etag
        if resource.last_modified is not None:
            headers["Last-Modified"] = resource.last_modified
        if resource.conditional and resource.status == 200 and _unchanged(request, resource):
            self.not_modified += 1
            return web.Response(status=304, headers=headers)
        return web.Response(status=resource.status, body=resource.body, headers=headers)

    async def _gzip(self, request: web.Request) -> web.StreamResponse:
        """The file gzip-compressed with `Content-Encoding: gzip`, whatever was asked for."""
        self._record(request)
        body = gzip.compress(self._file(request.match_info["name"]))
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    async def _gzip_zeros(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        body = gzip.compress(bytes(int(request.query["size"])))
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    async def _set_cookie(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        return web.Response(
            status=302, headers={"Location": "/echo", "Set-Cookie": "session=secret; Path=/"}
        )

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        return web.Response(body=self._file(SMALL_PNG))


def _unchanged(request: web.Request, resource: Resource) -> bool:
    """RFC 9110 §13.1: `If-None-Match` (weak comparison) first; `If-Modified-Since` only
    without it (the test origin compares the date text exactly: it only ever sends one)."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        etag = (resource.etag or "").removeprefix("W/")
        return bool(etag) and (etag in tags or "*" in tags)
    since = request.headers.get("If-Modified-Since")
    return since is not None and since == resource.last_modified


def _raw(request: web.Request, head: list[str], body: bytes) -> NoReturn:
    """A `200 OK` with these header lines and body written straight to the socket, then
    closed (asyncio flushes what is still buffered first): bytes aiohttp would not send."""
    assert request.transport is not None
    lines = "".join(f"{line}\r\n" for line in ["HTTP/1.1 200 OK", *head])
    request.transport.write(f"{lines}\r\n".encode("latin-1") + body)
    request.transport.close()
    raise asyncio.CancelledError()


class Trap:
    """A TCP listener that only counts connections: where a refused address would lead."""

    def __init__(self, host: str, port: int) -> None:
        self.connections = 0
        self._sock = socket.create_server((host, port))
        self.port = int(self._sock.getsockname()[1])
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def __enter__(self) -> Trap:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
