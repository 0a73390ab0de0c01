"""`GET /openapi.json` (openapi.md): an OpenAPI 3.1 description of this server, generated.

Nothing about a parameter is written here. The routes come from the application's router
(only what this configuration registered; aiohttp's HEAD twin of every GET route included);
the query parameters, the pipeline's task `transform` and every `metadata` object come from
the one parameter table (`params/table.py`) with `--dimension-limit` and the other limits
resolved from the running settings; the output content types from the encoders this
libvips has; security schemes from the access settings when they are configured. What
belongs to a route (its bodies, statuses, headers) is described once per path below, and
the response bodies' schemas live in `openapi_schemas.py`.

The document is built on the first request, when the router and the settings are final,
and served as is afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from imaged import __version__
from imaged.engine.formats import MIME_TYPES
from imaged.jsonfmt import dumps
from imaged.params.kinds import METADATA_ROUTE, TRANSFORM_ROUTE, Context, Param, Route
from imaged.params.table import PARAMS, options_of
from imaged.server import playground
from imaged.server.errors import JSON
from imaged.server.openapi_schemas import Schema, ref, response_schemas
from imaged.server.openapi_schemas import pipeline_result as pipeline_result_schema
from imaged.server.state import STATE, State

PATH = "/openapi.json"
OPENAPI_VERSION = "3.1.0"
_METHODS = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE")
_BINARY: Schema = {"type": "string", "format": "binary"}
_TEXT_CONTENT = {"text/plain": {"schema": {"type": "string"}}}
_UPLOAD_TYPES = ("application/octet-stream", "image/*")


@dataclass(frozen=True)
class _Server:
    """What describing an operation needs from the running server."""

    state: State
    ctx: Context  # the bounds of the table, resolved for this server

    @property
    def signing(self) -> bool:
        # `signing_keys` / `api_tokens` are the access extension's settings (access.md).
        return bool(self.state.settings.signing_keys)

    @property
    def tokens(self) -> bool:
        return bool(self.state.settings.api_tokens)

    @property
    def fetch(self) -> bool:
        return self.state.settings.enable_fetch


# --- pieces ---------------------------------------------------------------------------------


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _response(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _headers(*names: str) -> dict[str, Any]:
    return {name: _header(name) for name in ("X-Request-Id", *names)}


def _with_description(param: Param, ctx: Context) -> Schema:
    return {**param.schema(ctx), "description": param.description}


def _parameters(route: Route, method: str, ctx: Context) -> list[dict[str, Any]]:
    """The query parameters of `route` for `method`, in table order (`url` & co. only on
    GET and HEAD, where the source is fetched)."""
    get = method != "PUT"
    return [
        {
            "name": param.name,
            "in": "query",
            "description": param.description,
            "required": param.required and get,
            "schema": param.schema(ctx),
        }
        for param in PARAMS
        if route in param.routes and (get or not param.get_only)
    ]


# Read by the format negotiation of a comma-list `format` (http-api.md).
_ACCEPT = {
    "name": "Accept",
    "in": "header",
    "description": "with a comma-list `format`: the first listed format whose media type "
    "is accepted (explicit types only, q=0 refuses), else the last one",
    "required": False,
    "schema": {"type": "string"},
}


def _upload() -> dict[str, Any]:
    return {
        "description": "the image file itself (any format the server decodes)",
        "required": True,
        "content": {media: {"schema": _BINARY} for media in _UPLOAD_TYPES},
    }


def _error_statuses(server: _Server, method: str, fetch: bool) -> dict[str, Any]:
    """The deliberate error statuses of an image operation (http-api.md, access.md,
    fetch-and-security.md), in status order."""
    statuses: dict[str, Any] = {}
    if method == "PUT" and server.tokens:
        statuses["401"] = _response("Unauthorized")
    if fetch or (method != "PUT" and server.signing):
        statuses["403"] = _response("Forbidden")
    if fetch:
        statuses["404"] = _response("NotFound")
    statuses["408"] = _response("RequestTimeout")
    if method == "PUT":
        statuses["413"] = _response("PayloadTooLarge")
    statuses["500"] = _response("InternalError")
    if fetch:
        statuses["502"] = _response("BadGateway")
    return statuses


def _security(server: _Server, method: str) -> list[dict[str, list[str]]]:
    if method == "PUT":
        return [{"apiToken": []}] if server.tokens else []
    requirements: list[dict[str, list[str]]] = [{"signature": []}] if server.signing else []
    if requirements and server.tokens:
        requirements.append({"apiToken": []})
    return requirements


def _operation(
    server: _Server, method: str, summary: str, responses: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, **fields, "responses": responses}
    security = _security(server, method)
    if security and "security" not in operation:
        operation["security"] = security
    return operation


# --- operations, one describer per path --------------------------------------------------


def _healthz(server: _Server, method: str) -> dict[str, Any]:
    ok = {
        "description": "server information",
        "headers": _headers(),
        "content": {JSON: {"schema": ref("Healthz")}},
    }
    return {"summary": "server information", "responses": {"200": ok}}


def _readyz(server: _Server, method: str) -> dict[str, Any]:
    ready = {"description": "`ready`", "headers": _headers(), "content": _TEXT_CONTENT}
    stopping = {
        "description": "`shutting down`: from SIGTERM until exit (observability.md)",
        "headers": _headers(),
        "content": _TEXT_CONTENT,
    }
    return {
        "summary": "readiness for load balancers",
        "responses": {"200": ready, "503": stopping},
    }


def _openapi(server: _Server, method: str) -> dict[str, Any]:
    ok = {
        "description": "this document",
        "headers": _headers(),
        "content": {JSON: {"schema": {"type": "object", "required": ["openapi", "paths"]}}},
    }
    return {"summary": "this API description (OpenAPI 3.1)", "responses": {"200": ok}}


def _cache_headers(method: str) -> tuple[str, ...]:
    """Validators and caching headers of the GET routes (caching.md)."""
    return () if method == "PUT" else ("ETag", "Cache-Control", "Last-Modified", "X-Cache")


def _image_responses(
    server: _Server, method: str, ok: dict[str, Any], bad_request: str
) -> dict[str, Any]:
    responses = {"200": ok}
    if method != "PUT":
        responses["304"] = _response("NotModified")
    responses["400"] = _response(bad_request)
    responses["414"] = _response("UriTooLong")  # the query string's length limit
    responses.update(_error_statuses(server, method, fetch=method != "PUT"))
    responses["503"] = _response("ServiceUnavailable")
    return dict(sorted(responses.items()))


def _image_operation(
    server: _Server, method: str, route: Route, what: str, ok: dict[str, Any], bad_request: str
) -> dict[str, Any]:
    """/transform or /metadata: the upload on PUT, the source at `url` on GET."""
    parameters = _parameters(route, method, server.ctx)
    if route == TRANSFORM_ROUTE:
        parameters.append(_ACCEPT)
    if method == "PUT":
        summary, fields = f"{what} the uploaded image", {"requestBody": _upload()}
    else:
        summary, fields = f"{what} the image at `url`", {}
    responses = _image_responses(server, method, ok, bad_request)
    return _operation(server, method, summary, responses, parameters=parameters, **fields)


def _transform(server: _Server, method: str) -> dict[str, Any]:
    encoders = server.state.engine.codecs.encoders
    headers = ("X-Image-Width", "X-Image-Height", "X-Response-Time-Ms", "X-Imaged-Warnings")
    ok = {
        "description": "the encoded image, in the output format",
        "headers": _headers(*headers, "Vary", *_cache_headers(method)),
        "content": {MIME_TYPES[fmt]: {"schema": _BINARY} for fmt in encoders},
    }
    return _image_operation(server, method, TRANSFORM_ROUTE, "transform", ok, "BadRequest")


def _metadata(server: _Server, method: str) -> dict[str, Any]:
    ok = {
        "description": "the image's metadata",
        "headers": _headers("X-Response-Time-Ms", "X-Imaged-Warnings", *_cache_headers(method)),
        "content": {JSON: {"schema": ref("Metadata")}},
    }
    return _image_operation(server, method, METADATA_ROUTE, "metadata of", ok, "MetadataBadRequest")


def _pipeline(server: _Server, method: str) -> dict[str, Any]:
    ok = {
        "description": "one result per task, in order (200 even when tasks failed)",
        "headers": _headers(),
        "content": {JSON: {"schema": ref("PipelineResult")}},
    }
    body = {
        "description": "the pipeline configuration as the body (the source is its `url`), "
        "or a multipart form with the configuration in `config` and the image in `file`",
        "required": True,
        "content": {
            JSON: {"schema": ref("PipelineConfig")},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["config", "file"],
                    "properties": {"config": ref("PipelineConfig"), "file": _BINARY},
                },
                "encoding": {
                    "config": {"contentType": JSON},
                    "file": {"contentType": ", ".join(_UPLOAD_TYPES)},
                },
            },
        },
    }
    responses = {"200": ok, "400": _response("BadRequest")}
    responses.update(_error_statuses(server, method, fetch=server.fetch))
    return _operation(
        server,
        method,
        "run a pipeline: one source image, several stored outputs",
        dict(sorted(responses.items())),
        requestBody=body,
    )


def _fixed(value: str) -> dict[str, Any]:
    return {"required": True, "schema": {"type": "string", "const": value}}


def _playground_headers() -> dict[str, Any]:
    fixed = {name: _fixed(value) for name, value in playground.SECURITY_HEADERS.items()}
    return {**_headers(), **fixed}


def _playground_file(media_type: str) -> Describer:
    """A file of the playground page (playground.md): `media_type`, strict CSP."""

    def describe(server: _Server, method: str) -> dict[str, Any]:
        headers = {
            **_playground_headers(),
            "ETag": _header("ETag"),
            "Cache-Control": _fixed(playground.CACHE_CONTROL),
        }
        ok = {
            "description": f"the file ({media_type})",
            "headers": headers,
            "content": {media_type: {"schema": {"type": "string"}}},
        }
        current = {
            "description": "the client's copy is current (If-None-Match)",
            "headers": headers,
        }
        return {
            "summary": "the playground: a page to try every option",
            "responses": {"200": ok, "304": current},
        }

    return describe


def _root(server: _Server, method: str) -> dict[str, Any]:
    found = {
        "description": "to the playground",
        "headers": {**_playground_headers(), "Location": _fixed(playground.PAGE)},
    }
    return {"summary": f"redirect to {playground.PAGE}", "responses": {"302": found}}


Describer = Callable[[_Server, str], dict[str, Any]]
# What each path of the server is; which of them exist is the router's business.
DESCRIBERS: dict[str, Describer] = {
    "/healthz": _healthz,
    "/readyz": _readyz,
    PATH: _openapi,
    "/transform": _transform,
    "/metadata": _metadata,
    "/pipeline": _pipeline,
    playground.ROOT: _root,
    **{
        playground.asset_path(name): _playground_file(media_type)
        for name, media_type in playground.MEDIA_TYPES.items()
    },
}


def _head(get: dict[str, Any]) -> dict[str, Any]:
    """HEAD: the GET operation without response bodies (the same status and headers)."""
    responses = {}
    for status, response in get["responses"].items():
        responses[status] = {k: v for k, v in response.items() if k != "content"}
    return {**get, "summary": f"{get['summary']} (HEAD: headers only)", "responses": responses}


def _undescribed(handler: Callable[..., Any]) -> dict[str, Any]:
    """A route registered without a describer: its handler's first docstring line."""
    summary = (handler.__doc__ or handler.__name__).strip().splitlines()[0]
    return {"summary": summary, "responses": {"default": {"description": "see the summary"}}}


def _path_item(server: _Server, path: str, routes: dict[str, web.AbstractRoute]) -> Schema:
    describe = DESCRIBERS.get(path)
    item: Schema = {}
    for method in _METHODS:
        route = routes.get(method)
        if route is None:
            continue
        if describe is None:
            operation = _undescribed(route.handler)
        elif method == "HEAD" and "GET" in routes:
            operation = _head(describe(server, "GET"))
        else:
            operation = describe(server, method)
        operation["operationId"] = f"{method.lower()}{path.strip('/').title().replace('.', '')}"
        item[method.lower()] = operation
    return item


# --- components -----------------------------------------------------------------------------


def _header_components() -> dict[str, Any]:
    def header(description: str, schema: Schema, required: bool = False) -> dict[str, Any]:
        return {"description": description, "required": required, "schema": schema}

    integer = {"type": "integer", "minimum": 0}
    return {
        "X-Request-Id": header(
            "identifies the request in the server's log",
            {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
        ),
        "X-Image-Width": header("output width in pixels", {"type": "integer", "minimum": 1}, True),
        "X-Image-Height": header(
            "output height in pixels", {"type": "integer", "minimum": 1}, True
        ),
        "X-Response-Time-Ms": header(
            "milliseconds from request start to the result", integer, True
        ),
        "X-Imaged-Warnings": header(
            "lenient mode: `<param>: <reason>` items joined by `; `", {"type": "string"}
        ),
        "Vary": header("`Accept` when the output format was negotiated", {"type": "string"}),
        "ETag": header(
            "strong entity tag of the response body",
            {"type": "string", "pattern": '^"[A-Za-z0-9_-]{1,64}"$'},
        ),
        "Cache-Control": header("caching directives", {"type": "string"}),
        "Last-Modified": header("the origin's Last-Modified", {"type": "string"}),
        "X-Cache": header("result cache: HIT or MISS", {"type": "string", "enum": ["HIT", "MISS"]}),
        "Retry-After": header("seconds to wait before retrying", integer, True),
        "WWW-Authenticate": header("the token scheme", {"type": "string"}, True),
    }


def _response_components() -> dict[str, Any]:
    def error(description: str, *headers: str) -> dict[str, Any]:
        return {
            "description": description,
            "headers": _headers(*headers, "Cache-Control"),
            "content": _TEXT_CONTENT,
        }

    metadata_bad_request = error("invalid parameters (strict mode: JSON), body or image")
    metadata_bad_request["content"] = {**_TEXT_CONTENT, JSON: {"schema": ref("StrictError")}}
    return {
        "NotModified": {
            "description": "the client's copy is current (If-None-Match)",
            "headers": _headers("ETag", "Cache-Control", "Vary", "Last-Modified"),
        },
        "BadRequest": error("invalid parameters, body, configuration or image"),
        "MetadataBadRequest": metadata_bad_request,
        "Unauthorized": error("missing or invalid API token", "WWW-Authenticate"),
        "Forbidden": error("source host not allowed or private, or a missing or bad signature"),
        "NotFound": error("the source URL answered 404"),
        "RequestTimeout": error("the request head or body did not arrive in time"),
        "PayloadTooLarge": error("the request body is over the body limit"),
        "UriTooLong": error("the query string is over its length limit"),
        "InternalError": error("a server fault (logged)"),
        "BadGateway": error("the source could not be fetched"),
        "ServiceUnavailable": error("the image queue is full", "Retry-After"),
    }


def _security_schemes(server: _Server) -> dict[str, Any]:
    schemes: dict[str, Any] = {}
    if server.signing:
        schemes["signature"] = {
            "type": "apiKey",
            "in": "query",
            "name": "sig",
            "description": "HMAC-SHA256 of the path and query before `sig` (the last "
            "parameter), base64url without padding",
        }
    if server.tokens:
        schemes["apiToken"] = {"type": "http", "scheme": "bearer"}
    return schemes


def _object(params: tuple[Param, ...], ctx: Context, **schema: Any) -> Schema:
    properties = {p.name: _with_description(p, ctx) for p in params}
    return {"type": "object", **schema, "properties": properties}


def _pipeline_schemas(server: _Server) -> dict[str, Schema]:
    """The configuration of pipeline.md as JSON Schema: task `transform` and every
    `metadata` object from the table; unknown keys are ignored, so allowed."""
    from imaged.pipeline.executor import ALLOWED_CONTENT_TYPES

    settings = server.state.settings
    bucket: Schema = {"type": "string", "minLength": 1}
    if settings.allowed_buckets is not None:
        bucket["enum"] = sorted(settings.allowed_buckets)
    non_empty = {"type": "string", "minLength": 1}
    return {
        "PipelineConfig": {
            "type": "object",
            "required": ["tasks"],
            "properties": {
                "url": {"type": "string", "description": "source image URL (JSON form only)"},
                "metadata": {**ref("MetadataFlags"), "description": "metadata of the source"},
                "tasks": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": settings.max_pipeline_tasks,
                    "items": ref("PipelineTask"),
                    "description": "task ids must be unique",
                },
            },
        },
        "PipelineTask": {
            "type": "object",
            "required": ["id", "transform", "output"],
            "properties": {
                "id": non_empty,
                "transform": ref("TaskTransform"),
                "output": ref("TaskOutput"),
                "metadata": {**ref("MetadataFlags"), "description": "metadata of the output"},
            },
        },
        "TaskTransform": _object(options_of(TRANSFORM_ROUTE), server.ctx, required=["format"]),
        "TaskOutput": {
            "type": "object",
            "required": ["bucket", "key"],
            "properties": {
                "bucket": bucket,
                "key": non_empty,
                "acl": {"type": "string", "description": "canned ACL (S3)"},
                "contentType": {"type": "string", "enum": sorted(ALLOWED_CONTENT_TYPES)},
            },
        },
        "MetadataFlags": _object(options_of(METADATA_ROUTE), server.ctx),
        "PipelineResult": pipeline_result_schema(),
    }


# --- the document ---------------------------------------------------------------------------


def build_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of `app` as it is configured (its router is complete)."""
    state = app[STATE]
    server = _Server(state, Context(dimension_limit=state.settings.dimension_limit))
    # One path can have several resources (routes added for it at different times).
    routes: dict[str, dict[str, web.AbstractRoute]] = {}
    for resource in app.router.resources():
        routes.setdefault(resource.canonical, {}).update((r.method, r) for r in resource)
    paths = {path: _path_item(server, path, methods) for path, methods in routes.items()}
    schemas = response_schemas()
    if "/pipeline" in paths:
        schemas.update(_pipeline_schemas(server))
    components: dict[str, Any] = {
        "schemas": schemas,
        "headers": _header_components(),
        "responses": _response_components(),
    }
    security_schemes = _security_schemes(server)
    if security_schemes:
        components["securitySchemes"] = security_schemes
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "imaged",
            "version": __version__,
            "description": "HTTP image processing on libvips. This document describes the "
            "running server: only the routes and limits of its configuration.",
        },
        "paths": paths,
        "components": components,
    }


class _Cache:
    """The serialised document, built once per application."""

    body: bytes | None = None


_DOCUMENT = web.AppKey("openapi_document", _Cache)


async def serve(request: web.Request) -> web.Response:
    """GET /openapi.json: this server's API description."""
    cache = request.app[_DOCUMENT]
    if cache.body is None:
        cache.body = dumps(build_document(request.app)).encode()
    return web.Response(body=cache.body, content_type=JSON, charset="utf-8")


def add_route(app: web.Application) -> None:
    """Register `GET /openapi.json` (and HEAD) on the main application."""
    app[_DOCUMENT] = _Cache()
    app.router.add_get(PATH, serve)
