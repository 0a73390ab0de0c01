"""The OpenAPI document (`server/openapi.py`): valid OpenAPI 3.1 in every configuration, only
the registered routes, and the parameter table and the parsers agree with it — every
parameter the parsers accept is documented with the same range, choices and default, and
every documented value is accepted."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from imaged.engine.formats import MIME_TYPES
from imaged.engine.options import MetadataOptions, TransformOptions
from imaged.log import Logger
from imaged.params.kinds import METADATA_ROUTE, TRANSFORM_ROUTE, Context, Param, Route
from imaged.params.metadata import parse_metadata_query
from imaged.params.query import parse_query_string
from imaged.params.table import PARAMS, known, options_of
from imaged.params.transform import parse_transform_query
from imaged.server import playground
from imaged.server.app import build_state, create_app
from imaged.server.openapi import build_document
from imaged.server.state import STATE
from imaged.settings import Settings

LIMIT = 777
CONFIGURATIONS = {
    "plain": {},
    "fetch": {"enable_fetch": True},
    "pipeline": {"enable_pipeline": True, "output_dir": "unused"},
    "everything": {"enable_fetch": True, "enable_pipeline": True, "output_dir": "unused"},
    "no playground": {"disable_playground": True},
}
ROUTE_OF_PATH: dict[str, Route] = {"/transform": TRANSFORM_ROUTE, "/metadata": METADATA_ROUTE}


def make_app(settings: Settings) -> web.Application:
    return create_app(build_state(settings, Logger(stream=io.StringIO())))


@pytest.fixture(scope="module")
def documents() -> Iterator[dict[str, tuple[web.Application, dict[str, Any]]]]:
    built = {}
    for name, options in CONFIGURATIONS.items():
        app = make_app(Settings(dimension_limit=LIMIT, **options))  # type: ignore[arg-type]
        built[name] = (app, build_document(app))
    yield built
    for app, _ in built.values():
        app[STATE].engine.close()


def operations(document: dict[str, Any]) -> set[str]:
    return {f"{m.upper()} {path}" for path, item in document["paths"].items() for m in item}


@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_the_document_is_valid_openapi_3_1(
    name: str, documents: dict[str, tuple[web.Application, dict[str, Any]]]
) -> None:
    _, document = documents[name]
    assert document["openapi"] == "3.1.0"
    validate(document)  # openapi-spec-validator: raises on any violation


def test_only_the_registered_routes_are_described(
    documents: dict[str, tuple[web.Application, dict[str, Any]]],
) -> None:
    base = {"GET /healthz", "HEAD /healthz", "GET /openapi.json", "HEAD /openapi.json"}
    base |= {"GET /readyz", "HEAD /readyz"}
    base |= {"PUT /transform", "PUT /metadata"}
    fetch = {"GET /transform", "HEAD /transform", "GET /metadata", "HEAD /metadata"}
    pages = ["/", "/playground", *(f"/playground/{name}" for name in playground.ASSETS)]
    page = {f"{method} {path}" for path in pages for method in ("GET", "HEAD")}
    expected = {
        "plain": base | page,
        "fetch": base | page | fetch,
        "pipeline": base | page | {"PUT /pipeline"},
        "everything": base | page | fetch | {"PUT /pipeline"},
        "no playground": base,
    }
    for name, (app, document) in documents.items():
        assert operations(document) == expected[name], name
        registered = {f"{r.method} {r.resource.canonical}" for r in app.router.routes()}  # type: ignore[union-attr]
        assert operations(document) == registered, name
        pipeline = "PUT /pipeline" in expected[name]
        assert ("PipelineConfig" in document["components"]["schemas"]) == pipeline, name


def documented(document: dict[str, Any], path: str, method: str) -> dict[str, dict[str, Any]]:
    operation = document["paths"][path][method]
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}


def expected_schema(param: Param) -> dict[str, Any]:
    """What the table says about `param`, resolved for a server with `--dimension-limit
    LIMIT` — written out here rather than through `Param.schema`."""
    kind_type = param.kind.json_type
    schema: dict[str, Any] = {"type": kind_type if isinstance(kind_type, str) else list(kind_type)}
    if param.minimum is not None:
        lo, hi = param.minimum, param.maximum
        schema["minimum"] = LIMIT if lo == "dimension-limit" else lo
        schema["maximum"] = LIMIT if hi == "dimension-limit" else hi
    if param.ranges:
        schema["minimum"] = min(lo for lo, _ in param.ranges.values())
        schema["maximum"] = max(hi for _, hi in param.ranges.values())
        schema["x-ranges"] = {f: list(r) for f, r in param.ranges.items()}
    if param.choices:
        schema["enum"] = list(param.choices)
    if param.default is not None:
        schema["default"] = param.default
    if param.example is not None:
        schema["examples"] = [param.example]
    return schema


@pytest.mark.parametrize("param", PARAMS, ids=lambda p: p.name)
def test_every_table_parameter_is_documented_on_its_routes(
    param: Param, documents: dict[str, tuple[web.Application, dict[str, Any]]]
) -> None:
    _, document = documents["fetch"]
    for path, route in ROUTE_OF_PATH.items():
        for method in ("put", "get", "head"):
            params = documented(document, path, method)
            applies = route in param.routes and not (param.get_only and method == "put")
            assert (param.name in params) == applies, (path, method)
            if not applies:
                continue
            entry = params[param.name]
            assert entry["in"] == "query"
            assert entry["description"] == param.description
            assert entry["required"] == (param.required and method != "put")
            assert entry["schema"] == expected_schema(param)


def test_every_documented_parameter_is_known_to_the_parser(
    documents: dict[str, tuple[web.Application, dict[str, Any]]],
) -> None:
    _, document = documents["fetch"]
    for path, route in ROUTE_OF_PATH.items():
        for method in ("put", "get", "head"):
            assert set(documented(document, path, method)) <= known(route)


def parse(route: Route, query: str) -> tuple[Any, list[str]]:
    values = parse_query_string(query)
    if route == TRANSFORM_ROUTE:
        parsed = parse_transform_query(values, "", LIMIT)
        return parsed.options, [w.reason for w in parsed.warnings]
    options, warnings = parse_metadata_query(values)
    return options, [w.reason for w in warnings]


def document_parameters() -> list[tuple[str, str]]:
    return [(path, p.name) for path, route in ROUTE_OF_PATH.items() for p in PARAMS
            if route in p.routes]  # fmt: skip


@pytest.mark.parametrize(("path", "name"), document_parameters())
def test_the_parser_accepts_exactly_the_documented_values(
    path: str, name: str, documents: dict[str, tuple[web.Application, dict[str, Any]]]
) -> None:
    """Each documented bound, choice and default is what the query parser does: the bounds
    pass without a warning and one beyond them is clamped with one; every choice passes and
    another value warns; an absent parameter means the documented default."""
    _, document = documents["fetch"]
    route = ROUTE_OF_PATH[path]
    schema = documented(document, path, "get")[name]["schema"]
    defaults = TransformOptions() if route == TRANSFORM_ROUTE else MetadataOptions()
    if "default" in schema:
        assert getattr(defaults, name) == schema["default"]
    for fmt, (lo, hi) in schema.get("x-ranges", {}).items():
        assert parse(route, f"format={fmt}&{name}={lo}")[1] == []
        assert parse(route, f"format={fmt}&{name}={hi}")[1] == []
        beyond = parse(route, f"format={fmt}&{name}={hi + 1}")[1]
        assert beyond == [f"must be at most {hi} for {fmt}"]
        if lo > 0:
            below = parse(route, f"format={fmt}&{name}={lo - 1}")[1]
            assert below == [f"must be at least {lo} for {fmt}"]
    if "minimum" in schema and "x-ranges" not in schema:
        lo, hi = schema["minimum"], schema["maximum"]
        for inside in (lo, hi):
            options, warnings = parse(route, f"{name}={inside!r}")
            assert warnings == [] and getattr(options, name) == inside
        assert parse(route, f"{name}={hi * 2!r}")[1] == [f"must be at most {hi:g}"]
    for choice in schema.get("enum", []):
        options, warnings = parse(route, f"{name}={choice}")
        assert warnings == [] and getattr(options, name) == choice
    if "enum" in schema:
        assert len(parse(route, f"{name}=not-a-choice")[1]) == 1
    if "boolean" in schema["type"]:
        for text in ("true", "false"):
            assert parse(route, f"{name}={text}")[1] == []
    if schema["type"] == "string" and "enum" not in schema:  # read by the HTTP layer
        assert parse(route, f"{name}=anything")[1] == []


def test_the_pipeline_schema_comes_from_the_table(
    documents: dict[str, tuple[web.Application, dict[str, Any]]],
) -> None:
    _, document = documents["pipeline"]
    schemas = document["components"]["schemas"]
    ctx = Context(dimension_limit=LIMIT)
    transform = schemas["TaskTransform"]
    assert transform["required"] == ["format"]
    assert list(transform["properties"]) == [p.name for p in options_of(TRANSFORM_ROUTE)]
    for param in options_of(TRANSFORM_ROUTE):
        assert transform["properties"][param.name] == {
            **param.schema(ctx),
            "description": param.description,
        }
        assert transform["properties"][param.name]["type"] == expected_schema(param)["type"]
    flags = schemas["MetadataFlags"]["properties"]
    assert list(flags) == [p.name for p in options_of(METADATA_ROUTE)]
    assert all(flag["type"] == "boolean" and flag["default"] is False for flag in flags.values())
    assert "blurhash" in flags
    tasks = schemas["PipelineConfig"]["properties"]["tasks"]
    assert (tasks["minItems"], tasks["maxItems"]) == (1, Settings().max_pipeline_tasks)
    body = document["paths"]["/pipeline"]["put"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/PipelineConfig"}
    form = body["multipart/form-data"]
    assert form["schema"]["properties"]["config"] == body["application/json"]["schema"]
    assert form["encoding"]["config"]["contentType"] == "application/json"


def test_limits_of_the_running_settings_are_resolved() -> None:
    app = make_app(
        Settings(
            dimension_limit=64,
            enable_pipeline=True,
            output_dir="unused",
            max_pipeline_tasks=3,
            pipeline_buckets="b,a",
        )
    )
    document = build_document(app)
    width = documented(document, "/transform", "put")["width"]["schema"]
    assert (width["minimum"], width["maximum"]) == (1, 64)
    schemas = document["components"]["schemas"]
    assert schemas["TaskTransform"]["properties"]["height"]["maximum"] == 64
    assert schemas["PipelineConfig"]["properties"]["tasks"]["maxItems"] == 3
    assert schemas["TaskOutput"]["properties"]["bucket"]["enum"] == ["a", "b"]


def test_transform_responses_list_this_servers_encoders(
    documents: dict[str, tuple[web.Application, dict[str, Any]]],
) -> None:
    app, document = documents["fetch"]
    state = app[STATE]
    ok = document["paths"]["/transform"]["put"]["responses"]["200"]
    assert set(ok["content"]) == {MIME_TYPES[f] for f in state.engine.codecs.encoders}
    assert {"X-Image-Width", "X-Image-Height", "X-Response-Time-Ms"} <= set(ok["headers"])
    for name in ("X-Image-Width", "X-Image-Height", "X-Response-Time-Ms"):
        assert document["components"]["headers"][name]["required"] is True
    get = document["paths"]["/transform"]["get"]["responses"]
    assert {"ETag", "Cache-Control", "Vary"} <= set(get["200"]["headers"])
    assert {"200", "304", "400", "403", "404", "408", "414", "500", "502", "503"} == set(get)
    put = document["paths"]["/transform"]["put"]["responses"]
    assert {"200", "400", "408", "413", "414", "500", "503"} == set(put)
    head = document["paths"]["/transform"]["head"]["responses"]
    assert set(head) == set(get) and "content" not in head["200"]
    strict = document["components"]["responses"]["MetadataBadRequest"]["content"]
    assert set(strict) == {"text/plain", "application/json"}


def test_security_schemes_appear_only_when_configured(
    documents: dict[str, tuple[web.Application, dict[str, Any]]],
) -> None:
    _, plain = documents["everything"]
    assert "securitySchemes" not in plain["components"]
    assert all("security" not in op for item in plain["paths"].values() for op in item.values())

    both = build_document(
        make_app(
            Settings(
                enable_fetch=True,
                enable_pipeline=True,
                output_dir="unused",
                signing_keys=(b"k" * 32,),
                api_tokens=("t" * 16,),
            )
        )
    )
    validate(both)
    schemes = both["components"]["securitySchemes"]
    assert schemes["signature"] == {**schemes["signature"], "type": "apiKey", "in": "query",
                                    "name": "sig"}  # fmt: skip
    assert schemes["apiToken"] == {"type": "http", "scheme": "bearer"}
    paths = both["paths"]
    for path in ("/transform", "/metadata"):
        for method in ("get", "head"):
            assert paths[path][method]["security"] == [{"signature": []}, {"apiToken": []}]
        assert paths[path]["put"]["security"] == [{"apiToken": []}]
        assert "401" in paths[path]["put"]["responses"]
    assert paths["/pipeline"]["put"]["security"] == [{"apiToken": []}]
    for path in ("/healthz", "/openapi.json"):
        assert all("security" not in op for op in paths[path].values())

    tokens_only = build_document(make_app(Settings(api_tokens=("t" * 16,))))
    assert set(tokens_only["components"]["securitySchemes"]) == {"apiToken"}
    assert "401" not in documents["plain"][1]["paths"]["/transform"]["put"]["responses"]
