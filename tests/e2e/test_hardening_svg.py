"""Hostile SVGs: no file read, no network connection, bounded time.

Every external reference points either at a pure-red asset (if it were loaded, red
would appear in the output, which also shows the document's own green square) or at a
FIFO (opening it for reading would be seen by a watcher thread), or at a loopback
listener that counts connections. A `data:` image of the same red asset is the positive
control proving the red detector works.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pyvips
from bench.procstat import cpu_seconds
from tests.hardening import has_red, raw_request
from tests.serverkit import tcp_sockets
from tests.serverproc import CORPUS, ROOT, ServerProcess
from tests.waiting import wait_until

SECONDS = 5.0
FANOUT_SECONDS = 30.0  # librsvg stops a <use> fan-out at 500 000 references: ~6 s of CPU
NS = (
    'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:xi="http://www.w3.org/2001/XInclude"'
)
GREEN = '<rect x="0" y="0" width="10" height="10" fill="#00ff00"/>'
BLUE = '<rect x="20" y="20" width="50" height="50" fill="blue"/>'


def document(body: str, prolog: str = "") -> bytes:
    return f'{prolog}<svg {NS} width="100" height="100">{GREEN}{body}</svg>'.encode()


@dataclass
class Traps:
    """Files an SVG must never read, a FIFO that notices being opened, a counting server."""

    directory: Path
    port: int
    fifo_opened: int = 0
    fifo_passes: int = 0  # completed rounds of the FIFO watcher
    connections: list[bytes] = field(default_factory=list)

    def file(self, name: str) -> str:
        return f"file://{self.directory / name}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settled(self) -> Callable[[], bool]:
        """A condition: both traps have recorded whatever reached them before this call —
        the FIFO watcher has finished the round it was in, and the listener holds no
        connection it has not yet recorded and closed (none queued, none being read)."""
        passes = self.fifo_passes

        def check() -> bool:
            handling = any(
                s.local[1] == self.port and s.state in _OPEN_STATES for s in tcp_sockets()
            )
            return self.fifo_passes > passes and not handling

        return check


_OPEN_STATES = {0x01, 0x03, 0x08}  # established, SYN received, close-wait: not yet closed


def _watch_fifo(path: Path, traps: Traps, stop: threading.Event) -> None:
    """A reader blocked in open() on the FIFO lets our non-blocking writer open succeed."""
    while not stop.is_set():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            time.sleep(0.002)  # the watcher's polling interval
        else:
            traps.fifo_opened += 1
            os.close(fd)
        traps.fifo_passes += 1


def _serve(listener: socket.socket, traps: Traps) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(1)
            with contextlib.suppress(OSError):
                traps.connections.append(conn.recv(4096))


@pytest.fixture(scope="module")
def traps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traps]:
    directory = tmp_path_factory.mktemp("svg-traps")
    red_image().write_to_file(str(directory / "red.png"))
    (directory / "red.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        '<rect id="r" width="100" height="100" fill="red"/></svg>'
    )
    (directory / "red.css").write_text("rect { fill: red !important; }")
    (directory / "frag.xml").write_text(
        '<rect xmlns="http://www.w3.org/2000/svg" width="100" height="100" fill="red"/>'
    )
    os.mkfifo(directory / "fifo")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    result = Traps(directory, listener.getsockname()[1])
    stop = threading.Event()
    threads = [
        threading.Thread(target=_serve, args=(listener, result), daemon=True),
        threading.Thread(target=_watch_fifo, args=(directory / "fifo", result, stop), daemon=True),
    ]
    for thread in threads:
        thread.start()
    yield result
    stop.set()
    listener.close()


@pytest.fixture(scope="module")
def svg_server() -> Iterator[ServerProcess]:
    with ServerProcess(["--concurrency", "2"]) as proc:
        yield proc


def red_image() -> pyvips.Image:
    return pyvips.Image.black(64, 64).new_from_image([255, 0, 0]).cast("uchar")


def red_png_base64() -> str:
    return base64.b64encode(red_image().pngsave_buffer()).decode()


# Each case maps a reference (to red.png / red.svg / red.css / frag.xml, the FIFO, or the
# listener) to a document. `asset` names the red file the reference would pull in.
Case = tuple[str, Callable[[str], bytes]]
CASES: dict[str, Case] = {
    "image-href": ("red.png", lambda u: document(f'<image href="{u}" width="100" height="100"/>')),
    "image-xlink": (
        "red.png",
        lambda u: document(f'<image xlink:href="{u}" width="100" height="100"/>'),
    ),
    "use": ("red.svg", lambda u: document(f'<use href="{u}#r"/>')),
    "feimage": (
        "red.png",
        lambda u: document(
            f'<filter id="f" x="0" y="0" width="1" height="1"><feImage href="{u}"/></filter>'
            '<rect width="100" height="100" fill="blue" filter="url(#f)"/>'
        ),
    ),
    "css-import": ("red.css", lambda u: document(f'<style>@import url("{u}");</style>{BLUE}')),
    "xml-stylesheet": (
        "red.css",
        lambda u: document(BLUE, f'<?xml-stylesheet type="text/css" href="{u}"?>'),
    ),
    "external-entity": (
        "frag.xml",
        lambda u: document("&e;", f'<!DOCTYPE svg [<!ENTITY e SYSTEM "{u}">]>'),
    ),
    "external-dtd": ("frag.xml", lambda u: document(BLUE, f'<!DOCTYPE svg SYSTEM "{u}">')),
    "parameter-entity": (
        "frag.xml",
        lambda u: document(BLUE, f'<!DOCTYPE svg [<!ENTITY % p SYSTEM "{u}"> %p;]>'),
    ),
    "xinclude": ("frag.xml", lambda u: document(f'<xi:include href="{u}" parse="xml"/>')),
    "xinclude-text": (
        "frag.xml",
        lambda u: document(f'<text x="0" y="50"><xi:include href="{u}" parse="text"/></text>'),
    ),
}


def references(traps: Traps, asset: str) -> dict[str, str]:
    """Every way of naming the asset (and the FIFO) that an SVG might resolve."""
    relative = os.path.relpath(traps.directory / asset, ROOT)  # from the server's cwd
    return {
        "file-url": traps.file(asset),
        "absolute-path": str(traps.directory / asset),
        "relative-path": relative,
        "fifo-url": traps.file("fifo"),
        "fifo-path": str(traps.directory / "fifo"),
        "loopback-http": f"{traps.http}/{asset}",
    }


TARGETS = ("/transform?format=png", "/transform?width=50", "/metadata?stats=1")


def check(
    port: int, body: bytes, seconds: float = SECONDS, targets: tuple[str, ...] = TARGETS
) -> list[str]:
    """PUT the SVG to /transform (PNG out) and /metadata with stats; collect problems."""
    problems = []
    for target in targets:
        started = time.monotonic()
        r = raw_request(port, "PUT", target, body)
        elapsed = time.monotonic() - started
        if elapsed > seconds:
            problems.append(f"{target}: {elapsed:.1f} s")
        if r.status == 200:
            if target.startswith("/transform"):
                if has_red(r.body):
                    problems.append(f"{target}: the external red content was rendered")
                if target.endswith("png") and not has_green(r.body):
                    problems.append(f"{target}: the document's own content is missing")
        elif not (r.status == 400 and r.text.startswith("image: ")):
            problems.append(f"{target}: {r.status} {r.text[:200]}")
    return problems


def has_green(data: bytes) -> bool:
    image = pyvips.Image.new_from_buffer(data, "")
    rgb = image.extract_band(0, n=3).cast("int")
    return bool(((rgb[1] > 180) & (rgb[0] < 80) & (rgb[2] < 80)).max() > 0)


def test_positive_control_data_url_renders_red(svg_server: ServerProcess) -> None:
    body = document(
        f'<image href="data:image/png;base64,{red_png_base64()}" width="100" height="100"/>'
    )
    r = raw_request(svg_server.port, "PUT", "/transform?format=png", body)
    assert r.status == 200
    assert has_red(r.body)


def test_controls_the_traps_notice_a_read_and_a_connection(traps: Traps) -> None:
    opened, connections = traps.fifo_opened, len(traps.connections)
    with open(traps.directory / "fifo", "rb") as fifo:  # blocks until the watcher opens it
        assert fifo.read() == b""
    with socket.create_connection(("127.0.0.1", traps.port)) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
    wait_until(traps.settled(), "the traps to record the read and the connection")
    assert traps.fifo_opened > opened
    assert traps.connections[connections:] == [b"GET / HTTP/1.0\r\n\r\n"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_external_references_are_never_loaded(
    svg_server: ServerProcess, traps: Traps, case: str
) -> None:
    asset, build = CASES[case]
    opened, connections = traps.fifo_opened, len(traps.connections)
    problems = {}
    for how, reference in references(traps, asset).items():
        found = check(svg_server.port, build(reference))
        if found:
            problems[how] = found
    wait_until(traps.settled(), "the traps to record anything late")
    assert not problems, problems
    assert traps.fifo_opened == opened, "an SVG reference opened a local file"
    assert traps.connections[connections:] == []


def test_billion_laughs(svg_server: ServerProcess) -> None:
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
    )
    body = document('<text x="0" y="50">&j;</text>', f"<!DOCTYPE svg [{entities}]>")
    assert check(svg_server.port, body) == []


def test_quadratic_blowup(svg_server: ServerProcess) -> None:
    entity = f'<!DOCTYPE svg [<!ENTITY e "{"x" * 100_000}">]>'
    body = document(f'<text x="0" y="50">{"&e;" * 2000}</text>', entity)
    assert check(svg_server.port, body) == []


def test_use_fan_out_is_bounded(svg_server: ServerProcess) -> None:
    """10 levels of ten-way <use>: 10^10 elements if nothing stopped it."""
    levels = "".join(f"<g id='u{i + 1}'>" + f"<use href='#u{i}'/>" * 10 + "</g>" for i in range(9))
    body = document(f"<defs><rect id='u0' width='1' height='1' fill='red'/>{levels}</defs>")
    body = body.replace(b"</svg>", b"<use href='#u9'/></svg>")
    port = svg_server.port
    result: list[list[str]] = []
    worker = threading.Thread(
        target=lambda: result.append(check(port, body, FANOUT_SECONDS, TARGETS[:1]))
    )
    cpu = cpu_seconds(svg_server.proc.pid)
    worker.start()
    # Other clients are still served while both permits may be busy with the bomb.
    wait_until(lambda: cpu_seconds(svg_server.proc.pid) - cpu >= 0.5, "the bomb to be computing")
    started = time.monotonic()
    assert raw_request(port, "GET", "/healthz").status == 200
    assert time.monotonic() - started < 2.0
    worker.join(3 * FANOUT_SECONDS + 10)
    assert result == [[]]


def test_deep_nesting(svg_server: ServerProcess) -> None:
    body = document("<g>" * 100_000 + "</g>" * 100_000)
    assert check(svg_server.port, body) == []


def test_corpus_svg_with_an_external_reference(svg_server: ServerProcess) -> None:
    """The W3C test file references ../images/SVGFreeSans.svg: rendered without it."""
    body = (CORPUS / "svg-w3c-struct-image-04-t.svg").read_bytes()
    r = raw_request(svg_server.port, "PUT", "/transform?format=png", body)
    assert r.status == 200, r.text
    assert (r.header("x-image-width"), r.header("x-image-height")) == ("480", "360")


def test_concurrent_svg_requests_do_not_crash_the_server() -> None:
    """Concurrent librsvg decodes corrupt the heap (a segfault or "double free" within a few
    hundred requests before SVG operations were serialised): hammer it with the corpus SVGs,
    whole and mutated, from 8 connections against 4 permits."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.e2e.test_hardening_corrupt import corpus_sources, variants

    sources = {k: v for k, v in corpus_sources().items() if k.endswith(".svg")}
    bodies = [*sources.values(), *variants(sources, None).values()]
    targets = ["/metadata?stats=1&thumbhash=1", "/transform?width=50", "/transform?blur=2"]
    work = [(body, target) for body in bodies for target in targets]
    with ServerProcess(["--concurrency", "4"]) as proc:

        def one(item: tuple[bytes, str]) -> int:
            return raw_request(proc.port, "PUT", item[1], item[0]).status

        deadline = time.monotonic() + 20
        statuses: list[int] = []
        with ThreadPoolExecutor(8) as pool:
            while time.monotonic() < deadline and len(statuses) < 3000:
                statuses += pool.map(one, work)
        assert proc.proc.poll() is None, proc.log()[-3000:]
        assert statuses and max(statuses) < 500
        assert statuses.count(200) >= len(sources) * len(targets)  # whole SVGs really rendered
