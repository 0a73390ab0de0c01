"""Property-based tests: any pipeline config gets a legal answer and never escapes the
output directory.

Configs mix valid structure with hostile values (wrong JSON types, out-of-range and
huge numbers, duplicate ids, path-traversal keys and buckets, odd content types) and are
sent as multipart (with a small image) or as JSON, to a server storing outputs under a
temporary `--output-dir`. Never a 5xx; a 400 is plain text; a 200 lists one result per
task, every success is a real file inside the output directory, and nothing is ever
written outside it.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.hardening import JSON, TEXT, encode, raw_request, synthetic
from tests.serverproc import ServerProcess

PNG = encode(synthetic(32, 24), ".png")
BOUNDARY = "imaged-fuzz-boundary"
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_junk = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
FORMATS = ["jpeg", "JPG", "png", "webp", "gif", "tiff", "TIF", "avif", "raw"]
# Valid typed values per option; each config gets at most one poisoned value (below), so
# most requests get past the fail-fast validation and really run their tasks.
VALID: dict[str, st.SearchStrategy[Any]] = {
    "format": st.sampled_from([*FORMATS, *FORMATS, "heic", "pdf", "svg"]),
    # Large sizes only for width: both huge with `contain` is a legitimate 268 MP canvas.
    "width": st.one_of(st.integers(1, 80), st.sampled_from([16384, 20.0, None, ""])),
    "height": st.one_of(st.integers(1, 80), st.sampled_from([8.0, None])),
    "quality": st.one_of(st.integers(1, 100), st.sampled_from([50.0, None, ""])),
    "effort": st.one_of(st.integers(1, 6), st.none()),
    "blur": st.sampled_from([True, False, 0.3, 1, 2.5, 20, None]),
    "greyscale": st.one_of(st.booleans(), st.none()),
    "lossless": st.one_of(st.booleans(), st.none()),
    "progressive": st.one_of(st.booleans(), st.none()),
    "fit": st.sampled_from(["cover", "contain", "fill", "inside", "outside", "", None]),
    "kernel": st.sampled_from(["nearest", "linear", "cubic", "lanczos3", "mks2021", None]),
    "position": st.sampled_from(["centre", "right top", "southwest", "entropy", "attention"]),
    "preset": st.sampled_from(["default", "quality", "size", None]),
}
POISON: dict[str, st.SearchStrategy[Any]] = {
    "format": st.one_of(st.sampled_from(["", "bogus", "png,webp"]), json_junk),
    "width": st.one_of(st.sampled_from([0, -10, 16385, 1.5, "10", True, 2**53]), json_junk),
    "height": st.sampled_from([0, 99999, 8.5, "x", False, [1]]),
    "quality": st.sampled_from([0, 101, 50.5, "50", True]),
    "effort": st.sampled_from([-1, 11, 4.5, "4", True]),
    "blur": st.sampled_from([0.2, 1001, -1, "", "2", [], {}]),
    "greyscale": st.sampled_from([0, 1, "true", ""]),
    "lossless": st.sampled_from([1, "", "false"]),
    "progressive": st.sampled_from([0, "yes", []]),
    "fit": st.sampled_from(["Cover", "none", 3, True]),
    "kernel": st.sampled_from(["box", 1, False]),
    "position": st.sampled_from(["middle", "Centre", 0]),
    "preset": st.sampled_from(["fast", 1]),
}
HOSTILE_KEYS = [
    "ok.jpg",
    "dir/sub/ok.png",
    "../escape.jpg",
    "../../escape.jpg",
    "a/../../escape.jpg",
    "/abs/escape.jpg",
    "a//b.jpg",
    ".",
    "..",
    "a/./b",
    "nul\x00byte",
    "sp ace/ünï€ode.webp",
    "x" * 300,
    "dir/",
]
HOSTILE_BUCKETS = ["bucket", "b2", "..", ".", "a/b", "/", "nul\x00", "ünï"]
CONTENT_TYPES = [None, "", "image/png", "IMAGE/PNG", "text/html", "image/svg+xml"]
FLAGS = st.fixed_dictionaries(
    {},
    optional={"exif": st.booleans(), "stats": st.booleans(), "thumbhash": st.booleans()},
)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """A structurally valid config with 1-8 tasks and at most one poisoned value."""
    count = draw(st.integers(1, 8))
    tasks: list[dict[str, Any]] = []
    for index in range(count):
        transform = {"format": draw(VALID["format"])}
        for name in draw(st.sets(st.sampled_from(sorted(set(VALID) - {"format"})))):
            transform[name] = draw(VALID[name])
        output: dict[str, Any] = {
            "bucket": draw(st.sampled_from(HOSTILE_BUCKETS)),
            "key": draw(st.sampled_from(HOSTILE_KEYS)),
        }
        if draw(st.booleans()):
            output["contentType"] = draw(st.sampled_from(CONTENT_TYPES))
        if draw(st.booleans()):
            output["acl"] = draw(st.sampled_from(["private", "public-read", "", "x\ny"]))
        task = {"id": f"t{index}", "transform": transform, "output": output}
        if draw(st.booleans()):
            task["metadata"] = draw(FLAGS)
        tasks.append(task)
    config: dict[str, Any] = {"tasks": tasks}
    if draw(st.booleans()):
        config["metadata"] = draw(FLAGS)
    poison = draw(st.sampled_from(["none", "none", "option", "id", "metadata"]))
    if poison == "option":
        name = draw(st.sampled_from(sorted(POISON)))
        draw(st.sampled_from(tasks))["transform"][name] = draw(POISON[name])
    elif poison == "id":
        draw(st.sampled_from(tasks))["id"] = draw(st.sampled_from(["t0", "", 5, None]))
    elif poison == "metadata":
        config["metadata"] = draw(json_junk)
    return config


def multipart(config: str, with_file: bool) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="config"\r\n\r\n'.encode()
        + config.encode()
        + b"\r\n"
    ]
    if with_file:
        parts.append(
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
            f'name="file"; filename="in.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
            + PNG
            + b"\r\n"
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<sandbox>/out` is the output directory; anything else appearing in the sandbox
    would be an escape."""
    return tmp_path_factory.mktemp("pipeline-fuzz")


@pytest.fixture(scope="module")
def pipeline_server(sandbox: Path) -> Iterator[ServerProcess]:
    args = ["--concurrency", "2", "--enable-pipeline", "--output-dir", str(sandbox / "out")]
    with ServerProcess(args) as proc:
        yield proc
        assert proc.proc.poll() is None, "the server died during fuzzing"
        assert "internal error" not in proc.log()


def files_outside(sandbox: Path) -> list[str]:
    found = []
    for root, _, files in os.walk(sandbox):
        found += [os.path.join(root, f) for f in files]
    inside = str(sandbox / "out") + os.sep
    # Anything outside the output directory, and any temporary file left behind.
    return [f for f in found if not f.startswith(inside) or f.endswith(".tmp")]


def check_success(result: dict[str, Any], task: Any, sandbox: Path) -> Path:
    """A success is a file at `<out>/<bucket>/<key>`; returns its path."""
    output = result["output"]
    assert list(output) == ["format", "width", "height", "size", "url"], output
    assert output["url"].startswith("file://"), output
    path = Path(output["url"][len("file://") :])
    assert path.resolve().is_relative_to((sandbox / "out").resolve()), path
    expected = Path(sandbox / "out", task["output"]["bucket"], task["output"]["key"])
    assert path == expected and path.is_file(), (path, expected)
    return path


@EXAMPLES
@given(config=configs(), form=st.sampled_from(["multipart"] * 6 + ["json", "no-file"]))
def test_any_pipeline_config(
    pipeline_server: ServerProcess, sandbox: Path, config: Any, form: str
) -> None:
    text = json.dumps(config, allow_nan=False)
    if form == "json":
        body, content_type = text.encode(), "application/json"
    else:
        body = multipart(text, with_file=form == "multipart")
        content_type = f"multipart/form-data; boundary={BOUNDARY}"
    r = raw_request(pipeline_server.port, "PUT", "/pipeline", body, {"Content-Type": content_type})
    assert r.status in (200, 400), (r.status, r.text[:300], text[:300])
    event(f"status {r.status}" + (f" {r.text[:40]}" if r.status == 400 else ""))
    if r.status == 400:
        assert r.header("content-type") == TEXT
        assert r.body and "Traceback" not in r.text
    else:
        assert r.header("content-type") == JSON
        answer = r.json()
        assert isinstance(answer, dict) and isinstance(config, dict)
        assert next(iter(answer)) == "totalDurationMs" and list(answer)[-1] == "tasks"
        assert len(answer["tasks"]) == len(config["tasks"])
        sizes: dict[Path, set[int]] = {}
        # A task asking for output metadata stores its object first (pipeline.md [QUIRK]):
        # when that metadata fails (e.g. `raw` output), a failed task has still written.
        stored_then_failed: set[Path] = set()
        for result, task in zip(answer["tasks"], config["tasks"], strict=True):
            assert result["id"] == task["id"]
            assert result["status"] in ("success", "failed"), result
            event(f"task {result['status']}")
            if result["status"] == "success":
                path = check_success(result, task, sandbox)
                sizes.setdefault(path, set()).add(result["output"]["size"])
            else:
                assert isinstance(result["error"], str) and result["error"], result
                if "metadata" in task:
                    out = task["output"]
                    stored_then_failed.add(Path(sandbox / "out", out["bucket"], out["key"]))
        for path, written in sizes.items():  # tasks sharing a key: the last write wins
            if path not in stored_then_failed:
                assert path.stat().st_size in written, (path, written)
    assert files_outside(sandbox) == []


@settings(EXAMPLES, max_examples=100)
@given(config=json_junk)
def test_any_json_value_as_config(pipeline_server: ServerProcess, config: Any) -> None:
    body = multipart(json.dumps(config), with_file=True)
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    r = raw_request(pipeline_server.port, "PUT", "/pipeline", body, {"Content-Type": content_type})
    assert r.status in (200, 400), (r.status, r.text[:300])
    if r.status == 400:
        assert r.header("content-type") == TEXT and r.body


@pytest.mark.parametrize(
    "raw",
    [
        b'{"tasks": [NaN]}',
        b'{"tasks": [],}',
        b"\xef\xbb\xbf{}",
        b"{'tasks': []}",
        b'{"tasks": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b'{"tasks": "' + b"\\ud800" * 1000 + b'"}',
        b"\xff\xfe",
        b"",
    ],
)
@pytest.mark.parametrize("form", ["json", "multipart"])
def test_hostile_json_is_a_400(pipeline_server: ServerProcess, raw: bytes, form: str) -> None:
    if form == "json":
        body, content_type = raw, "application/json"
    else:
        body = multipart(raw.decode("utf-8", "replace"), with_file=True)
        content_type = f"multipart/form-data; boundary={BOUNDARY}"
    r = raw_request(pipeline_server.port, "PUT", "/pipeline", body, {"Content-Type": content_type})
    assert r.status == 400, (r.status, r.text[:200])
    assert r.header("content-type") == TEXT


def test_pipeline_body_over_the_limit_is_413_at_once(pipeline_server: ServerProcess) -> None:
    """A declared Content-Length over --body-limit is refused before the body is sent."""
    head = (
        b"PUT /pipeline HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 16777217\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", pipeline_server.port), timeout=10) as sock:
        sock.sendall(head)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_chunked_pipeline_body_is_cut_at_the_limit(pipeline_server: ServerProcess) -> None:
    chunk = b"[" * 65536
    head = (
        b"PUT /pipeline HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with socket.create_connection(("127.0.0.1", pipeline_server.port), timeout=30) as sock:
        sock.sendall(head)
        try:
            for _ in range(16777216 // len(chunk) + 2):
                sock.sendall(framed)
        except OSError:
            pass  # the server may close as soon as it has answered
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
