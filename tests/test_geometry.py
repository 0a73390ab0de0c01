"""Unit tests of the resize/crop/embed arithmetic (transform.md, Resize semantics)."""

from __future__ import annotations

import pytest

from imaged.engine import geometry
from imaged.engine.options import POSITIONS


@pytest.mark.parametrize(
    ("size", "target", "fit", "expected"),
    [
        ((100, 100), (50, None), "cover", (2.0, 2.0)),
        ((100, 100), (200, None), "cover", (1.0, 1.0)),
        ((100, 100), (50, 30), "cover", (2.0, 2.0)),
        ((100, 100), (50, 30), "fill", (2.0, 100 / 30)),
        ((100, 80), (200, 100), "contain", (1.0, 1.0)),
        ((100, 80), (200, 50), "cover", (1.0, 1.0)),
        ((100, 80), (50, None), "fill", (2.0, 1.0)),
        ((100, 80), (None, 40), "fill", (1.0, 2.0)),
        ((100, 80), (None, 40), "cover", (2.0, 2.0)),
        ((100, 80), (50, 50), "inside", (2.0, 2.0)),
        ((100, 80), (50, 50), "contain", (2.0, 2.0)),
        ((100, 80), (50, 50), "outside", (1.6, 1.6)),
        ((100, 80), (50, 50), "cover", (1.6, 1.6)),
        ((100, 80), (None, None), "cover", (1.0, 1.0)),
        # never enlarge, never shrink an axis to nothing
        ((10, 1000), (1, 1), "fill", (10.0, 1000.0)),
        ((10, 1000), (1, None), "cover", (10.0, 10.0)),
        ((10, 1000), (None, 1), "cover", (10.0, 1000.0)),
    ],
)
def test_resolve_shrink(
    size: tuple[int, int],
    target: tuple[int | None, int | None],
    fit: str,
    expected: tuple[float, float],
) -> None:
    assert geometry.resolve_shrink(*size, *target, fit) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("shrink", "factor"),
    [
        (1.0, 1),
        (1.9, 1),
        (2.0, 1),
        (2.99, 1),
        (3.0, 2),
        (3.99, 2),
        (4.0, 2),
        (4.99, 2),
        (5.0, 4),
        (7.99, 4),
        (8.0, 4),
        (8.99, 4),
        (9.0, 8),
        (100.0, 8),
    ],
)
def test_jpeg_shrink(shrink: float, factor: int) -> None:
    assert geometry.jpeg_shrink(shrink) == factor


def test_every_position_maps_to_a_gravity() -> None:
    assert {geometry.gravity(p) for p in POSITIONS} == {
        "centre",
        "north",
        "east",
        "south",
        "west",
        "northeast",
        "southeast",
        "southwest",
        "northwest",
        "entropy",
        "attention",
    }
    pairs = [
        ("top", "north"),
        ("right", "east"),
        ("bottom", "south"),
        ("left", "west"),
        ("right top", "northeast"),
        ("right bottom", "southeast"),
        ("left bottom", "southwest"),
        ("left top", "northwest"),
        ("center", "centre"),
        ("centre", "centre"),
    ]
    for position, expected in pairs:
        assert geometry.gravity(position) == expected
        assert geometry.gravity(expected) == expected


@pytest.mark.parametrize(
    ("gravity", "expected"),
    [
        ("centre", (13, 6)),
        ("north", (13, 0)),
        ("east", (25, 6)),
        ("south", (13, 11)),
        ("west", (0, 6)),
        ("northeast", (25, 0)),
        ("southeast", (25, 11)),
        ("southwest", (0, 11)),
        ("northwest", (0, 0)),
    ],
)
def test_crop_offsets(gravity: str, expected: tuple[int, int]) -> None:
    # 100×41 → 75×30: centre rounds the odd remainder up ((25+1)/2, (11+1)/2).
    assert geometry.crop_offsets(gravity, 100, 41, 75, 30) == expected


@pytest.mark.parametrize(
    ("gravity", "expected"),
    [
        ("centre", (12, 5)),
        ("north", (12, 0)),
        ("east", (25, 5)),
        ("south", (12, 11)),
        ("west", (0, 5)),
        ("northeast", (25, 0)),
        ("southeast", (25, 11)),
        ("southwest", (0, 11)),
        ("northwest", (0, 0)),
    ],
)
def test_embed_offsets(gravity: str, expected: tuple[int, int]) -> None:
    # 75×30 on 100×41: centre rounds the odd remainder down.
    assert geometry.embed_offsets(gravity, 75, 30, 100, 41) == expected


def test_cover_and_contain_sizes() -> None:
    assert geometry.cover_size(100, 80, 200, 50) == (100, 50)
    assert geometry.cover_size(50, 40, 50, 30) == (50, 30)
    assert geometry.contain_size(100, 80, 200, 100) == (200, 100)
    assert geometry.contain_size(50, 40, 50, 50) == (50, 50)
    assert geometry.contain_size(100, 80, 50, 90) == (100, 90)


def test_equal_sizes_give_zero_offsets() -> None:
    for gravity in ("centre", "north", "east", "south", "west", "southeast"):
        assert geometry.crop_offsets(gravity, 40, 30, 40, 30) == (0, 0)
        assert geometry.embed_offsets(gravity, 40, 30, 40, 30) == (0, 0)
