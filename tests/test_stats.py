"""Pixel statistics (`engine/stats.py`, metadata.md "Stats"), checked against numpy."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import pyvips

from imaged.engine import stats
from imaged.jsonfmt import dumps, round_k

# As in the server (engine/vips.py): one libvips thread, so the "first" min/max positions
# are in raster order (with several threads libvips may report any pixel of a tie).
pyvips.vips_lib.vips_concurrency_set(1)


def image_of(array: np.ndarray, interpretation: str = "srgb") -> pyvips.Image:
    return pyvips.Image.new_from_array(array, interpretation=interpretation)


def expected_channels(array: np.ndarray) -> list[dict[str, Any]]:
    """The ten channel values computed independently (first min/max in raster order)."""
    if array.ndim == 2:
        array = array[:, :, None]
    _, w, bands = array.shape
    out = []
    for b in range(bands):
        band = array[:, :, b].astype(np.float64)
        flat = band.ravel()
        n = flat.size
        mean = flat.sum() / n
        stdev = math.sqrt(((flat**2).sum() - flat.sum() ** 2 / n) / (n - 1)) if n > 1 else 0
        lo, hi = int(np.argmin(flat)), int(np.argmax(flat))
        out.append(
            {
                "min": int(flat.min()),
                "max": int(flat.max()),
                "sum": flat.sum(),
                "squaresSum": (flat**2).sum(),
                "mean": mean,
                "stdev": stdev,
                "minX": lo % w,
                "minY": lo // w,
                "maxX": hi % w,
                "maxY": hi // w,
            }
        )
    return out


def test_spec_example_transparent_red() -> None:
    array = np.zeros((80, 100, 4), dtype=np.uint8)
    array[:] = [255, 0, 0, 128]
    result = stats.compute(image_of(array))
    assert dumps(result).startswith(
        '{"isOpaque":false,"entropy":0,"sharpness":0,"dominant":{"r":248,"g":8,"b":8},'
        '"channels":[{"min":255,"max":255,"sum":2040000,"squaresSum":520200000,"mean":255,'
        '"stdev":0,"minX":0,"minY":0,"maxX":0,"maxY":0},'
    )
    assert list(result) == ["isOpaque", "entropy", "sharpness", "dominant", "channels"]
    assert result["channels"] == expected_channels(array)
    assert result["channels"][3]["min"] == 128


def test_noisy_image_matches_numpy() -> None:
    rng = np.random.default_rng(11)
    array = rng.integers(0, 256, size=(61, 83, 3), dtype=np.uint8)
    array[5, 7] = [0, 0, 0]
    result = stats.compute(image_of(array))
    got, want = result["channels"], expected_channels(array)
    for g, e in zip(got, want, strict=True):
        assert list(g) == list(e)
        for key in ("min", "max", "minX", "minY", "maxX", "maxY", "sum", "squaresSum"):
            assert g[key] == e[key], key
        assert g["mean"] == pytest.approx(e["mean"], rel=1e-12)
        assert g["stdev"] == pytest.approx(e["stdev"], rel=1e-9)
    assert result["isOpaque"] is True


def test_entropy_and_sharpness_of_the_greyscale_image() -> None:
    rng = np.random.default_rng(5)
    array = rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    image = image_of(array)
    grey = image.colourspace("b-w").extract_band(0).numpy().astype(np.float64)
    counts = np.bincount(grey.astype(np.int64).ravel(), minlength=256)
    p = counts[counts > 0] / grey.size
    entropy = float(-(p * np.log2(p)).sum())
    padded = np.pad(grey, 1, mode="edge")
    laplacian = (
        padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] - 4 * grey
    ) / 9
    sharpness = float(laplacian.std(ddof=1))
    result = stats.compute(image)
    assert result["entropy"] == round_k(entropy, 3)
    assert result["sharpness"] == round_k(sharpness, 3)
    assert result["sharpness"] > 10


def test_two_grey_levels_have_one_bit_of_entropy() -> None:
    array = np.zeros((10, 10), dtype=np.uint8)
    array[:, 5:] = 255
    result = stats.compute(image_of(array, "b-w"))
    assert result["entropy"] == 1
    assert result["dominant"] == {"r": 8, "g": 8, "b": 8}
    assert len(result["channels"]) == 1


def test_flat_image() -> None:
    result = stats.compute(image_of(np.full((30, 20, 3), 77, dtype=np.uint8)))
    assert result["entropy"] == 0 and result["sharpness"] == 0
    assert all(c["stdev"] == 0 and c["min"] == c["max"] == 77 for c in result["channels"])


@pytest.mark.parametrize("bands", [1, 2, 3, 4])
def test_single_pixel_gives_finite_numbers(bands: int) -> None:
    array = np.full((1, 1, bands), 200, dtype=np.uint8)
    space = "b-w" if bands <= 2 else "srgb"
    result = stats.compute(image_of(array, space))
    text = dumps(result)
    assert "null" not in text and "NaN" not in text
    assert result["sharpness"] == 0 and result["entropy"] == 0
    assert all(c["stdev"] == 0 for c in result["channels"])
    assert len(result["channels"]) == bands


def test_dominant_colour_ignores_alpha_and_takes_the_largest_bin() -> None:
    array = np.zeros((10, 10, 4), dtype=np.uint8)
    array[:] = [200, 100, 50, 0]
    array[:3] = [10, 250, 10, 255]
    result = stats.compute(image_of(array))
    assert result["dominant"] == {"r": 200, "g": 104, "b": 56}
    assert result["isOpaque"] is False


@pytest.mark.parametrize(
    ("dtype", "space", "opaque_alpha"),
    [(np.uint8, "srgb", 255), (np.uint16, "rgb16", 65535)],
)
def test_is_opaque_uses_the_maximum_alpha_of_the_type(
    dtype: type, space: str, opaque_alpha: int
) -> None:
    array = np.full((4, 4, 4), [1, 2, 3, opaque_alpha], dtype=dtype)
    assert stats.compute(image_of(array, space))["isOpaque"] is True
    array[2, 3, 3] = opaque_alpha - 1
    assert stats.compute(image_of(array, space))["isOpaque"] is False


def test_grey_alpha_and_cmyk() -> None:
    grey_alpha = np.full((3, 3, 2), [40, 255], dtype=np.uint8)
    result = stats.compute(image_of(grey_alpha, "b-w"))
    assert result["isOpaque"] is True and len(result["channels"]) == 2
    cmyk = np.full((3, 3, 4), [0, 0, 0, 0], dtype=np.uint8)
    result = stats.compute(image_of(cmyk, "cmyk"))
    assert result["isOpaque"] is True  # four CMYK bands carry no alpha
    assert len(result["channels"]) == 4
    assert result["dominant"]["r"] >= 232  # no ink is white


def test_max_alpha() -> None:
    assert stats.max_alpha("srgb") == 255
    assert stats.max_alpha("b-w") == 255
    assert stats.max_alpha("rgb16") == 65535
    assert stats.max_alpha("grey16") == 65535
    assert stats.max_alpha("scrgb") == 1.0


class Rereads:
    """A `reread` that decodes the PNG again on every call, like metadata.py's large path."""

    def __init__(self, array: np.ndarray) -> None:
        self.png = image_of(array).write_to_buffer(".png")
        self.calls = 0

    def first(self) -> pyvips.Image:
        return pyvips.Image.new_from_buffer(self.png, "", access="sequential")

    def __call__(self) -> pyvips.Image:
        self.calls += 1
        return self.first()


@pytest.mark.parametrize("grey_kept", [True, False])
def test_sequential_rereads_give_the_in_memory_result(
    monkeypatch: pytest.MonkeyPatch, grey_kept: bool
) -> None:
    """Each pass reads a fresh sequential decode (a second read of a sequential PNG would
    fail), and the numbers are exactly those of the one in-memory decode."""
    rng = np.random.default_rng(7)
    array = rng.integers(0, 256, size=(61, 83, 4), dtype=np.uint8)
    expected = stats.compute(image_of(array))
    if not grey_kept:
        monkeypatch.setattr(stats, "_GREY_IN_MEMORY", 0)
    reread = Rereads(array)
    assert stats.compute(reread.first(), reread) == expected
    # grey (once, or twice when it is too large to keep) and the colour histogram
    assert reread.calls == (2 if grey_kept else 3)


def test_decoded_bytes() -> None:
    assert stats.decoded_bytes(pyvips.Image.black(10, 20, bands=3)) == 600
    assert stats.decoded_bytes(pyvips.Image.black(10, 20, bands=4).cast("ushort")) == 1600
    assert stats.decoded_bytes(pyvips.Image.black(10, 20).cast("double")) == 1600
