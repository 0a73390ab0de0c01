"""Helpers of the /transform end-to-end tests: requests, decoding, small synthetic images."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pyvips

from tests.serverproc import CORPUS

TEXT = "text/plain; charset=utf-8"


def put(
    client: httpx.Client, query: str, data: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    """PUT /transform with the query sent as written (already percent-encoded)."""
    url = "/transform" + (f"?{query}" if query else "")
    return client.put(url, content=data, headers=headers)


def ok(
    client: httpx.Client, query: str, data: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    r = put(client, query, data, headers)
    assert r.status_code == 200, (query, r.status_code, r.text[:300])
    return r


def size(r: httpx.Response) -> tuple[int, int]:
    return int(r.headers["x-image-width"]), int(r.headers["x-image-height"])


def decode(r: httpx.Response | bytes) -> pyvips.Image:
    """The decoded response body, rendered into memory; its size must match the headers."""
    data = r if isinstance(r, bytes) else r.content
    image = pyvips.Image.new_from_buffer(data, "").copy_memory()
    if not isinstance(r, bytes):
        assert (image.width, image.height) == size(r)
    return image


# batch.md "Decode once for many outputs": a shared decode's output may differ from
# /transform's by resampling only, a mean absolute difference of at most 2 per channel.
DECODE_ONCE_MAD = 2.0


def mad(actual: bytes, expected: bytes) -> float:
    """Mean absolute difference per channel of two encoded images of the same size and
    bands (asserted)."""
    a, b = decode(actual), decode(expected)
    assert (a.width, a.height, a.bands) == (b.width, b.height, b.bands)
    return float((a.cast("int") - b.cast("int")).abs().avg())


def pixel(image: pyvips.Image, x: int, y: int) -> list[float]:
    return [float(v) for v in image(x, y)]


def close(actual: Sequence[float], expected: Sequence[float], tolerance: float = 12) -> bool:
    return len(actual) == len(expected) and all(
        abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True)
    )


def solid(width: int, height: int, colour: Sequence[float]) -> pyvips.Image:
    """A uchar image of one colour; 3 bands → sRGB, 4 → sRGB + alpha, 1 → b-w."""
    image = (pyvips.Image.black(width, height) + list(colour)).cast("uchar")
    interpretation = "b-w" if len(colour) <= 2 else "srgb"
    return image.copy(interpretation=interpretation)


def grid(width: int, height: int, colours: Sequence[Sequence[float]]) -> pyvips.Image:
    """A 3×3 grid of solid colours (row-major, north-west first): one per gravity."""
    rows = []
    for row in range(3):
        cells = [
            solid(_span(width, col), _span(height, row), colours[row * 3 + col]) for col in range(3)
        ]
        rows.append(cells[0].join(cells[1], "horizontal").join(cells[2], "horizontal"))
    return rows[0].join(rows[1], "vertical").join(rows[2], "vertical")


def _span(total: int, index: int) -> int:
    third = total // 3
    return third if index < 2 else total - 2 * third


def png(image: pyvips.Image) -> bytes:
    data: bytes = image.pngsave_buffer(compression=1)
    return data


def jpeg(image: pyvips.Image, orientation: int | None = None, **kwargs: object) -> bytes:
    if orientation is not None:
        image = image.copy()
        image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    data: bytes = image.jpegsave_buffer(Q=95, **kwargs)
    return data


def corpus_bytes(name: str) -> bytes:
    return (CORPUS / name).read_bytes()
