"""Codec discovery (`engine/formats.py`): decoding and encoding are decided separately."""

from __future__ import annotations

import pytest
import pyvips

from imaged.engine import codec_samples, formats, vips
from imaged.errors import ImageError
from tests.animations import encode_animation, moving_square, tiny_webp


def test_samples_are_what_they_claim() -> None:
    assert formats.detect(codec_samples.AVIF) == "avif"
    assert formats.detect(codec_samples.HEIC) == "heic"
    image = pyvips.Image.new_from_buffer(codec_samples.AVIF, "")
    assert (image.width, image.height) == (16, 16)
    assert [round(v) for v in image(8, 8)][:3] == pytest.approx([128, 64, 32], abs=4)


def test_this_build() -> None:
    codecs = formats.discover()
    assert {"avif", "gif", "jpeg", "png", "svg", "tiff", "webp"} <= set(codecs.decoders)
    assert {"avif", "gif", "jpeg", "png", "raw", "tiff", "webp"} <= set(codecs.encoders)
    assert "raw" not in codecs.decoders
    assert not {"svg", "pdf"} & set(codecs.encoders)
    assert list(codecs.decoders) == sorted(codecs.decoders)


@pytest.mark.parametrize("missing", ["gifsave_buffer", "heifsave_buffer"])
def test_a_format_without_its_saver_is_still_a_decoder(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    """A decode-only build (gif without cgif, libheif without an encoder plugin)."""
    real = vips.operation_available
    monkeypatch.setattr(vips, "operation_available", lambda name: name != missing and real(name))
    codecs = formats.discover()
    fmt = "gif" if missing.startswith("gif") else "avif"
    assert fmt in codecs.decoders
    assert fmt not in codecs.encoders


def test_a_format_without_its_loader_is_only_an_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    real = vips.operation_available
    monkeypatch.setattr(vips, "operation_available", lambda n: n != "webpload_buffer" and real(n))
    codecs = formats.discover()
    assert "webp" not in codecs.decoders
    assert "webp" in codecs.encoders


def test_a_missing_hevc_encoder_is_not_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled libvips has AV1 only: heic is listed in neither direction unless the
    linked libheif really encodes/decodes HEVC."""
    encodes_hevc = formats._encodes("heic")
    decodes_hevc = formats._decodes(codec_samples.HEIC)
    codecs = formats.discover()
    assert ("heic" in codecs.encoders) == encodes_hevc
    assert ("heic" in codecs.decoders) == decodes_hevc


@pytest.mark.parametrize("direction", ["decoding", "encoding"])
def test_unsupported_is_the_one_text_for_a_missing_codec(direction: str) -> None:
    error = formats.unsupported(direction, "heic")
    assert (error.status, error.message) == (400, f"image: {direction} type heic is not supported")
    codecs = formats.Codecs(decoders=("png",), encoders=("png",))
    with pytest.raises(ImageError) as raised:
        if direction == "decoding":
            codecs.check_decoder(b"GIF89a" + bytes(16))
        else:
            codecs.check_encoder("gif")
    assert raised.value.message == f"image: {direction} type gif is not supported"


def test_webp_frames_are_counted_from_the_chunks() -> None:

    assert formats.webp_frames(tiny_webp(7)) == 7
    assert formats.webp_frames(encode_animation(moving_square(3, 8, 8), ".webp", [50] * 3)) == 3
    still = bytes(moving_square(1, 8, 8)[0].webpsave_buffer())
    assert formats.webp_frames(still) == 0
    assert formats.webp_frames(tiny_webp(7)[:100]) < 7  # a cut file: what its chunks say
