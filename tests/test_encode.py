"""Unit tests of the encoder tables (transform.md, Encoder settings) and size limits."""

from __future__ import annotations

import pytest

from imaged.engine import encode
from imaged.engine.options import TransformOptions
from imaged.errors import ImageError

PRESETS = ("default", "quality", "size")


def opts(fmt: str, preset: str = "default", **kwargs: object) -> dict[str, object]:
    return encode.save_options(TransformOptions(format=fmt, preset=preset, **kwargs))[1]  # type: ignore[arg-type]


def test_jpeg_table() -> None:
    rows = [opts("jpeg", p) for p in PRESETS]
    assert [r["Q"] for r in rows] == [75, 90, 70]
    assert [r["interlace"] for r in rows] == [True, False, True]
    assert [r["subsample_mode"] for r in rows] == ["on", "off", "on"]
    assert [r["optimize_coding"] for r in rows] == [True, False, True]
    for key in ("trellis_quant", "overshoot_deringing", "optimize_scans"):
        assert [r[key] for r in rows] == [False, False, True]
    assert [r["quant_table"] for r in rows] == [0, 0, 3]


def test_jpeg_user_values() -> None:
    assert opts("jpeg", quality=33)["Q"] == 33
    assert opts("jpeg", progressive=False)["interlace"] is False
    assert opts("jpeg", "quality", progressive=True)["interlace"] is True
    # size forces progressive even when it is explicitly refused (QUIRK)
    assert opts("jpeg", "size", progressive=False)["interlace"] is True


def test_png_table() -> None:
    rows = [opts("png", p) for p in PRESETS]
    assert [r["compression"] for r in rows] == [4, 7, 9]
    assert [r["palette"] for r in rows] == [False, False, True]
    assert all(r["interlace"] is False and r["effort"] == 7 and r["bitdepth"] == 8 for r in rows)
    assert all(r["filter"] == 0xF8 for r in rows)
    assert "Q" not in rows[0] and "Q" not in rows[1]
    assert rows[2]["Q"] == 100 and rows[2]["dither"] == 1.0
    assert opts("png", "size", quality=40)["Q"] == 40
    assert "Q" not in opts("png", quality=40)  # quality only matters with the palette
    assert opts("png", progressive=True)["interlace"] is True
    assert opts("png", effort=2)["effort"] == 7  # validated but ignored (QUIRK)


def test_webp_table() -> None:
    rows = [opts("webp", p) for p in PRESETS]
    assert [r["Q"] for r in rows] == [75, 88, 70]
    assert [r["effort"] for r in rows] == [2, 5, 5]
    assert [r["smart_deblock"] for r in rows] == [False, True, False]
    assert [r["alpha_q"] for r in rows] == [100, 100, 80]
    for r in rows:
        assert r["lossless"] is False and r["smart_subsample"] is True
        assert not (r["near_lossless"] or r["min_size"] or r["mixed"] or r["exact"])
        assert r["preset"] == "default"
    assert opts("webp", effort=0, lossless=True, quality=9) == {
        **rows[0],
        "effort": 0,
        "lossless": True,
        "Q": 9,
    }


@pytest.mark.parametrize(("fmt", "compression"), [("avif", "av1"), ("heic", "hevc")])
def test_heif_table(fmt: str, compression: str) -> None:
    rows = [opts(fmt, p) for p in PRESETS]
    assert [r["Q"] for r in rows] == [45, 60, 40]
    assert [r["effort"] for r in rows] == [2, 6, 6]
    assert [r["subsample_mode"] for r in rows] == ["on", "off", "on"]
    assert all(r["compression"] == compression and r["bitdepth"] == 8 for r in rows)
    assert all(r["lossless"] is False for r in rows)
    if encode.heif_tune_supported(compression):
        assert all(r["tune"] == "auto" for r in rows)
    for preset in PRESETS:
        assert opts(fmt, preset, lossless=True)["subsample_mode"] == "off"


def test_jxl_table() -> None:
    rows = [opts("jxl", p) for p in PRESETS]
    assert [r["distance"] for r in rows] == pytest.approx([2.35, 1.0, 2.8])
    assert [r["tier"] for r in rows] == [2, 0, 0]
    assert [r["effort"] for r in rows] == [3, 7, 7]
    assert encode.jxl_distance(100) == pytest.approx(0.1)
    assert encode.jxl_distance(30) == pytest.approx(6.4)
    assert encode.jxl_distance(29) == pytest.approx(53 / 3000 * 29 * 29 - 23 / 20 * 29 + 25)
    assert encode.jxl_distance(1) == pytest.approx(53 / 3000 - 23 / 20 + 25)


def test_tiff_and_gif_tables() -> None:
    assert [opts("tiff", p)["compression"] for p in PRESETS] == ["lzw", "lzw", "jpeg"]
    tiff = opts("tiff")
    assert tiff["predictor"] == "horizontal" and tiff["Q"] == 80
    assert not (tiff["tile"] or tiff["pyramid"] or tiff["bigtiff"])
    assert opts("tiff", "size", quality=55)["Q"] == 55
    for preset in PRESETS:
        assert opts("gif", preset, effort=9) == {
            "effort": 4,
            "bitdepth": 8,
            "dither": 1.0,
            "reuse": True,
            "interlace": False,
            "interframe_maxerror": 0.0,
            "interpalette_maxerror": 3.0,
        }


@pytest.mark.parametrize(
    ("fmt", "limit", "name"),
    [("webp", 16383, "WebP"), ("avif", 16384, "HEIF"), ("heic", 16384, "HEIF"),
     ("jpeg", 65535, "JPEG"), ("gif", 65535, "GIF")],
)  # fmt: skip
def test_size_limits(fmt: str, limit: int, name: str) -> None:
    encode.check_size(fmt, limit, limit)
    for size in ((limit + 1, 1), (1, limit + 1)):
        with pytest.raises(ImageError) as info:
            encode.check_size(fmt, *size)
        assert info.value.message == f"image: Processed image is too large for the {name} format"


def test_unlimited_formats() -> None:
    for fmt in ("png", "tiff", "raw", "jxl"):
        encode.check_size(fmt, 100000, 100000)


@pytest.mark.parametrize("fmt", ["pdf", "svg"])
def test_pdf_and_svg_are_never_encoders(fmt: str) -> None:
    with pytest.raises(ImageError) as info:
        encode.save_options(TransformOptions(format=fmt))
    assert info.value.message == f"image: encoding type {fmt} is not supported"
