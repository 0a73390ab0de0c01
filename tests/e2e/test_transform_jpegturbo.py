"""Over HTTP: the libjpeg-turbo decode changes speed only. Every corpus JPEG, transformed by a
server with it and by one forced onto libvips' decoder (the benchmark's A/B switch), gives
outputs of the same size and (within a tiny tolerance, in practice identical) the same
pixels, and the same metadata JSON."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.serverproc import CORPUS, ServerProcess
from tests.transform_support import decode, ok, size

from imaged.engine.jpegturbo import FORCE_LIBVIPS_ENV

JPEGS = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.jpg"))
QUERIES = [
    "width=400&format=webp&quality=75",
    "width=300&format=jpeg&quality=80",
    "width=120&height=120&position=attention&format=png",
    "width=200&greyscale=true&format=png",
    "width=150&height=100&fit=contain&blur=2&format=png",
]
# Mean absolute difference per sample allowed between the two decoders' outputs.
TOLERANCE = 0.05


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with (
        ServerProcess(["--concurrency", "2"]) as turbo,
        ServerProcess(["--concurrency", "2"], {FORCE_LIBVIPS_ENV: "1"}) as libvips,
    ):
        yield turbo, libvips


@pytest.mark.parametrize("name", JPEGS)
def test_outputs_match_the_libvips_decode(
    servers: tuple[ServerProcess, ServerProcess], name: str
) -> None:
    data = (CORPUS / name).read_bytes()
    turbo, libvips = servers
    with turbo.client() as fast, libvips.client() as slow:
        for query in QUERIES:
            a, b = ok(fast, query, data), ok(slow, query, data)
            assert size(a) == size(b), query
            assert a.headers["content-type"] == b.headers["content-type"]
            image_a, image_b = decode(a), decode(b)
            assert image_a.bands == image_b.bands
            assert (image_a - image_b).abs().avg() <= TOLERANCE, (name, query)
        if name.startswith("jpeg-"):  # the metadata pixel passes read the fast decode too
            query = "/metadata?exif=true&stats=true&thumbhash=true"
            ma, mb = fast.put(query, content=data), slow.put(query, content=data)
            assert ma.status_code == mb.status_code == 200
            assert ma.content == mb.content


def test_a_broken_jpeg_gives_the_same_error(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    data = (CORPUS / "jpeg-small-nikon-p6000-gps.jpg").read_bytes()
    cut = data[: len(data) // 2]
    turbo, libvips = servers
    with turbo.client() as fast, libvips.client() as slow:
        for query in ("width=100&format=png", "format=jpeg"):
            a = fast.put(f"/transform?{query}", content=cut)
            b = slow.put(f"/transform?{query}", content=cut)
            assert a.status_code == b.status_code == 400
            assert a.text == b.text and a.text.startswith("image: ")
