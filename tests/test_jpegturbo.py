"""engine/jpegturbo.py: libjpeg-turbo decodes exactly libvips' pixels where it is used, the
unsupported kinds keep libvips, and broken files give exactly today's outcome."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import pytest
import pyvips
import simplejpeg

from imaged.engine import jpegturbo, vips
from imaged.engine.deadline import OperationGuard
from imaged.engine.load import load
from imaged.engine.metadata import extract
from imaged.engine.options import Limits, MetadataOptions, TransformOptions
from imaged.engine.transform import transform
from imaged.errors import ImageError
from tests.serverproc import CORPUS

vips.configure()  # as the engine runs it: one libvips thread, so ties in `stats` are stable
SHRINKS = (1, 2, 4, 8)
CORPUS_JPEGS = sorted(p for p in CORPUS.rglob("*.jpg") if p.is_file())
SUPPORTED_CORPUS = [p for p in CORPUS_JPEGS if "cmyk" not in p.name]
CMYK_CORPUS = CORPUS / "jpeg-cmyk-swop-canon300d.jpg"


def _photo(width: int, height: int, bands: int = 3) -> pyvips.Image:
    """Smooth gradients plus seeded noise: chroma detail for the upsamplers, edges for the
    IDCT, and different values in every band."""
    x = pyvips.Image.xyz(width, height)
    grad = (x[0] * (255 / max(width, 1)) + x[1] * (128 / max(height, 1))).cast("float")
    noise = pyvips.Image.gaussnoise(width, height, sigma=30, mean=0, seed=width * 7 + height)
    bandsets = [grad + noise, (grad * 0.5 + 60 - noise), (255 - grad + noise * 0.5)]
    image = bandsets[0].bandjoin(bandsets[1:bands]) if bands > 1 else bandsets[0]
    return image.cast("uchar", shift=False).copy(interpretation="srgb" if bands == 3 else "b-w")


def _vips_jpeg(width: int, height: int, bands: int = 3, **options: object) -> bytes:
    return bytes(_photo(width, height, bands).jpegsave_buffer(Q=85, **options))


def _turbo_jpeg(width: int, height: int, subsampling: str) -> bytes:
    pixels = np.ndarray(
        buffer=_photo(width, height).write_to_memory(), dtype=np.uint8, shape=(height, width, 3)
    )
    return bytes(simplejpeg.encode_jpeg(pixels, quality=85, colorsubsampling=subsampling))


def _synthetic() -> Iterator[tuple[str, bytes]]:
    for width, height in ((333, 251), (64, 48), (17, 9), (1001, 7), (3, 3)):
        size = f"{width}x{height}"
        yield f"420-{size}", _vips_jpeg(width, height, subsample_mode="on")
        yield f"444-{size}", _vips_jpeg(width, height, subsample_mode="off")
        yield f"grey-{size}", _vips_jpeg(width, height, bands=1)
        yield f"progressive-{size}", _vips_jpeg(width, height, interlace=True)
        yield f"restart-{size}", _vips_jpeg(width, height, restart_interval=1)
        yield f"progressive-grey-{size}", _vips_jpeg(width, height, bands=1, interlace=True)
        for subsampling in ("422", "440", "411"):
            yield f"{subsampling}-{size}", _turbo_jpeg(width, height, subsampling)


SYNTHETIC = dict(_synthetic())


def _header(data: bytes, shrink: int) -> pyvips.Image:
    return load(data, "jpeg", shrink=shrink) if shrink > 1 else load(data, "jpeg")


def _pixels(image: pyvips.Image) -> np.ndarray:
    shape = (image.height, image.width, image.bands)
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8, shape=shape)


def _assert_same_decode(data: bytes, shrink: int, expect_turbo: bool = True) -> None:
    header = _header(data, shrink)
    reason = jpegturbo.decision(data, "jpeg", header, shrink)
    decoded = jpegturbo.decode(data, "jpeg", header, shrink)
    if not expect_turbo:
        assert reason.startswith("libvips: ") and decoded is header
        return
    assert reason == jpegturbo.TURBO
    assert decoded is not header
    reference = _header(data, shrink).copy_memory()
    assert (decoded.width, decoded.height, decoded.bands) == (
        reference.width,
        reference.height,
        reference.bands,
    )
    assert (decoded.format, decoded.interpretation) == (reference.format, reference.interpretation)
    assert np.array_equal(_pixels(decoded), _pixels(reference))
    for name in reference.get_fields():
        if name.startswith("exif-ifd") or name == "filename":
            continue
        assert decoded.get_typeof(name), name
        assert decoded.get(name) == reference.get(name), name


@pytest.mark.parametrize("shrink", SHRINKS)
@pytest.mark.parametrize("path", SUPPORTED_CORPUS, ids=lambda p: p.name)
def test_corpus_pixels_equal_libvips(path: object, shrink: int) -> None:
    assert hasattr(path, "read_bytes")
    _assert_same_decode(path.read_bytes(), shrink)  # type: ignore[attr-defined]


def _min_side(data: bytes) -> int:
    found = jpegturbo.frame(data)
    assert found is not None
    return min(found.width, found.height)


# Every shrink libvips can load (a 7 px side has no 1/8 decode: libvips says "bad dimensions",
# and the engine never asks for a shrink above the smaller side).
SYNTHETIC_CASES = [
    (name, shrink)
    for name in sorted(SYNTHETIC)
    for shrink in SHRINKS
    if shrink <= _min_side(SYNTHETIC[name])
]


@pytest.mark.parametrize(("name", "shrink"), SYNTHETIC_CASES)
def test_synthetic_pixels_equal_libvips(name: str, shrink: int) -> None:
    data = SYNTHETIC[name]
    found = jpegturbo.frame(data)
    assert found is not None
    ambiguous = shrink > 1 and not jpegturbo._exact_scale(found.width, found.height, shrink)
    _assert_same_decode(data, shrink, expect_turbo=not ambiguous)


def test_synthetic_files_are_what_they_claim() -> None:
    """The battery above really covers each kind (the encoders did what was asked)."""
    sub = {
        name: simplejpeg.decode_jpeg_header(data)[3]
        for name, data in SYNTHETIC.items()
        if name.endswith("333x251")
    }
    assert sub["420-333x251"] == "420" and sub["444-333x251"] == "444"
    assert sub["422-333x251"] == "422" and sub["440-333x251"] == "440"
    assert sub["411-333x251"] == "411" and sub["grey-333x251"] == "Gray"
    progressive = jpegturbo.frame(SYNTHETIC["progressive-333x251"])
    assert progressive is not None and progressive.marker == 0xC2
    assert b"\xff\xd0" in SYNTHETIC["restart-333x251"]  # RST0 markers
    # the tiny sizes do hit the ambiguous-scale fallback
    assert ("420-3x3", 2) in SYNTHETIC_CASES and not jpegturbo._exact_scale(3, 3, 2)


def test_exact_scale_matches_simplejpegs_choice() -> None:
    """Wherever `_exact_scale` says yes, simplejpeg's output has libjpeg's 1/shrink size; on
    a 3×3 image 3/8 also reaches the 2×2 minimum, and simplejpeg would take it."""
    for width, height in ((3, 3), (17, 9), (9, 17), (1001, 7), (64, 48), (2, 1)):
        data = _vips_jpeg(width, height)
        for shrink in (2, 4, 8):
            want = (-(-height // shrink), -(-width // shrink))
            got = simplejpeg.decode_jpeg(
                data, min_width=want[1], min_height=want[0], min_factor=shrink
            ).shape[:2]
            assert got == want or not jpegturbo._exact_scale(width, height, shrink)
    assert not jpegturbo._exact_scale(3, 3, 2) and jpegturbo._exact_scale(64, 48, 8)
    tiny = _vips_jpeg(3, 3)
    assert jpegturbo.decision(tiny, "jpeg", load(tiny, "jpeg", shrink=2), 2) == (
        "libvips: no exact 1/2 scale at 3×3"
    )


def _patched(data: bytes, offset_in_sof: int, value: int) -> bytes:
    position = data.index(b"\xff\xc0")
    out = bytearray(data)
    out[position + offset_in_sof] = value
    return bytes(out)


def test_unsupported_kinds_keep_libvips(monkeypatch: pytest.MonkeyPatch) -> None:
    cmyk = CMYK_CORPUS.read_bytes()
    header = load(cmyk, "jpeg")
    assert jpegturbo.decision(cmyk, "jpeg", header, 1) == "libvips: 4 components"
    assert jpegturbo.decode(cmyk, "jpeg", header) is header
    synthetic_cmyk = bytes(
        (_photo(40, 30).bandjoin(_photo(40, 30, 1))).copy(interpretation="cmyk").jpegsave_buffer()
    )
    assert jpegturbo.decision(synthetic_cmyk, "jpeg", load(synthetic_cmyk, "jpeg"), 1) == (
        "libvips: 4 components"
    )
    plain = _vips_jpeg(40, 30)
    plain_header = load(plain, "jpeg")
    assert jpegturbo.decision(plain, "jpeg", plain_header, 1) == jpegturbo.TURBO
    # frame kinds and precision, judged on the frame header alone
    twelve_bit = _patched(plain, 4, 12)
    assert jpegturbo.decision(twelve_bit, "jpeg", plain_header, 1) == "libvips: 12-bit samples"
    arithmetic = _patched(plain, 1, 0xC9)
    assert jpegturbo.decision(arithmetic, "jpeg", plain_header, 1) == "libvips: frame type SOF9"
    lossless = _patched(plain, 1, 0xC3)
    assert jpegturbo.decision(lossless, "jpeg", plain_header, 1) == "libvips: frame type SOF3"
    assert jpegturbo.decision(b"\xff\xd8\xff\xda\x00\x02", "jpeg", plain_header, 1) == (
        "libvips: no frame header"
    )
    png = bytes(_photo(8, 8).pngsave_buffer())
    assert jpegturbo.decode(png, "png", load(png, "png")).width == 8
    assert jpegturbo.decision(png, "png", load(png, "png"), 1) == "libvips: png input"
    # the memory bound and the scan bound
    monkeypatch.setattr(jpegturbo, "MAX_DECODED_BYTES", 40 * 30 * 3 - 1)
    assert jpegturbo.decision(plain, "jpeg", plain_header, 1) == "libvips: decoded size above 0 MiB"
    monkeypatch.setattr(jpegturbo, "MAX_DECODED_BYTES", 64 << 20)
    progressive = _vips_jpeg(40, 30, interlace=True)
    scans = progressive.count(b"\xff\xda")
    monkeypatch.setattr(jpegturbo, "MAX_SCANS", scans - 1)
    assert jpegturbo.decision(progressive, "jpeg", load(progressive, "jpeg"), 1) == (
        f"libvips: more than {scans - 1} scans"
    )
    monkeypatch.setattr(jpegturbo, "MAX_SCANS", scans)
    assert jpegturbo.decision(progressive, "jpeg", load(progressive, "jpeg"), 1) == jpegturbo.TURBO
    # the benchmark's A/B switch
    monkeypatch.setattr(jpegturbo, "_FORCED", True)
    assert jpegturbo.decision(plain, "jpeg", plain_header, 1) == (
        f"libvips: forced by {jpegturbo.FORCE_LIBVIPS_ENV}"
    )
    assert jpegturbo.decode(plain, "jpeg", plain_header) is plain_header


def test_decoded_image_is_under_the_time_limit() -> None:
    """The decoded image is tracked: once the operation is killed, work on it stops."""
    data = _vips_jpeg(300, 200)
    guard = OperationGuard()
    with guard.active():
        image = jpegturbo.decode(data, "jpeg", load(data, "jpeg"))
        assert jpegturbo.decision(data, "jpeg", load(data, "jpeg"), 1) == jpegturbo.TURBO
        assert image.avg() > 0
        guard.kill()
        with pytest.raises(pyvips.Error):
            image.gaussblur(3).avg()


# --- broken files: exactly today's outcome -------------------------------------------------


def _mutants() -> Iterator[tuple[str, bytes]]:
    sources = {
        "nikon": (CORPUS / "jpeg-small-nikon-p6000-gps.jpg").read_bytes(),
        "adobergb": (CORPUS / "jpeg-adobergb-icc-sample.jpg").read_bytes(),
        "progressive": _vips_jpeg(200, 150, interlace=True),
        "grey": _vips_jpeg(120, 90, bands=1),
    }
    for name, data in sources.items():
        rng = random.Random(name)
        for fraction in (0.3, 0.6, 0.9, 0.99):
            yield f"{name}-cut{fraction}", data[: int(len(data) * fraction)]
        yield f"{name}-no-eoi", data[:-2]
        for index in range(6):
            out = bytearray(data)
            start = len(data) // 3
            for _ in range(1 + index * 3):
                position = rng.randrange(start, len(out) - 2)
                out[position] ^= 1 << rng.randrange(8)
            yield f"{name}-flip{index}", bytes(out)
        yield f"{name}-trailing", data + b"\x00garbage"


MUTANTS = dict(_mutants())
TRANSFORMS = [
    TransformOptions(format="png", width=40),
    TransformOptions(format="jpeg"),
    TransformOptions(format="webp", width=64, greyscale=True),
    TransformOptions(format="png", width=30, height=30, position="attention"),
]


def _outcome(fn: object, *args: object) -> tuple[str, object]:
    assert callable(fn)
    try:
        result = fn(*args)
    except ImageError as exc:
        return "error", str(exc)
    data = getattr(result, "data", None)
    return "ok", data if data is not None else getattr(result, "fields", result)


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_broken_files_give_the_libvips_outcome(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = MUTANTS[name]
    metadata = MetadataOptions(exif=True, stats=True, thumbhash=True)
    outcomes = {}
    for forced in (False, True):
        monkeypatch.setattr(jpegturbo, "_FORCED", forced)
        outcomes[forced] = [
            _outcome(transform, data, "jpeg", options, Limits()) for options in TRANSFORMS
        ] + [_outcome(extract, data, "jpeg", metadata, Limits())]
    assert outcomes[False] == outcomes[True]


def test_the_battery_has_failures_and_successes() -> None:
    """The comparison above is not vacuous: some mutants fail with libvips' text."""
    results = [_outcome(transform, d, "jpeg", TRANSFORMS[0], Limits()) for d in MUTANTS.values()]
    kinds = {kind for kind, _ in results}
    assert kinds == {"ok", "error"}
