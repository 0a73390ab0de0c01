"""`exif`, `stats`, `thumbhash` query flags (http-api.md, transform.md "Booleans")."""

from __future__ import annotations

import pytest

from imaged.engine.options import MetadataOptions, ParamWarning
from imaged.params.metadata import parse_metadata_query
from imaged.params.query import parse_query_string, strict_json

REASON = "must be true, false, 1, or 0"


def parse(query: str) -> tuple[MetadataOptions, list[ParamWarning]]:
    return parse_metadata_query(parse_query_string(query))


def test_defaults_are_false() -> None:
    assert parse("") == (MetadataOptions(False, False, False), [])
    assert parse("url=http://x/&strict=1") == (MetadataOptions(), [])


@pytest.mark.parametrize(("text", "flag"), [("", True), ("true", True), ("1", True)])
def test_true_values(text: str, flag: bool) -> None:
    for name in ("exif", "stats", "thumbhash"):
        options, warnings = parse(f"{name}={text}")
        assert getattr(options, name) is flag and warnings == []
    options, warnings = parse("exif&stats&thumbhash")
    assert options == MetadataOptions(True, True, True) and warnings == []


@pytest.mark.parametrize("text", ["false", "0"])
def test_false_values(text: str) -> None:
    options, warnings = parse(f"exif={text}&stats={text}&thumbhash={text}")
    assert options == MetadataOptions(False, False, False) and warnings == []


@pytest.mark.parametrize("text", ["TRUE", "yes", "2", "%20true", "False", "on"])
def test_other_values_are_true_with_a_warning(text: str) -> None:
    options, warnings = parse(f"stats={text}")
    assert options.stats is True
    assert [(w.param, w.reason) for w in warnings] == [("stats", REASON)]


def test_repeated_flag_is_a_list_value() -> None:
    options, warnings = parse("exif=1&exif=0")
    assert options.exif is True
    assert warnings == [ParamWarning("exif", "1,0", REASON)]


def test_warning_order_unknown_first_then_exif_stats_thumbhash() -> None:
    _, warnings = parse("thumbhash=x&zeta=1&stats=y&alpha=2&exif=z&width=5")
    assert [w.param for w in warnings] == ["zeta", "alpha", "width", "exif", "stats", "thumbhash"]
    assert [w.reason for w in warnings[:3]] == ["unknown parameter"] * 3


def test_strict_json_body() -> None:
    _, warnings = parse("exif=maybe")
    assert strict_json(warnings) == (
        '{"error":"Invalid parameters","details":'
        '[{"param":"exif","value":"maybe","reason":"must be true, false, 1, or 0"}]}'
    )
    _, warnings = parse("exif=1&exif=0")  # a known flag's list is joined (http-api.md)
    assert strict_json(warnings) == (
        '{"error":"Invalid parameters","details":'
        '[{"param":"exif","value":"1,0","reason":"must be true, false, 1, or 0"}]}'
    )
    _, warnings = parse("bogus=1&bogus=2")
    assert strict_json(warnings) == (
        '{"error":"Invalid parameters","details":'
        '[{"param":"bogus","value":["1","2"],"reason":"unknown parameter"}]}'
    )
