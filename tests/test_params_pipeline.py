"""Pipeline config validation (pipeline.md, Configuration): every message, the ordering
rules and the options each task gets."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from imaged.engine.options import MetadataOptions, TransformOptions
from imaged.errors import BadRequest
from imaged.params.pipeline import (
    OutputSpec,
    PipelineConfig,
    js_string,
    js_truthy,
    parse_json,
    parse_pipeline_config,
)

FORMATS_TEXT = "avif, gif, heic, jpeg, jxl, pdf, png, raw, svg, tiff, webp"


def task(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "t",
        "transform": {"format": "png"},
        "output": {"bucket": "b", "key": "k"},
    }
    base.update(overrides)
    return base


def config(*tasks: Any, **extra: Any) -> dict[str, Any]:
    return {"tasks": list(tasks) or [task()], **extra}


def parse(value: Any, max_tasks: int = 10, dimension_limit: int = 16384) -> PipelineConfig:
    return parse_pipeline_config(value, max_tasks=max_tasks, dimension_limit=dimension_limit)


def error(value: Any, **kwargs: Any) -> str:
    with pytest.raises(BadRequest) as info:
        parse(value, **kwargs)
    assert info.value.status == 400
    return info.value.message


def with_transform(**options: Any) -> dict[str, Any]:
    return config(task(transform={"format": "png", **options}))


# --- structural pass ----------------------------------------------------------------------

STRUCTURAL = [
    (None, "config must be an object"),
    (5, "config must be an object"),
    ("x", "config must be an object"),
    (True, "config must be an object"),
    ([], "tasks must be an array"),
    ([{"tasks": [task()]}], "tasks must be an array"),
    ({}, "tasks must be an array"),
    ({"tasks": {"0": task()}}, "tasks must be an array"),
    ({"tasks": "abc"}, "tasks must be an array"),
    ({"tasks": None}, "tasks must be an array"),
    ({"tasks": []}, "at least one task is required"),
    ({"tasks": [None] * 12}, "too many tasks: 12 (max: 10)"),
    ({"tasks": [None]}, "task[0]: must be an object"),
    ({"tasks": [7]}, "task[0]: must be an object"),
    ({"tasks": ["t"]}, "task[0]: must be an object"),
    ({"tasks": [[]]}, "task[0]: id is required"),
    (config(task(id=None)), "task[0]: id is required"),
    (config(task(id="")), "task[0]: id is required"),
    (config(task(id=5)), "task[0]: id is required"),
    (
        config({"transform": {"format": "png"}, "output": {"bucket": "b", "key": "k"}}),
        "task[0]: id is required",
    ),
    (config(task(id="a"), task(id="a")), "task[1]: duplicate id 'a'"),
    (config(task(transform=None)), "task[0]: transform is required"),
    (config(task(transform="png")), "task[0]: transform is required"),
    (config(task(transform=[])), "task[0]: transform.format is required"),
    (config(task(transform={})), "task[0]: transform.format is required"),
    (config(task(transform={"format": ""})), "task[0]: transform.format is required"),
    (config(task(transform={"format": 5})), "task[0]: transform.format is required"),
    (config(task(output=None)), "task[0]: output is required"),
    (config(task(output="b/k")), "task[0]: output is required"),
    (config(task(output=[])), "task[0]: output.bucket is required"),
    (config(task(output={"key": "k"})), "task[0]: output.bucket is required"),
    (config(task(output={"bucket": "", "key": "k"})), "task[0]: output.bucket is required"),
    (config(task(output={"bucket": 1, "key": "k"})), "task[0]: output.bucket is required"),
    (config(task(output={"bucket": "b"})), "task[0]: output.key is required"),
    (config(task(output={"bucket": "b", "key": ""})), "task[0]: output.key is required"),
    (config(task(output={"bucket": "b", "key": ["k"]})), "task[0]: output.key is required"),
    (config(task(metadata=None)), "task[0]: metadata must be an object"),
    (config(task(metadata=[])), "task[0]: metadata must be an object"),
    (config(task(metadata=True)), "task[0]: metadata must be an object"),
    (config(task(metadata="exif")), "task[0]: metadata must be an object"),
    (config(metadata="yes"), "metadata must be an object"),
    (config(metadata=7), "metadata must be an object"),
    (config(metadata=True), "metadata must be an object"),
    (config(metadata=False), "metadata must be an object"),
    (config(metadata=[]), "metadata must be an object"),
]


@pytest.mark.parametrize(("value", "message"), STRUCTURAL)
def test_structural_messages(value: Any, message: str) -> None:
    assert error(value) == message


def test_max_tasks_is_configurable_and_inclusive() -> None:
    assert len(parse(config(*[task(id=str(i)) for i in range(3)]), max_tasks=3).tasks) == 3
    four = config(*[task(id=str(i)) for i in range(4)])
    assert error(four, max_tasks=3) == "too many tasks: 4 (max: 3)"


def test_task_checks_complete_before_the_next_task() -> None:
    # task 0 lacks its output, task 1 lacks its id: task 0's problem wins.
    assert error(config(task(output=None), task(id=None))) == "task[0]: output is required"
    # Within a task the order is id, duplicate, transform, format, output, bucket, key, metadata.
    bad = task(id="t", transform=None, output=None, metadata=[])
    assert error(config(task(), bad)) == "task[1]: duplicate id 't'"
    assert error(config(task(transform={}, output=[]))) == "task[0]: transform.format is required"
    assert error(config(task(output={}, metadata=[]))) == "task[0]: output.bucket is required"


def test_structural_pass_runs_before_option_validation() -> None:
    value = config(task(id="a", transform={"format": "bogus"}), task(id="b", output=None))
    assert error(value) == "task[1]: output is required"
    value = config(task(transform={"format": "png", "width": 0}), metadata="yes")
    assert error(value) == "metadata must be an object"


def test_top_level_metadata_type_is_checked_after_all_tasks() -> None:
    assert error(config(task(), task(id=None), metadata=5)) == "task[1]: id is required"


def test_unknown_keys_are_ignored() -> None:
    value = config(
        task(
            extra=1,
            transform={"format": "png", "nope": True},
            output={"bucket": "b", "key": "k", "x": []},
        ),
        other={"deep": [1, 2]},
    )
    assert parse(value).tasks[0].transform == TransformOptions(format="png")


# --- typed option validation --------------------------------------------------------------

OPTION_ERRORS = [
    ({"width": "100"}, "width: must be a number"),
    ({"width": "abc"}, "width: must be a number"),
    ({"width": True}, "width: must be a number"),
    ({"width": [1]}, "width: must be a number"),
    ({"width": {"v": 1}}, "width: must be a number"),
    ({"width": 10.5}, "width: must be an integer"),
    ({"width": 1e400}, "width: must be an integer"),
    ({"width": 0}, "width: must be at least 1"),
    ({"width": -10}, "width: must be at least 1"),
    ({"width": 16385}, "width: must be at most 16384"),
    ({"width": 10**30}, "width: must be at most 16384"),
    ({"height": False}, "height: must be a number"),
    ({"height": 0.5}, "height: must be an integer"),
    ({"height": 20000}, "height: must be at most 16384"),
    ({"quality": 0}, "quality: must be at least 1"),
    ({"quality": 101}, "quality: must be at most 100"),
    ({"quality": "high"}, "quality: must be a number"),
    ({"quality": 50.5}, "quality: must be an integer"),
    ({"blur": ""}, "blur: must be a boolean or number between 0.3 and 1000"),
    ({"blur": "5"}, "blur: must be a boolean or number between 0.3 and 1000"),
    ({"blur": [5]}, "blur: must be a boolean or number between 0.3 and 1000"),
    ({"blur": 1e400}, "blur: must be a boolean or number between 0.3 and 1000"),
    ({"blur": 0}, "blur: must be at least 0.3"),
    ({"blur": 0.29}, "blur: must be at least 0.3"),
    ({"blur": -5}, "blur: must be at least 0.3"),
    ({"blur": 1000.5}, "blur: must be at most 1000"),
    ({"greyscale": ""}, "greyscale: must be a boolean"),
    ({"greyscale": 1}, "greyscale: must be a boolean"),
    ({"greyscale": "true"}, "greyscale: must be a boolean"),
    ({"animated": 1}, "animated: must be a boolean"),
    ({"animated": "true"}, "animated: must be a boolean"),
    ({"animated": ""}, "animated: must be a boolean"),
    ({"lossless": 1}, "lossless: must be a boolean"),
    ({"lossless": ""}, "lossless: must be a boolean"),
    ({"progressive": "false"}, "progressive: must be a boolean"),
    ({"progressive": 0}, "progressive: must be a boolean"),
    ({"effort": "3"}, "effort: must be a number"),
    ({"effort": True}, "effort: must be a number"),
    ({"effort": 2.5}, "effort: must be an integer"),
    ({"effort": 0}, "effort: must be at least 1 for png"),
    ({"effort": 11}, "effort: must be at most 10 for png"),
    ({"fit": 5}, "fit: must be a string"),
    ({"fit": True}, "fit: must be a string"),
    ({"fit": "Cover"}, "fit: unknown value 'Cover', valid: cover, contain, fill, inside, outside"),
    (
        {"kernel": "bicubic"},
        "kernel: unknown value 'bicubic', valid: nearest, linear, cubic, mitchell, lanczos2, "
        "lanczos3, mks2013, mks2021",
    ),
    (
        {"position": "middle"},
        "position: unknown value 'middle', valid: top, right top, right, right bottom, bottom, "
        "left bottom, left, left top, north, northeast, east, southeast, south, southwest, west, "
        "northwest, center, centre, entropy, attention",
    ),
    ({"position": ["top"]}, "position: must be a string"),
    ({"preset": "fast"}, "preset: unknown value 'fast', valid: default, quality, size"),
    ({"preset": {}}, "preset: must be a string"),
]


@pytest.mark.parametrize(("options", "message"), OPTION_ERRORS)
def test_option_messages(options: dict[str, Any], message: str) -> None:
    assert error(with_transform(**options)) == f"task[0].transform.{message}"


@pytest.mark.parametrize(
    ("fmt", "effort", "message"),
    [
        ("webp", 7, "effort: must be at most 6 for webp"),
        ("webp", -1, "effort: must be at least 0 for webp"),
        ("avif", 10, "effort: must be at most 9 for avif"),
        ("heic", 10, "effort: must be at most 9 for heic"),
        ("gif", 0, "effort: must be at least 1 for gif"),
        ("jxl", 10, "effort: must be at most 9 for jxl"),
        ("jpeg", "x", "effort: must be a number"),  # type errors apply to every format
        ("tiff", 1.5, "effort: must be an integer"),
    ],
)
def test_effort_ranges_per_format(fmt: str, effort: Any, message: str) -> None:
    value = config(task(transform={"format": fmt, "effort": effort}))
    assert error(value) == f"task[0].transform.{message}"


def test_unknown_format_quotes_the_original_value() -> None:
    for raw in ("bogus", "PNGX", "png,webp", " png", "image/png"):
        value = config(task(transform={"format": raw}))
        assert (
            error(value)
            == f"task[0].transform.format: unknown format '{raw}', valid: {FORMATS_TEXT}"
        )


def test_format_is_normalised() -> None:
    for raw, expected in [("JPG", "jpeg"), ("jpg", "jpeg"), ("Tif", "tiff"), ("WEBP", "webp")]:
        parsed = parse(config(task(transform={"format": raw})))
        assert parsed.tasks[0].transform.format == expected


def test_format_check_comes_before_the_other_options() -> None:
    value = config(task(transform={"width": "x", "format": "bogus"}))
    assert error(value).startswith("task[0].transform.format: unknown format 'bogus'")


def test_options_are_checked_in_spec_order() -> None:
    everything_wrong = {
        "animated": "yes",
        "preset": 1,
        "position": 1,
        "kernel": 1,
        "fit": 1,
        "effort": "x",
        "progressive": 1,
        "lossless": 1,
        "greyscale": 1,
        "blur": "x",
        "quality": "x",
        "height": "x",
        "width": "x",
    }
    order = [
        "width",
        "height",
        "quality",
        "blur",
        "greyscale",
        "lossless",
        "progressive",
        "effort",
        "fit",
        "kernel",
        "position",
        "preset",
        "animated",
    ]
    remaining = dict(everything_wrong)
    for name in order:
        assert error(with_transform(**remaining)).startswith(f"task[0].transform.{name}: ")
        del remaining[name]
    assert parse(with_transform(**remaining)).tasks[0].transform.format == "png"


def test_transform_options_before_task_metadata_flags() -> None:
    value = config(task(transform={"format": "png", "width": 0}, metadata={"exif": 1}))
    assert error(value) == "task[0].transform.width: must be at least 1"
    value = config(task(metadata={"stats": "yes", "exif": 1}))
    assert error(value) == "task[0].metadata.exif: must be a boolean"
    value = config(task(metadata={"thumbhash": ""}))
    assert error(value) == "task[0].metadata.thumbhash: must be a boolean"


def test_tasks_are_validated_in_order_then_the_top_level_flags() -> None:
    value = config(
        task(id="a", metadata={"stats": 1}),
        task(id="b", transform={"format": "png", "quality": 0}),
        metadata={"exif": "x"},
    )
    assert error(value) == "task[0].metadata.stats: must be a boolean"
    value = config(
        task(id="a"),
        task(id="b", transform={"format": "png", "quality": 0}),
        metadata={"exif": "x"},
    )
    assert error(value) == "task[1].transform.quality: must be at least 1"
    value = config(task(), metadata={"stats": 1, "exif": "x"})
    assert error(value) == "metadata.exif: must be a boolean"
    value = config(task(), metadata={"thumbhash": [], "stats": None})
    assert error(value) == "metadata.thumbhash: must be a boolean"


# --- what the tasks get -------------------------------------------------------------------


def test_unset_values_and_empty_string_quirk() -> None:
    value = with_transform(
        width=None, height="", quality="", effort="", fit="", kernel="", position="", preset=""
    )
    assert parse(value).tasks[0].transform == TransformOptions(format="png")
    value = with_transform(
        blur=None, greyscale=None, lossless=None, progressive=None, animated=None
    )
    assert parse(value).tasks[0].transform == TransformOptions(format="png")


def test_full_option_set() -> None:
    value = config(
        task(
            transform={
                "format": "webp",
                "width": 20.0,
                "height": 1e2,
                "quality": 1,
                "blur": 2.5,
                "greyscale": True,
                "lossless": False,
                "progressive": True,
                "effort": 0,
                "fit": "contain",
                "kernel": "nearest",
                "position": "right top",
                "preset": "size",
                "animated": True,
            }
        )
    )
    assert parse(value).tasks[0].transform == TransformOptions(
        format="webp",
        width=20,
        height=100,
        quality=1,
        blur=2.5,
        greyscale=True,
        lossless=False,
        progressive=True,
        effort=0,
        fit="contain",
        kernel="nearest",
        position="right top",
        preset="size",
        animated=True,
    )


def test_blur_values() -> None:
    assert parse(with_transform(blur=True)).tasks[0].transform.blur == "box"
    assert parse(with_transform(blur=False)).tasks[0].transform.blur is None
    assert parse(with_transform(blur=1)).tasks[0].transform.blur == 1.0
    assert parse(with_transform(blur=0.3)).tasks[0].transform.blur == 0.3
    assert parse(with_transform(blur=1000)).tasks[0].transform.blur == 1000.0


def test_limits_are_inclusive() -> None:
    options = parse(with_transform(width=16384, height=1, quality=100)).tasks[0].transform
    assert (options.width, options.height, options.quality) == (16384, 1, 100)
    assert error(with_transform(width=101), dimension_limit=100) == (
        "task[0].transform.width: must be at most 100"
    )


def test_effort_for_a_format_without_a_range_is_dropped() -> None:
    for fmt in ("jpeg", "tiff", "raw", "pdf", "svg"):
        value = config(task(transform={"format": fmt, "effort": 99}))
        assert parse(value).tasks[0].transform.effort is None
    value = config(task(transform={"format": "avif", "effort": 0}))
    assert parse(value).tasks[0].transform.effort == 0


def test_metadata_flags() -> None:
    parsed = parse(config(task(metadata={}), metadata={"exif": True, "stats": None}))
    assert parsed.tasks[0].metadata == MetadataOptions()
    assert parsed.metadata == MetadataOptions(exif=True, stats=False, thumbhash=False)
    parsed = parse(config(task(metadata={"thumbhash": True, "stats": False})))
    assert parsed.tasks[0].metadata == MetadataOptions(thumbhash=True)
    assert parsed.metadata is None
    assert parse(config(metadata=None)).metadata is None
    assert parse(config()).tasks[0].metadata is None


def test_output_acl_and_content_type() -> None:
    out = {"bucket": "b", "key": "a/b c.png", "acl": "public-read", "contentType": "image/png"}
    assert parse(config(task(output=out))).tasks[0].output == OutputSpec(
        "b", "a/b c.png", "public-read", "image/png"
    )
    out = {"bucket": "b", "key": "k", "acl": "", "contentType": 0}
    assert parse(config(task(output=out))).tasks[0].output == OutputSpec("b", "k", None, None)
    out = {"bucket": "b", "key": "k", "contentType": 5, "acl": None}
    assert parse(config(task(output=out))).tasks[0].output.content_type == "5"


def test_url_is_kept_when_truthy_and_stringified() -> None:
    assert parse(config(url="http://example.com/a.png")).url == "http://example.com/a.png"
    assert parse(config(url=5)).url == "5"
    for falsy in (None, "", False, 0, 0.0):
        assert parse(config(url=falsy)).url is None
    assert parse(config()).url is None


def test_validation_does_not_mutate_the_config() -> None:
    value = config(task(transform={"format": "JPG", "width": 10}), metadata={})
    before = copy.deepcopy(value)
    parse(value)
    assert value == before


def test_lone_surrogates_in_messages_are_replaced() -> None:
    message = error(config(task(id="\ud800"), task(id="\ud800")))
    assert message == "task[1]: duplicate id '\ufffd'"
    message.encode("utf-8")


# --- JSON and JavaScript values -----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b" ",
        b"\xef\xbb\xbf{}",
        b"{'a': 1}",
        b"{a: 1}",
        b'{"a": 1,}',
        b"[1,]",
        b"NaN",
        b'{"a": Infinity}',
        b"-Infinity",
        b'{"a": "\xff"}',
        b"01",
        b"{} {}",
        b"[" * 100000 + b"]" * 100000,
    ],
)
def test_invalid_json(text: bytes) -> None:
    with pytest.raises(ValueError):
        parse_json(text)


def test_valid_json_values() -> None:
    assert parse_json(b"null") is None
    assert parse_json(b" 5 ") == 5
    assert parse_json(b'"x"') == "x"
    assert parse_json(b"[]") == []
    assert parse_json('{"é": "€"}'.encode()) == {"é": "€"}
    assert parse_json(b"1e400") == float("inf")
    assert parse_json(b"9" * 5000) == float("inf")  # a double in JavaScript, not an error


def test_js_semantics() -> None:
    assert [js_truthy(v) for v in (None, False, 0, 0.0, "", [], {}, "0", -1, True)] == [
        False,
        False,
        False,
        False,
        False,
        True,
        True,
        True,
        True,
        True,
    ]
    assert js_string(5) == "5"
    assert js_string(5.0) == "5"
    assert js_string(0.1) == "0.1"
    assert js_string(1e21) == "1e+21"
    assert js_string(True) == "true"
    assert js_string([1, None, "a", [2, 3]]) == "1,,a,2,3"
    assert js_string({"a": 1}) == "[object Object]"
    assert js_string(float("inf")) == "Infinity"
