"""GET /healthz and the 404 model, over HTTP against the real server."""

from __future__ import annotations

import json
import platform

import httpx
import pyvips


def test_healthz_fields_in_order(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    body = json.loads(r.text)
    assert list(body) == ["version", "runtime", "pyvips", "vips", "decoders", "encoders"]
    assert body["version"] == "0.2.3"
    assert body["runtime"] == f"Python {platform.python_version()}"
    assert body["pyvips"] == pyvips.__version__
    assert body["vips"] == f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"
    assert body["decoders"] == sorted(body["decoders"])
    assert {"jpeg", "png", "gif", "webp", "tiff", "svg"} <= set(body["decoders"])
    assert "raw" in body["encoders"] and "raw" not in body["decoders"]
    assert "svg" not in body["encoders"] and "pdf" not in body["encoders"]
    assert r.text == json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def test_healthz_head(client: httpx.Client) -> None:
    r = client.head("/healthz")
    assert r.status_code == 200
    assert r.content == b""


def test_unknown_routes_are_404_text(client: httpx.Client) -> None:
    for method, path in [
        ("GET", "/nope"),
        ("POST", "/healthz"),
        ("OPTIONS", "/transform"),
        ("GET", "/transform"),
        ("PUT", "/transform/"),
        ("GET", "/Healthz"),
        ("PUT", "/pipeline"),
        ("DELETE", "/metadata"),
    ]:
        r = client.request(method, path)
        assert r.status_code == 404, (method, path)
        assert r.text == "404 Not Found"
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
