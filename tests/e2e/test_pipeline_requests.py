"""PUT /pipeline request handling over HTTP: body forms, multipart rules, JSON parsing,
every validation message, image source selection and limits (pipeline.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.fetch_origin import SMALL_JPEG, Origin
from tests.pipeline_helpers import (
    MULTIPART,
    config_part,
    file_part,
    multipart_body,
    part,
    put_form,
    put_json,
    put_multipart,
    sample_image,
    task,
)
from tests.serverproc import ServerProcess

NO_AWS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
IMAGE = sample_image()
ONE_TASK = {"tasks": [task("t")]}
FORMATS_TEXT = "avif, gif, heic, jpeg, jxl, pdf, png, raw, svg, tiff, webp"


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pipeline-out")


@pytest.fixture(scope="module")
def client(out_dir: Path) -> Iterator[httpx.Client]:
    """No fetch, no AWS credentials: the local back-end needs none."""
    args = ["--enable-pipeline", "--output-dir", str(out_dir), "--concurrency", "2"]
    with ServerProcess(args, NO_AWS) as proc, proc.client() as c:
        yield c


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    """Small body limit and task cap, fetch enabled (loopback origins allowed)."""
    out = tmp_path_factory.mktemp("pipeline-small")
    args = [
        "--enable-pipeline",
        "--output-dir",
        str(out),
        "--body-limit",
        "200000",
        "--max-pipeline-tasks",
        "3",
        "--enable-fetch",
        "--disable-ssrf-protection",
        "--concurrency",
        "2",
    ]
    with ServerProcess(args, NO_AWS) as proc, proc.client() as c:
        yield c, out


def error(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    return response.text


def success(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body: dict[str, Any] = json.loads(response.text)
    return body


def written(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# --- body forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "image/png",
        "Application/JSON",
        "MULTIPART/FORM-DATA; boundary=x",
        "application/xml",
    ],
)
def test_other_content_types_are_refused(client: httpx.Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.put("/pipeline", content=json.dumps(ONE_TASK), headers=headers)
    assert error(response) == "Content-Type must be application/json or multipart/form-data"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8"],
)
def test_json_content_types(client: httpx.Client, content_type: str) -> None:
    response = client.put(
        "/pipeline", content=json.dumps(ONE_TASK), headers={"Content-Type": content_type}
    )
    assert error(response) == "No image provided"  # parsed and validated as JSON


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"NaN",
        b'{"tasks": [], "x": NaN}',
        b'{"tasks": Infinity}',
        b"-Infinity",
        b"\xef\xbb\xbf{}",
        b"{'tasks': []}",
        b"{tasks: []}",
        b'{"tasks": [],}',
        b'{"a": "\xff\xfe"}',
        b"[" * 50000,
        b"{} x",
    ],
)
def test_invalid_json_body(client: httpx.Client, body: bytes) -> None:
    response = client.put("/pipeline", content=body, headers={"Content-Type": "application/json"})
    assert error(response) == "invalid JSON in request body"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"null", "config must be an object"),
        (b"5", "config must be an object"),
        (b'"x"', "config must be an object"),
        (b"[]", "tasks must be an array"),
        (b"{}", "tasks must be an array"),
    ],
)
def test_any_json_value_parses(client: httpx.Client, body: bytes, message: str) -> None:
    response = client.put("/pipeline", content=body, headers={"Content-Type": "application/json"})
    assert error(response) == message


# --- every validation message over HTTP ---------------------------------------------------


def cfg(*tasks: Any, **extra: Any) -> dict[str, Any]:
    return {"tasks": list(tasks), **extra}


def t(**changes: Any) -> dict[str, Any]:
    spec = task("t")
    spec.update(changes)
    return spec


VALIDATION = [
    (None, "config must be an object"),
    (cfg(), "at least one task is required"),
    ({"tasks": "x"}, "tasks must be an array"),
    ({"tasks": [None] * 12}, "too many tasks: 12 (max: 10)"),
    (cfg(None), "task[0]: must be an object"),
    (cfg([]), "task[0]: id is required"),
    (cfg(t(id="")), "task[0]: id is required"),
    (cfg(t(id="a"), t(id="a")), "task[1]: duplicate id 'a'"),
    (cfg(t(transform=None)), "task[0]: transform is required"),
    (cfg(t(transform={"width": 5})), "task[0]: transform.format is required"),
    (cfg(t(output=5)), "task[0]: output is required"),
    (cfg(t(output={"key": "k"})), "task[0]: output.bucket is required"),
    (cfg(t(output={"bucket": "b", "key": ""})), "task[0]: output.key is required"),
    (cfg(t(metadata=None)), "task[0]: metadata must be an object"),
    (cfg(t(), metadata="yes"), "metadata must be an object"),
    (
        cfg(t(transform={"format": "bmp"})),
        f"task[0].transform.format: unknown format 'bmp', valid: {FORMATS_TEXT}",
    ),
    (
        cfg(t(transform={"format": "png", "width": -10})),
        "task[0].transform.width: must be at least 1",
    ),
    (
        cfg(t(transform={"format": "png", "height": 16385})),
        "task[0].transform.height: must be at most 16384",
    ),
    (
        cfg(t(transform={"format": "png", "width": True})),
        "task[0].transform.width: must be a number",
    ),
    (
        cfg(t(transform={"format": "png", "quality": 5.5})),
        "task[0].transform.quality: must be an integer",
    ),
    (
        cfg(t(transform={"format": "png", "quality": 101})),
        "task[0].transform.quality: must be at most 100",
    ),
    (
        cfg(t(transform={"format": "png", "blur": ""})),
        "task[0].transform.blur: must be a boolean or number between 0.3 and 1000",
    ),
    (
        cfg(t(transform={"format": "png", "blur": 0.1})),
        "task[0].transform.blur: must be at least 0.3",
    ),
    (
        cfg(t(transform={"format": "png", "blur": 1001})),
        "task[0].transform.blur: must be at most 1000",
    ),
    (
        cfg(t(transform={"format": "png", "lossless": 1})),
        "task[0].transform.lossless: must be a boolean",
    ),
    (
        cfg(t(transform={"format": "webp", "effort": 7})),
        "task[0].transform.effort: must be at most 6 for webp",
    ),
    (
        cfg(t(transform={"format": "jpeg", "effort": "1"})),
        "task[0].transform.effort: must be a number",
    ),
    (cfg(t(transform={"format": "png", "fit": 1})), "task[0].transform.fit: must be a string"),
    (
        cfg(t(transform={"format": "png", "preset": "tiny"})),
        "task[0].transform.preset: unknown value 'tiny', valid: default, quality, size",
    ),
    (cfg(t(metadata={"stats": "true"})), "task[0].metadata.stats: must be a boolean"),
    (cfg(t(), metadata={"thumbhash": 1}), "metadata.thumbhash: must be a boolean"),
]


@pytest.mark.parametrize(("config", "message"), VALIDATION)
def test_validation_messages_json(client: httpx.Client, config: Any, message: str) -> None:
    assert error(put_json(client, config)) == message


@pytest.mark.parametrize(("config", "message"), VALIDATION[:8] + VALIDATION[-3:])
def test_validation_messages_multipart(client: httpx.Client, config: Any, message: str) -> None:
    assert error(put_form(client, config, IMAGE)) == message


def test_validation_comes_before_the_source(small: tuple[httpx.Client, Path]) -> None:
    client, out = small
    with Origin() as origin, origin.untouched():
        url = origin.url(f"/img/{SMALL_JPEG}")
        config = cfg(t(transform={"format": "png", "width": 0}), url=url)
        assert error(put_json(client, config)) == "task[0].transform.width: must be at least 1"
        config = cfg(t(), url=url, metadata={"exif": "yes"})
        assert error(put_json(client, config)) == "metadata.exif: must be a boolean"
    assert written(out) == []


# --- image source -------------------------------------------------------------------------


def test_url_without_fetch_is_refused(client: httpx.Client) -> None:
    config = cfg(t(), url="http://127.0.0.1:1/image.png")
    assert error(put_json(client, config)) == "URL fetching is disabled"
    assert error(put_json(client, cfg(t(), url=5))) == "URL fetching is disabled"


@pytest.mark.parametrize("url", ["absent", None, "", False, 0])
def test_no_image_provided(client: httpx.Client, url: Any) -> None:
    config = cfg(t()) if url == "absent" else cfg(t(), url=url)
    assert error(put_json(client, config)) == "No image provided"


def test_url_source_is_fetched(small: tuple[httpx.Client, Path]) -> None:
    client, out = small
    with Origin() as origin:
        config = cfg(
            task("from-url", "png", "fetched", "a/b.png", width=50),
            url=origin.url(f"/img/{SMALL_JPEG}"),
        )
        body = success(put_json(client, config))
        assert origin.paths == [f"/img/{SMALL_JPEG}"]
    result = body["tasks"][0]
    assert result["status"] == "success", result
    assert (out / "fetched" / "a" / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fetch_errors_keep_their_status_and_no_task_runs(small: tuple[httpx.Client, Path]) -> None:
    client, out = small
    with Origin() as origin:
        config = cfg(task("x", "png", "fetch-error", "x.png"), url=origin.url("/status/404"))
        response = put_json(client, config)
    assert response.status_code == 404
    assert response.text.startswith("fetch: ")
    config = cfg(task("x", "png", "fetch-error", "x.png"), url=5)
    response = put_json(client, config)
    assert response.status_code == 400
    assert response.text.startswith("fetch: ")
    assert not (out / "fetch-error").exists()


# --- multipart ----------------------------------------------------------------------------


def test_multipart_writes_the_output(client: httpx.Client, out_dir: Path) -> None:
    config = {"tasks": [task("mp", "png", "forms", "mp/one.png")]}
    body = success(put_form(client, config, IMAGE))
    assert body["tasks"][0]["status"] == "success"
    assert (out_dir / "forms" / "mp" / "one.png").is_file()


def test_httpx_built_form_with_file_content_type(client: httpx.Client, out_dir: Path) -> None:
    config = {"tasks": [task("hx", "jpeg", "forms", "hx.jpg")]}
    files = {
        "config": (None, json.dumps(config), "application/json"),
        "file": ("in.png", IMAGE, "image/png"),
    }
    body = success(client.put("/pipeline", files=files))
    assert body["tasks"][0]["status"] == "success"
    assert (out_dir / "forms" / "hx.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "text/plain"]
)
def test_config_part_with_its_own_content_type(client: httpx.Client, content_type: str) -> None:
    config = {"tasks": [task("ct", "png", "forms", "ct.png")]}
    response = put_multipart(
        client, config_part(config, Content_Type=content_type), file_part(IMAGE)
    )
    assert success(response)["tasks"][0]["status"] == "success"
    bad = config_part("{not json", Content_Type=content_type)
    assert error(put_multipart(client, bad, file_part(IMAGE))) == "invalid JSON in 'config' part"


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([], "missing 'config' part in multipart request"),
        ([file_part(IMAGE)], "missing 'config' part in multipart request"),
        ([config_part(""), file_part(IMAGE)], "missing 'config' part in multipart request"),
        (
            [part("config", "{}", filename="config.json"), file_part(IMAGE)],
            "missing 'config' part in multipart request",
        ),
        (
            [part("cfg", json.dumps(ONE_TASK)), file_part(IMAGE)],
            "missing 'config' part in multipart request",
        ),
        ([config_part("{bad"), file_part(IMAGE)], "invalid JSON in 'config' part"),
        ([config_part("NaN"), file_part(IMAGE)], "invalid JSON in 'config' part"),
        ([config_part("{bad")], "invalid JSON in 'config' part"),  # JSON checked before the file
        ([config_part(b"\xef\xbb\xbf{}".decode("utf-8"))], "invalid JSON in 'config' part"),
        ([config_part("{}")], "missing 'file' part in multipart request"),  # before validation
        ([config_part(ONE_TASK)], "missing 'file' part in multipart request"),
        ([config_part(ONE_TASK), part("file", IMAGE)], "missing 'file' part in multipart request"),
        (
            [config_part(ONE_TASK), file_part(IMAGE, name="image")],
            "missing 'file' part in multipart request",
        ),
        ([config_part("null"), file_part(IMAGE)], "config must be an object"),
        ([config_part("{}"), file_part(IMAGE)], "tasks must be an array"),
    ],
)
def test_multipart_part_rules(client: httpx.Client, parts: list[bytes], message: str) -> None:
    assert error(put_multipart(client, *parts)) == message


def test_other_parts_anywhere_are_discarded(client: httpx.Client, out_dir: Path) -> None:
    config = {"tasks": [task("order", "png", "forms", "order.png")]}
    parts = [
        file_part(b"x" * 150_000, name="attachment", filename="big.bin"),  # a file part first
        part("note", "hello"),
        file_part(IMAGE),
        part("metadata", '{"exif": true}'),  # a field named metadata has no effect
        part(None, "no disposition at all"),
        config_part(config),
        file_part(b"trailing", name="extra", filename="e.bin"),
    ]
    body = success(put_multipart(client, *parts))
    assert "metadata" not in body
    assert body["tasks"][0]["status"] == "success"
    assert (out_dir / "forms" / "order.png").is_file()


def test_repeated_parts_last_one_wins(client: httpx.Client, out_dir: Path) -> None:
    first = {"tasks": [task("first", "png", "forms", "first.png")]}
    last = {"tasks": [task("last", "png", "forms", "last.png")]}
    parts = [
        config_part("{broken"),
        file_part(b"not an image"),
        config_part(first),
        config_part(last),
        file_part(IMAGE),
    ]
    body = success(put_multipart(client, *parts))
    assert [r["id"] for r in body["tasks"]] == ["last"]
    assert body["tasks"][0]["status"] == "success"
    assert not (out_dir / "forms" / "first.png").exists()


def test_url_in_a_multipart_config_is_never_used(client: httpx.Client) -> None:
    config = {"url": "http://127.0.0.1:1/never.png", "tasks": [task("u", "png", "forms", "u.png")]}
    body = success(put_form(client, config, IMAGE))
    assert body["tasks"][0]["status"] == "success"


def test_empty_file_part_is_an_image_error_per_task(client: httpx.Client) -> None:
    body = success(put_form(client, ONE_TASK, b""))
    assert body["tasks"][0]["error"] == "image: unknown image type"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", multipart_body(config_part(ONE_TASK), file_part(IMAGE))),
        ('multipart/form-data; boundary=""', b"--\r\n\r\n"),
        (MULTIPART, b"no boundary anywhere in this body"),
        (MULTIPART, multipart_body(config_part(ONE_TASK), file_part(IMAGE), close=False)),
        (MULTIPART, multipart_body(config_part(ONE_TASK))[:-30]),
        (MULTIPART, b""),
        ("text/plain; note=multipart/form-data", b"x"),
    ],
)
def test_broken_multipart_is_400(client: httpx.Client, content_type: str, body: bytes) -> None:
    response = client.put("/pipeline", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert response.text.startswith(
        ("malformed multipart/form-data body", "malformed Content-Type")
    )
    assert client.get("/healthz").status_code == 200


def test_config_field_is_truncated_at_1_mib(client: httpx.Client, out_dir: Path) -> None:
    limit = 1024 * 1024

    def config_of_size(size: int) -> str:
        head = json.dumps({"tasks": [task("pad", "png", "forms", "pad.png")], "padding": ""})
        text = head[:-2] + "x" * (size - len(head)) + '"}'
        assert len(text) == size
        return text

    response = put_multipart(client, config_part(config_of_size(limit)), file_part(IMAGE))
    assert success(response)["tasks"][0]["status"] == "success"
    response = put_multipart(client, config_part(config_of_size(limit + 1)), file_part(IMAGE))
    assert error(response) == "invalid JSON in 'config' part"
    # Trailing whitespace past the limit is cut off and the rest is still valid JSON.
    padded = json.dumps(ONE_TASK) + " " * (limit + 10)
    response = put_multipart(client, config_part(padded), file_part(IMAGE))
    assert success(response)["tasks"][0]["status"] == "success"


# --- limits -------------------------------------------------------------------------------


def chunked(data: bytes, size: int = 16384) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_over_limit_file_part_is_413(small: tuple[httpx.Client, Path]) -> None:
    client, out = small
    body = multipart_body(config_part(ONE_TASK), file_part(b"\0" * 250_000))
    response = client.put("/pipeline", content=chunked(body), headers={"Content-Type": MULTIPART})
    assert error(response, 413) == "request body exceeds the limit of 200000 bytes"
    response = client.put("/pipeline", content=body, headers={"Content-Type": MULTIPART})
    assert error(response, 413) == "request body exceeds the limit of 200000 bytes"
    # Discarded parts count too: the limit is on the whole body.
    body = multipart_body(
        file_part(b"\0" * 250_000, name="other"), config_part(ONE_TASK), file_part(IMAGE)
    )
    response = client.put("/pipeline", content=chunked(body), headers={"Content-Type": MULTIPART})
    assert error(response, 413) == "request body exceeds the limit of 200000 bytes"
    assert not (out / "out" / "t.png").exists()
    assert client.get("/healthz").status_code == 200


def test_body_of_exactly_the_limit_is_accepted(small: tuple[httpx.Client, Path]) -> None:
    client, out = small
    config = {"tasks": [task("fits", "png", "limit", "fits.png")]}

    def body_with(padding: int) -> bytes:
        return multipart_body(config_part(config), part("pad", b"p" * padding), file_part(IMAGE))

    body = body_with(200_000 - len(body_with(0)))
    assert len(body) == 200_000
    response = client.put("/pipeline", content=chunked(body), headers={"Content-Type": MULTIPART})
    assert success(response)["tasks"][0]["status"] == "success"
    assert (out / "limit" / "fits.png").is_file()
    response = client.put(
        "/pipeline",
        content=chunked(body_with(200_001 - len(body_with(0)))),
        headers={"Content-Type": MULTIPART},
    )
    assert error(response, 413) == "request body exceeds the limit of 200000 bytes"


def test_over_limit_json_body_is_413(small: tuple[httpx.Client, Path]) -> None:
    client, _ = small
    body = json.dumps({"tasks": [task("t")], "pad": "x" * 250_000}).encode()
    response = client.put(
        "/pipeline", content=chunked(body), headers={"Content-Type": "application/json"}
    )
    assert error(response, 413) == "request body exceeds the limit of 200000 bytes"


def test_max_tasks_setting(small: tuple[httpx.Client, Path]) -> None:
    client, _ = small
    config = {"tasks": [task(str(i)) for i in range(4)]}
    assert error(put_form(client, config, IMAGE)) == "too many tasks: 4 (max: 3)"


# --- response -----------------------------------------------------------------------------


def test_lone_surrogate_ids_are_escaped_in_the_response(client: httpx.Client) -> None:
    raw = (
        '{"tasks": [{"id": "\\ud800", "transform": {"format": "png"}, '
        '"output": {"bucket": "forms", "key": "s.png"}}]}'
    )
    response = put_multipart(client, config_part(raw), file_part(IMAGE))
    body = success(response)
    assert "\\ud800" in response.text
    assert body["tasks"][0]["id"] == "\ud800"
    duplicate = raw.replace("]}", ', {"id": "\\ud800"}]}')
    assert (
        error(put_multipart(client, config_part(duplicate), file_part(IMAGE)))
        == "task[1]: duplicate id '\ufffd'"
    )
