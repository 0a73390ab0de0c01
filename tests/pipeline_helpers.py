"""Request builders shared by the PUT /pipeline end-to-end tests."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pyvips

BOUNDARY = "imaged-test-boundary-7c1f"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def sample_image(width: int = 96, height: int = 64, fmt: str = ".png") -> bytes:
    """A small RGB gradient (no libvips work happens in the server for this)."""
    xyz = pyvips.Image.xyz(width, height)
    x, y = xyz[0], xyz[1]
    image = (x * (255 / width)).bandjoin([y * (255 / height), (x + y) % 256]).cast("uchar")
    data: bytes = image.write_to_buffer(fmt)
    return data


def task(
    task_id: str,
    fmt: str = "png",
    bucket: str = "out",
    key: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": task_id,
        "transform": {"format": fmt},
        "output": {"bucket": bucket, "key": key or f"{task_id}.{fmt}"},
    }
    for name, value in extra.items():
        if name in ("acl", "contentType"):
            spec["output"][name] = value
        elif name == "metadata":
            spec["metadata"] = value
        else:
            spec["transform"][name] = value
    return spec


def part(name: str | None, body: bytes | str, filename: str | None = None, **headers: str) -> bytes:
    """One raw multipart part (headers + body), for bodies httpx would not build."""
    lines = []
    if name is not None:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        lines.append(f"Content-Disposition: {disposition}")
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    raw = body.encode() if isinstance(body, str) else body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


def multipart_body(*parts: bytes, close: bool = True) -> bytes:
    out = b"".join(f"--{BOUNDARY}\r\n".encode() + p + b"\r\n" for p in parts)
    return out + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


def config_part(config: Any, **headers: str) -> bytes:
    text = config if isinstance(config, str) else json.dumps(config)
    return part("config", text, **headers)


def file_part(data: bytes, name: str = "file", filename: str = "source.png") -> bytes:
    return part(name, data, filename=filename, Content_Type="application/octet-stream")


def put_multipart(client: httpx.Client, *parts: bytes, close: bool = True) -> httpx.Response:
    return client.put(
        "/pipeline",
        content=multipart_body(*parts, close=close),
        headers={"Content-Type": MULTIPART},
    )


def put_form(client: httpx.Client, config: Any, image: bytes) -> httpx.Response:
    """The usual multipart request: a `config` field and a `file` file part."""
    return put_multipart(client, config_part(config), file_part(image))


def put_json(client: httpx.Client, config: Any) -> httpx.Response:
    return client.put(
        "/pipeline",
        content=json.dumps(config).encode(),
        headers={"Content-Type": "application/json"},
    )
