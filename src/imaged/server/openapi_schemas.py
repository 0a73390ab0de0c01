"""JSON Schemas of the response bodies in /openapi.json (`server/openapi.py`).

These describe what the handlers, the metadata extractor and the pipeline executor produce
(metadata.md, pipeline.md, http-api.md), key for key in the spec's order. Where a value has a
closed set the set is the code's own (format ids, EXIF enum texts). `additionalProperties` is
false wherever the spec lists every key, so a field added without its schema fails the
schema tests and the fuzzer's response checks instead of going undocumented.
"""

from __future__ import annotations

from typing import Any

from imaged.engine import blurhash, exif_fields
from imaged.engine.formats import FORMATS
from imaged.pipeline import FAILED, SUCCESS

Schema = dict[str, Any]

INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
COUNT: Schema = {"type": "integer", "minimum": 0}
POSITIVE: Schema = {"type": "integer", "minimum": 1}
FORMAT_ID: Schema = {"type": "string", "enum": list(FORMATS)}
# ThumbHash: standard base64 with padding. BlurHash: base 83, 4 × 3 components → 28 chars.
BASE64 = "^[A-Za-z0-9+/]*={0,2}$"
BLURHASH_LENGTH = 2 + 4 + 2 * (blurhash.X_COMPONENTS * blurhash.Y_COMPONENTS - 1)
BLURHASH_PATTERN = f"^[0-9A-Za-z#$%*+,.:;=?@\\[\\]^_{{|}}~-]{{{BLURHASH_LENGTH}}}$"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def closed(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    """An object with exactly these keys (in this order), `required` of them always there."""
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _enum_text(table: dict[int, str]) -> Schema:
    return {"type": "string", "enum": list(dict.fromkeys(table.values()))}


# EXIF "raw" values: text, a number or a list of numbers (metadata.md, "raw" rules).
_RAW: Schema = {"type": ["string", "number", "array"], "items": NUMBER}
_TIMESTAMP = "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.000(Z|[+-]\\d{2}:\\d{2})$"


def exif() -> Schema:
    f = exif_fields
    return closed(
        {
            "make": _RAW,
            "model": _RAW,
            "software": _RAW,
            "lens_make": _RAW,
            "lens_model": _RAW,
            "lens_serial": _RAW,
            "body_serial": {"type": "string", "minLength": 1},
            "unique_id": _RAW,
            "datetime": {"type": "string", "pattern": _TIMESTAMP},
            "orientation": _enum_text(f.ORIENTATION),
            "exposure_time": NUMBER,
            "f_number": NUMBER,
            "focal_length": NUMBER,
            "focal_length_35mm": NUMBER,
            "iso": NUMBER,
            "flash": {"type": "string", "enum": ["Fired", "Did not fire", "Off", "Auto"]},
            "exposure_program": _enum_text(f.EXPOSURE_PROGRAM),
            "exposure_compensation": NUMBER,
            "metering_mode": _enum_text(f.METERING_MODE),
            "white_balance": _enum_text(f.WHITE_BALANCE),
            "color_space": _enum_text(f.COLOR_SPACE),
            "brightness": NUMBER,
            "max_aperture": NUMBER,
            "subject_distance": NUMBER,
            "light_source": _enum_text(f.LIGHT_SOURCE),
            "scene_capture_type": _enum_text(f.SCENE_CAPTURE_TYPE),
            "contrast": _enum_text(f.CONTRAST),
            "saturation": _enum_text(f.SATURATION),
            "sharpness": _enum_text(f.SHARPNESS),
            "digital_zoom": {"type": "number", "exclusiveMinimum": 1},
            "latitude": NUMBER,
            "longitude": NUMBER,
            "altitude": NUMBER,
            "speed": NUMBER,
            "direction": NUMBER,
            "gps_timestamp": {"type": "string", "pattern": "T.*:.*:.*Z$"},
            "description": _RAW,
            "artist": _RAW,
            "copyright": _RAW,
            "user_comment": {"type": "string", "minLength": 1},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        }
    )


def stats_channel() -> Schema:
    keys = ("min", "max", "sum", "squaresSum", "mean", "stdev", "minX", "minY", "maxX", "maxY")
    types = (INTEGER, INTEGER, NUMBER, NUMBER, NUMBER, NUMBER, COUNT, COUNT, COUNT, COUNT)
    return closed(dict(zip(keys, types, strict=True)), list(keys))


def rgb(minimum: float | None = None, maximum: float | None = None) -> Schema:
    channel: Schema = dict(INTEGER if minimum is not None else NUMBER)
    if minimum is not None:
        channel.update(minimum=minimum, maximum=maximum)
    return closed({"r": channel, "g": channel, "b": channel}, ["r", "g", "b"])


def stats() -> Schema:
    return closed(
        {
            "isOpaque": BOOLEAN,
            "entropy": {"type": "number", "minimum": 0},
            "sharpness": {"type": "number", "minimum": 0},
            "dominant": rgb(8, 248),
            "channels": {"type": "array", "minItems": 1, "items": ref("StatsChannel")},
        },
        ["isOpaque", "entropy", "sharpness", "dominant", "channels"],
    )


def metadata() -> Schema:
    always = ["format", "width", "height", "size", "space", "channels", "depth"]
    always += ["isProgressive", "isPalette", "hasProfile", "hasAlpha"]
    return closed(
        {
            "format": FORMAT_ID,
            "width": POSITIVE,
            "height": POSITIVE,
            "size": COUNT,
            "space": STRING,
            "channels": POSITIVE,
            "depth": STRING,
            "density": INTEGER,
            "resolutionUnit": STRING,
            "chromaSubsampling": STRING,
            "isProgressive": BOOLEAN,
            "isPalette": BOOLEAN,
            "bitsPerSample": POSITIVE,
            "pages": POSITIVE,
            "pageHeight": POSITIVE,
            "loop": COUNT,
            "delay": {"type": "array", "minItems": 1, "items": INTEGER},
            "background": {"oneOf": [rgb(), closed({"gray": INTEGER}, ["gray"])]},
            "orientation": POSITIVE,
            "hasProfile": BOOLEAN,
            "hasAlpha": BOOLEAN,
            "exif": ref("Exif"),
            "stats": ref("Stats"),
            "thumbhash": {"type": "string", "pattern": BASE64, "minLength": 4},
            "blurhash": {"type": "string", "pattern": BLURHASH_PATTERN},
        },
        always,
    )


def healthz() -> Schema:
    formats = {"type": "array", "items": FORMAT_ID}
    keys = ["version", "runtime", "pyvips", "vips", "decoders", "encoders"]
    return closed(
        {
            "version": STRING,
            "runtime": STRING,
            "pyvips": STRING,
            "vips": STRING,
            "decoders": formats,
            "encoders": formats,
        },
        keys,
    )


def strict_error() -> Schema:
    """The strict-mode /metadata 400 (http-api.md): every warning in order."""
    value = {"oneOf": [STRING, {"type": "array", "items": STRING}]}
    keys = ["param", "value", "reason"]
    detail = closed({"param": STRING, "value": value, "reason": STRING}, keys)
    return closed(
        {
            "error": {"const": "Invalid parameters"},
            "details": {"type": "array", "minItems": 1, "items": detail},
        },
        ["error", "details"],
    )


def pipeline_result() -> Schema:
    output = closed(
        {"format": FORMAT_ID, "width": POSITIVE, "height": POSITIVE, "size": COUNT, "url": STRING},
        ["format", "width", "height", "size", "url"],
    )
    success = closed(
        {
            "id": STRING,
            "status": {"const": SUCCESS},
            "durationMs": COUNT,
            "output": output,
            "metadata": ref("Metadata"),
        },
        ["id", "status", "durationMs", "output"],
    )
    failed = closed(
        {"id": STRING, "status": {"const": FAILED}, "durationMs": COUNT, "error": STRING},
        ["id", "status", "durationMs", "error"],
    )
    return closed(
        {
            "totalDurationMs": COUNT,
            "metadata": ref("Metadata"),
            "tasks": {"type": "array", "minItems": 1, "items": {"oneOf": [success, failed]}},
        },
        ["totalDurationMs", "tasks"],
    )


def response_schemas() -> dict[str, Schema]:
    """The components every configuration's document carries."""
    return {
        "Metadata": metadata(),
        "Exif": exif(),
        "Stats": stats(),
        "StatsChannel": stats_channel(),
        "Healthz": healthz(),
        "StrictError": strict_error(),
    }
