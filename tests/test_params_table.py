"""The parameter table is the one source: it covers the engine's options exactly, each
entry is complete, and both validation modes give the same texts for the same problem."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from imaged.engine.options import MetadataOptions, TransformOptions
from imaged.errors import BadRequest
from imaged.params.kinds import (
    ALL_ROUTES,
    METADATA_ROUTE,
    TRANSFORM_ROUTE,
    Context,
    Param,
    read_json,
    read_query,
)
from imaged.params.metadata import parse_metadata_query
from imaged.params.query import parse_query_string
from imaged.params.table import PARAMS, known, options_of
from imaged.params.transform import parse_transform_query

LIMIT = 500


def field_names(options: type[Any]) -> list[str]:
    return [f.name for f in dataclasses.fields(options)]


def test_transform_options_are_exactly_the_table() -> None:
    assert sorted(p.name for p in options_of(TRANSFORM_ROUTE)) == sorted(
        field_names(TransformOptions)
    )


def test_metadata_options_are_exactly_the_table() -> None:
    assert sorted(p.name for p in options_of(METADATA_ROUTE)) == sorted(
        field_names(MetadataOptions)
    )


def test_known_parameters_per_route() -> None:
    assert known(TRANSFORM_ROUTE) == {
        *field_names(TransformOptions),
        *(p.name for p in PARAMS if p.routes == ALL_ROUTES),
    }
    assert {"url", "strict"} <= known(METADATA_ROUTE)
    assert not {"width", "format"} & known(METADATA_ROUTE)
    assert not {"exif", "thumbhash"} & known(TRANSFORM_ROUTE)


@pytest.mark.parametrize("param", PARAMS, ids=lambda p: p.name)
def test_entry_is_complete(param: Param) -> None:
    assert param.description and "\n" not in param.description
    assert param.routes and param.routes <= ALL_ROUTES
    if param.option:
        options = TransformOptions() if TRANSFORM_ROUTE in param.routes else MetadataOptions()
        assert param.default == getattr(options, param.name)
    if param.kind.json_type == "string" and param.option:
        assert param.choices, "an option string needs its choices"


def test_every_query_parameter_is_read_from_the_table() -> None:
    """A valid value of every option reaches the options object under its own name."""
    valid = {
        "format": "webp",
        "width": "7",
        "height": "8",
        "quality": "9",
        "blur": "2.5",
        "greyscale": "true",
        "lossless": "1",
        "progressive": "0",
        "effort": "3",
        "fit": "fill",
        "kernel": "cubic",
        "position": "entropy",
        "preset": "size",
        "animated": "1",
    }
    assert set(valid) == set(field_names(TransformOptions))
    query = "&".join(f"{k}={v}" for k, v in valid.items())
    parsed = parse_transform_query(parse_query_string(query), "", LIMIT)
    assert parsed.warnings == []
    options = dataclasses.asdict(parsed.options)
    assert options == {
        "format": "webp",
        "width": 7,
        "height": 8,
        "quality": 9,
        "blur": 2.5,
        "greyscale": True,
        "lossless": True,
        "progressive": False,
        "effort": 3,
        "fit": "fill",
        "kernel": "cubic",
        "position": "entropy",
        "preset": "size",
        "animated": True,
    }
    flags, warnings = parse_metadata_query(parse_query_string("exif&stats=1&thumbhash=false"))
    assert warnings == [] and flags == MetadataOptions(exif=True, stats=True, thumbhash=False)


def ranged() -> list[Param]:
    return [p for p in PARAMS if p.minimum is not None]


@pytest.mark.parametrize("param", ranged(), ids=lambda p: p.name)
@pytest.mark.parametrize("side", ["below", "above"])
def test_both_modes_share_the_clamp_text(param: Param, side: str) -> None:
    """Query mode clamps with a warning; typed mode refuses with the same reason text."""
    ctx = Context(LIMIT, "webp")
    lo, hi = param.bounds(ctx)
    number = lo - 1 if side == "below" else hi + 1
    if number == 0 and param.name == "blur":
        number = 0.1  # `0` is blur's "off" string
    warnings: list[Any] = []
    fields = read_query({param.name: repr(float(number))}, [param], ctx, warnings)
    assert fields[param.name] == (lo if side == "below" else hi)
    [warning] = warnings
    with pytest.raises(BadRequest) as caught:
        read_json({param.name: number}, [param], ctx, "task[0].transform.")
    assert caught.value.message == f"task[0].transform.{param.name}: {warning.reason}"


def test_effort_range_follows_the_format() -> None:
    [effort] = [p for p in PARAMS if p.name == "effort"]
    warnings: list[Any] = []
    fields = read_query({"effort": "9"}, [effort], Context(LIMIT, "webp"), warnings)
    assert fields == {"effort": 6} and warnings[0].reason == "must be at most 6 for webp"
    assert read_json({"effort": 9}, [effort], Context(LIMIT, "jpeg"), "") == {}
    with pytest.raises(BadRequest, match=r"^effort: must be at most 6 for webp$"):
        read_json({"effort": 9}, [effort], Context(LIMIT, "webp"), "")
