"""`blurhash=true` over HTTP (openapi.md, "BlurHash"): key order, the same pixels as ThumbHash,
lenient/strict like `thumbhash`, pipeline metadata objects, failures like ThumbHash's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blurhash as reference
import httpx
import numpy as np
import pytest
import pyvips
from PIL import Image
from tests.pipeline_helpers import put_form, sample_image, task
from tests.serverproc import CORPUS, ServerProcess

from imaged.engine import blurhash, thumbhash

pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")
BLURHASH_LENGTH = 28  # 4 × 3 components


def metadata(client: httpx.Client, data: bytes, query: str) -> httpx.Response:
    return client.put(f"/metadata?{query}", content=data)


def fields(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    parsed: dict[str, Any] = json.loads(response.text)
    return parsed


def png(array: np.ndarray) -> bytes:
    return bytes(pyvips.Image.new_from_array(array, interpretation="srgb").pngsave_buffer())


def test_blurhash_follows_thumbhash_in_the_key_order(client: httpx.Client) -> None:
    data = (CORPUS / "jpeg-small-nikon-p6000-gps.jpg").read_bytes()
    both = fields(metadata(client, data, "blurhash=true&thumbhash=true&stats&exif"))
    assert list(both)[-4:] == ["exif", "stats", "thumbhash", "blurhash"]
    alone = fields(metadata(client, data, "blurhash"))
    assert list(alone)[-2:] == ["hasAlpha", "blurhash"]
    assert alone["blurhash"] == both["blurhash"]
    assert len(alone["blurhash"]) == BLURHASH_LENGTH and reference.is_valid_blurhash(
        alone["blurhash"]
    )
    assert "blurhash" not in fields(metadata(client, data, "thumbhash"))
    assert "blurhash" not in fields(metadata(client, data, "blurhash=false"))


def test_small_lossless_image_equals_the_reference_encoder(client: httpx.Client) -> None:
    """≤ 100×100 without a profile: ThumbHash's reduced image is the image itself, so the
    hash is the reference encoder's on its pixels (alpha composited over white)."""
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    rgba[:10, :, 3] = 255
    served = fields(metadata(client, png(rgba), "blurhash"))["blurhash"]
    alpha = rgba[..., 3:4].astype(np.uint32)
    over_white = ((rgba[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    assert served == reference.encode(Image.fromarray(over_white, "RGB"), 4, 3)


def test_the_reduction_is_thumbhashs_on_a_large_photo(client: httpx.Client) -> None:
    """An 8 MP photo: the hash is that of ThumbHash's ≤ 100 px reduction of the decoded
    image, and it decodes to the photo's colour."""
    data = (CORPUS / "jpeg-8mp-iphone6-gps.jpg").read_bytes()
    served = fields(metadata(client, data, "blurhash&thumbhash"))
    image = pyvips.Image.new_from_buffer(data, "")
    width, height, rgba = thumbhash.rgba_pixels(image, 0)
    assert (width, height) == (100, 75)
    assert served["blurhash"] == blurhash.of_rgba(rgba)
    assert served["thumbhash"] == thumbhash.of_pixels(width, height, rgba)
    decoded = np.array(reference.decode(served["blurhash"], width, height), dtype=np.uint8)
    light = blurhash._LINEAR[decoded].reshape(-1, 3).mean(axis=0)
    source = blurhash._LINEAR[rgba[..., :3]].reshape(-1, 3).mean(axis=0)
    assert np.abs(light - source).max() < 0.01  # the same mean light (< 3 levels)


def test_lenient_and_strict_like_thumbhash(client: httpx.Client) -> None:
    data = sample_image(16, 12)
    lenient = metadata(client, data, "blurhash=maybe")
    assert len(fields(lenient)["blurhash"]) == BLURHASH_LENGTH  # invalid boolean → true
    assert lenient.headers["x-imaged-warnings"] == "blurhash: must be true, false, 1, or 0"
    strict = metadata(client, data, "thumbhash=no&blurhash=maybe&strict")
    assert strict.status_code == 400
    assert strict.headers["content-type"] == "application/json; charset=utf-8"
    assert strict.json()["details"] == [
        {"param": "thumbhash", "value": "no", "reason": "must be true, false, 1, or 0"},
        {"param": "blurhash", "value": "maybe", "reason": "must be true, false, 1, or 0"},
    ]


def test_failures_follow_the_thumbhash_rules(client: httpx.Client) -> None:
    whole = (CORPUS / "jpeg-small-nikon-p6000-gps.jpg").read_bytes()
    half = whole[: len(whole) // 2]
    assert fields(metadata(client, half, "exif"))["width"] == 640  # header alone: fine
    for query in ("blurhash", "thumbhash"):
        r = metadata(client, half, query)
        assert r.status_code == 400 and r.text.startswith("image: "), (query, r.text)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    out: Path = tmp_path_factory.mktemp("blurhash-out")
    args = ["--enable-pipeline", "--output-dir", str(out), "--concurrency", "2"]
    with ServerProcess(args) as proc, proc.client() as c:
        yield c


def test_pipeline_metadata_objects_take_the_flag(pipeline: httpx.Client) -> None:
    image = sample_image(40, 30)
    config = {
        "metadata": {"blurhash": True, "thumbhash": True},
        "tasks": [task("a", "png", width=20, metadata={"blurhash": True}), task("b", "webp")],
    }
    r = put_form(pipeline, config, image)
    assert r.status_code == 200, r.text
    result = r.json()
    assert list(result["metadata"])[-2:] == ["thumbhash", "blurhash"]
    [first, second] = result["tasks"]
    assert len(first["metadata"]["blurhash"]) == len(result["metadata"]["blurhash"]) == 28
    assert list(first["metadata"])[-1] == "blurhash" and "thumbhash" not in first["metadata"]
    assert "metadata" not in second
    bad = put_form(pipeline, {"tasks": [task("a", metadata={"blurhash": 1})]}, image)
    assert (bad.status_code, bad.text) == (400, "task[0].metadata.blurhash: must be a boolean")
    top = put_form(pipeline, {"metadata": {"blurhash": "yes"}, "tasks": [task("a")]}, image)
    assert (top.status_code, top.text) == (400, "metadata.blurhash: must be a boolean")
