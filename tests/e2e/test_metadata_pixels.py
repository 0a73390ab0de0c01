"""`stats=true` and `thumbhash=true` over HTTP (metadata.md, "Stats" and "ThumbHash")."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
import pyvips
from tests.exif_blob import add_png_exif, short, tiff
from tests.serverproc import CORPUS


def png(array: np.ndarray, space: str = "srgb") -> bytes:
    return bytes(pyvips.Image.new_from_array(array, interpretation=space).pngsave_buffer())


def fields_of(client: httpx.Client, data: bytes, query: str) -> dict[str, Any]:
    r = client.put(f"/metadata?{query}", content=data)
    assert r.status_code == 200, r.text
    assert "null" not in r.text
    parsed: dict[str, Any] = json.loads(r.text)
    return parsed


def test_spec_example_stats(client: httpx.Client) -> None:
    array = np.zeros((80, 100, 4), dtype=np.uint8)
    array[:] = [255, 0, 0, 128]
    stats = fields_of(client, png(array), "stats")["stats"]

    def flat(v: int) -> dict[str, int]:
        return {
            "min": v,
            "max": v,
            "sum": 8000 * v,
            "squaresSum": 8000 * v * v,
            "mean": v,
            "stdev": 0,
            "minX": 0,
            "minY": 0,
            "maxX": 0,
            "maxY": 0,
        }

    assert stats == {
        "isOpaque": False,
        "entropy": 0,
        "sharpness": 0,
        "dominant": {"r": 248, "g": 8, "b": 8},
        "channels": [flat(255), flat(0), flat(0), flat(128)],
    }


@pytest.mark.parametrize("bands", [1, 3, 4])
def test_single_pixel(client: httpx.Client, bands: int) -> None:
    array = np.full((1, 1, bands), 90, dtype=np.uint8)
    fields = fields_of(client, png(array, "b-w" if bands == 1 else "srgb"), "stats&thumbhash")
    stats = fields["stats"]
    assert stats["sharpness"] == 0 and stats["entropy"] == 0
    assert [c["stdev"] for c in stats["channels"]] == [0] * bands
    assert stats["channels"][0]["mean"] == 90


def test_noisy_image_channels(client: httpx.Client) -> None:
    rng = np.random.default_rng(3)
    array = rng.integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    stats = fields_of(client, png(array), "stats")["stats"]
    for band, channel in enumerate(stats["channels"]):
        values = array[:, :, band].astype(np.float64)
        assert channel["sum"] == values.sum()
        assert channel["squaresSum"] == (values**2).sum()
        assert channel["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert channel["stdev"] == pytest.approx(values.std(ddof=1), rel=1e-9)
        first_min = int(np.argmin(values))
        assert (channel["minX"], channel["minY"]) == (first_min % 70, first_min // 70)
    assert stats["entropy"] > 7 and stats["sharpness"] > 10
    assert stats["isOpaque"] is True


def test_transparency(client: httpx.Client) -> None:
    array = np.full((20, 30, 4), [10, 200, 30, 255], dtype=np.uint8)
    assert fields_of(client, png(array), "stats")["stats"]["isOpaque"] is True
    array[19, 29, 3] = 0
    stats = fields_of(client, png(array), "stats")["stats"]
    assert stats["isOpaque"] is False
    assert (stats["channels"][3]["minX"], stats["channels"][3]["minY"]) == (29, 19)
    assert stats["dominant"] == {"r": 8, "g": 200, "b": 24}


def test_stats_use_stored_orientation_and_no_colour_management(client: httpx.Client) -> None:
    array = np.zeros((2, 4, 3), dtype=np.uint8)
    array[0, 3] = [250, 250, 250]
    data = add_png_exif(png(array), tiff([short(0x0112, 6)], prefix=False))
    fields = fields_of(client, data, "stats")
    assert (fields["width"], fields["height"], fields["orientation"]) == (2, 4, 6)
    channel = fields["stats"]["channels"][0]
    assert (channel["maxX"], channel["maxY"]) == (3, 0)

    adobe = (CORPUS / "jpeg-adobergb-icc-sample.jpg").read_bytes()
    stats = fields_of(client, adobe, "stats")["stats"]
    decoded = pyvips.Image.new_from_buffer(adobe, "").numpy().astype(np.float64)
    assert [c["sum"] for c in stats["channels"]] == [decoded[:, :, b].sum() for b in range(3)]


VECTORS = [
    (
        np.array([[[60 * x, 100 * y, 200, 255] for x in range(4)] for y in range(3)]),
        "4OQJPZxxd3hwh3iHiIiIh4FwGPeI",
    ),
    (
        np.array([[[255, 0, 0, 255 if x < 4 else 0] for x in range(8)] for _ in range(8)]),
        "1fuDBQBYSJpweI23iCmNkNIIj3WIiHeIiA==",
    ),
    (np.array([[[10, 20, 30, 255]]]), "hecJJwQI9wiIh4hwj3CI+AiIcH/494cP"),
]


@pytest.mark.parametrize(("pixels", "expected"), VECTORS)
def test_thumbhash_vectors_as_lossless_png(
    client: httpx.Client, pixels: np.ndarray, expected: str
) -> None:
    fields = fields_of(client, png(pixels.astype(np.uint8)), "thumbhash")
    assert fields["thumbhash"] == expected
    assert list(fields)[-1] == "thumbhash"


def test_thumbhash_is_taken_upright(client: httpx.Client) -> None:
    upright = VECTORS[0][0].astype(np.uint8)
    stored = np.rot90(upright, k=1)  # rotating this 90° clockwise gives `upright`
    data = add_png_exif(png(np.ascontiguousarray(stored)), tiff([short(0x0112, 6)], prefix=False))
    fields = fields_of(client, data, "thumbhash")
    assert (fields["width"], fields["height"]) == (4, 3)
    assert fields["thumbhash"] == VECTORS[0][1]


def test_large_image_is_reduced_before_hashing(client: httpx.Client) -> None:
    colour = [30, 120, 220]
    big = np.full((300, 400, 3), colour, dtype=np.uint8)
    small = np.full((75, 100, 3), colour, dtype=np.uint8)
    assert (
        fields_of(client, png(big), "thumbhash")["thumbhash"]
        == fields_of(client, png(small), "thumbhash")["thumbhash"]
    )


def test_thumbhash_does_not_depend_on_other_flags(client: httpx.Client) -> None:
    data = (CORPUS / "jpeg-3mp-canon-sx60-orient6.jpg").read_bytes()
    alone = fields_of(client, data, "thumbhash")["thumbhash"]
    together = fields_of(client, data, "thumbhash&stats&exif")
    assert together["thumbhash"] == alone
    assert list(together)[-3:] == ["exif", "stats", "thumbhash"]
