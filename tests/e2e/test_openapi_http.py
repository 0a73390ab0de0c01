"""GET /openapi.json over HTTP (openapi.md): served as documented, describing the running
server (its routes, its limits), and the response schemas hold for what the server really
answers — every corpus image's metadata with every flag, an EXIF block with every field,
/healthz and pipeline results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from tests.exif_blob import every_field, jpeg_with_app1, tiff
from tests.pipeline_helpers import put_form, sample_image, task
from tests.serverproc import CORPUS, ServerProcess

from imaged.server import playground

JSON = "application/json; charset=utf-8"
ALL_FLAGS = "exif&stats&thumbhash&blurhash"
# The playground's page, assets and the `/` redirect (playground.md): GET and HEAD each.
PLAYGROUND = {
    path: ["get", "head"]
    for path in ("/", "/playground", *(f"/playground/{n}" for n in playground.ASSETS))
}


def document_of(client: httpx.Client) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == JSON
    parsed: dict[str, Any] = json.loads(r.text)
    return parsed


def validator(document: dict[str, Any], name: str) -> OAS31Validator:
    """Validates against `components/schemas/<name>` of `document`, $refs resolved in it."""
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return OAS31Validator(root)


def errors(document: dict[str, Any], name: str, instance: Any) -> list[str]:
    return [e.message for e in validator(document, name).iter_errors(instance)]


@pytest.fixture(scope="module")
def document(client: httpx.Client) -> dict[str, Any]:
    return document_of(client)


def test_served_on_the_main_listener_as_json(
    client: httpx.Client, document: dict[str, Any]
) -> None:
    validate(document)
    again = client.get("/openapi.json")
    assert json.loads(again.text) == document  # built once, served as is
    head = client.head("/openapi.json")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == JSON
    assert document["info"]["version"] == client.get("/healthz").json()["version"]


def test_a_default_server_documents_only_its_routes(document: dict[str, Any]) -> None:
    assert {path: sorted(item) for path, item in document["paths"].items()} == {
        "/healthz": ["get", "head"],
        "/readyz": ["get", "head"],
        "/openapi.json": ["get", "head"],
        "/transform": ["put"],
        "/metadata": ["put"],
        **PLAYGROUND,
    }


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    out: Path = tmp_path_factory.mktemp("openapi-out")
    args = ["--enable-fetch", "--enable-pipeline", "--output-dir", str(out)]
    args += ["--dimension-limit", "777", "--max-pipeline-tasks", "4", "--concurrency", "2"]
    with ServerProcess(args) as proc, proc.client() as c:
        yield c


def test_the_documented_limits_are_the_servers(limited: httpx.Client) -> None:
    document = document_of(limited)
    assert set(document["paths"]) == {
        "/healthz", "/readyz", "/openapi.json", "/transform", "/metadata", "/pipeline",
        *PLAYGROUND,
    }  # fmt: skip
    width = next(
        p for p in document["paths"]["/transform"]["get"]["parameters"] if p["name"] == "width"
    )
    assert width["schema"]["maximum"] == 777
    image = sample_image(20, 10)
    at_limit = limited.put("/transform?width=777&strict=1", content=image)
    assert at_limit.status_code == 200
    beyond = limited.put("/transform?width=778&strict=1", content=image)
    assert beyond.status_code == 400
    assert beyond.text == 'Invalid parameters:\n- width: must be at most 777 (got "778")'
    tasks = document["components"]["schemas"]["PipelineConfig"]["properties"]["tasks"]
    assert tasks["maxItems"] == 4
    too_many = put_form(limited, {"tasks": [task(str(i)) for i in range(5)]}, image)
    assert (too_many.status_code, too_many.text) == (400, "too many tasks: 5 (max: 4)")


def corpus_images() -> list[str]:
    top = sorted(p.name for p in CORPUS.iterdir() if p.is_file() and p.suffix != ".md")
    return [*top, "orientation/Landscape_6.jpg"]


@pytest.mark.parametrize("name", corpus_images())
def test_real_metadata_conforms_to_the_schema(
    client: httpx.Client, document: dict[str, Any], name: str
) -> None:
    r = client.put(f"/metadata?{ALL_FLAGS}", content=(CORPUS / name).read_bytes())
    if r.status_code == 400:  # a format this libvips cannot decode (e.g. HEIC)
        assert r.text.startswith("image: decoding type")
        return
    assert r.status_code == 200, r.text
    fields = r.json()
    assert errors(document, "Metadata", fields) == []
    assert {"stats", "thumbhash", "blurhash"} <= set(fields)


def test_the_exif_schema_is_exactly_the_mapped_fields(
    client: httpx.Client, document: dict[str, Any]
) -> None:
    """A block with every field: each one validates, and the schema lists no other key."""
    data = jpeg_with_app1(tiff(*every_field()))
    exif = client.put("/metadata?exif", content=data).json()["exif"]
    assert errors(document, "Exif", exif) == []
    assert list(exif) == list(document["components"]["schemas"]["Exif"]["properties"])


def test_the_schemas_refuse_what_the_server_never_sends(document: dict[str, Any]) -> None:
    """The schemas are strict enough to catch a changed field (the fuzzer relies on it)."""
    good = {"format": "png", "width": 1, "height": 1, "size": 9, "space": "srgb",
            "channels": 3, "depth": "uchar", "isProgressive": False, "isPalette": False,
            "hasProfile": False, "hasAlpha": False}  # fmt: skip
    assert errors(document, "Metadata", good) == []
    assert errors(document, "Metadata", {**good, "size": "9"})
    assert errors(document, "Metadata", {**good, "unknown": 1})
    assert errors(document, "Metadata", {**good, "blurhash": "too short"})
    assert errors(document, "Metadata", {k: v for k, v in good.items() if k != "hasAlpha"})


def test_healthz_and_pipeline_results_conform(limited: httpx.Client) -> None:
    document = document_of(limited)
    assert errors(document, "Healthz", limited.get("/healthz").json()) == []
    config = {
        "metadata": {"blurhash": True, "stats": True},
        "tasks": [task("ok", "webp", width=9, metadata={"exif": True}), task("no", "pdf")],
    }
    r = put_form(limited, config, sample_image(30, 20))
    assert r.status_code == 200, r.text
    result = r.json()
    assert [t["status"] for t in result["tasks"]] == ["success", "failed"]
    assert errors(document, "PipelineResult", result) == []
    assert errors(document, "PipelineConfig", config) == []
    assert errors(document, "PipelineConfig", {"tasks": []})
