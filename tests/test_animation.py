"""engine/animation.py and the multi-frame branch of the transform, in process: frame counts
and heights, the limits on all frames, which inputs become a strip, the metadata the savers
read, and multi-page inputs other than GIF/WebP (animation.md)."""

from __future__ import annotations

import struct

import pytest
import pyvips

from imaged.engine import animation, vips
from imaged.engine.load import WEBP_FRAME_CEILING, check_webp_frames, load, load_checked
from imaged.engine.options import Limits, ParamWarning, TransformOptions
from imaged.engine.transform import transform
from imaged.errors import ImageError
from tests.animations import encode_animation, info, moving_square, tiny_gif, tiny_webp

GIF = encode_animation(moving_square(4, 30, 20), ".gif", [10, 20, 30, 40], 3)


@pytest.fixture(autouse=True, scope="module")
def configured() -> None:
    vips.configure()


def first_frame(data: bytes, fmt: str) -> pyvips.Image:
    return load(data, fmt)


def test_frame_count_and_height() -> None:
    image = first_frame(GIF, "gif")
    assert animation.frame_count(image) == 4
    assert animation.frame_height(image) == 20  # one frame: no page-height
    assert animation.frame_count(pyvips.Image.black(4, 4)) == 1
    strip = load(GIF, "gif", n=-1)
    assert (strip.height, animation.frame_height(strip)) == (80, 20)
    odd = strip.copy()
    odd.set_type(pyvips.GValue.gint_type, "page-height", 30)  # does not split 80 rows
    assert animation.frame_height(odd) == 80


def test_strip_of_an_animation() -> None:
    strip = animation.load_strip(GIF, "gif", Limits(), first_frame(GIF, "gif"))
    assert strip is not None
    assert (strip.frames, strip.width, strip.frame_height) == (4, 30, 20)
    assert strip.frame(3).height == 20
    assert strip.image.get("delay") == [10, 20, 30, 40]


def test_single_frames_and_still_formats_have_no_strip() -> None:
    one = encode_animation(moving_square(1, 30, 20), ".gif")
    assert animation.load_strip(one, "gif", Limits(), first_frame(one, "gif")) is None
    png = bytes(moving_square(1, 30, 20)[0].pngsave_buffer())
    assert animation.load_strip(png, "png", Limits(), first_frame(png, "png")) is None


def test_frame_limit_before_decoding() -> None:
    data = tiny_gif(1001)
    with pytest.raises(
        ImageError, match=r"^image: Input image has too many frames \(1001 > 1000\)$"
    ):
        animation.load_strip(data, "gif", Limits(), first_frame(data, "gif"))
    strip = animation.load_strip(data, "gif", Limits(max_frames=1001), first_frame(data, "gif"))
    assert strip is not None and strip.frames == 1001


def test_pixel_limit_over_all_frames() -> None:
    first = first_frame(GIF, "gif")  # 4 frames of 600 pixels
    with pytest.raises(ImageError, match=r"^image: Input image exceeds pixel limit$"):
        animation.load_strip(GIF, "gif", Limits(pixel_limit=2399), first)
    assert animation.load_strip(GIF, "gif", Limits(pixel_limit=2400), first) is not None


def tiff_pages(*sizes: tuple[int, int]) -> bytes:
    """An uncompressed RGB TIFF with one page per size (libvips writes equal pages only)."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    pixels = []
    for index, (width, height) in enumerate(sizes):
        pixels.append(len(out))
        out += bytes([60 * index, 200, 30]) * width * height
    link = 4
    for (width, height), offset in zip(sizes, pixels, strict=True):
        bits = len(out)
        out += struct.pack("<HHH", 8, 8, 8)
        struct.pack_into("<I", out, link, len(out))
        entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 3, bits), (259, 3, 1, 1),
                   (262, 3, 1, 2), (273, 4, 1, offset), (277, 3, 1, 3), (278, 3, 1, height),
                   (279, 4, 1, 3 * width * height)]  # fmt: skip
        out += struct.pack("<H", len(entries))
        for entry in entries:  # little-endian: an inline SHORT sits in the low bytes
            out += struct.pack("<HHII", *entry)
        link = len(out)
        out += b"\x00\x00\x00\x00"
    return bytes(out)


def test_multi_page_inputs_other_than_gif_and_webp() -> None:
    """Equal pages form an animation; pages of different sizes cannot, so the input is a
    still image (its first page) exactly as with `animated=false`: no warning."""
    options = TransformOptions(format="gif", animated=True)
    equal = transform(tiff_pages((30, 20), (30, 20), (30, 20)), "tiff", options, Limits())
    assert (equal.width, equal.height, equal.frames, equal.warnings) == (30, 20, 3, ())
    assert info(equal.data).frames == 3
    mixed_input = tiff_pages((30, 20), (40, 10))
    mixed = transform(mixed_input, "tiff", options, Limits())
    assert (mixed.width, mixed.height, mixed.frames, mixed.warnings) == (30, 20, 1, ())
    plain = transform(mixed_input, "tiff", TransformOptions(format="gif"), Limits())
    assert mixed.data == plain.data


def test_join_carries_delays_and_loop() -> None:
    strip = animation.load_strip(GIF, "gif", Limits(), first_frame(GIF, "gif"))
    assert strip is not None
    frames = [strip.frame(i).resize(0.5) for i in range(strip.frames)]
    joined = animation.join(frames, strip, "gif", frames[0].height)
    assert (joined.height, joined.get("page-height")) == (40, 10)
    assert joined.get("delay") == [10, 20, 30, 40] and joined.get("loop") == 3


def test_webp_loop_count_is_capped_at_16_bits() -> None:
    strip = animation.load_strip(GIF, "gif", Limits(), first_frame(GIF, "gif"))
    assert strip is not None
    many = strip.image.copy()
    many.set_type(pyvips.GValue.gint_type, "loop", 65536)
    strip = animation.Strip(many, strip.frames, strip.frame_height)
    frames = [strip.frame(i) for i in range(strip.frames)]
    assert animation.join(frames, strip, "webp", 20).get("loop") == 65535
    assert animation.join(frames, strip, "gif", 20).get("loop") == 65536


def test_output_frames_must_fit_the_pixel_limit() -> None:
    frame = pyvips.Image.black(100, 100)
    animation.check_output(frame, 10, Limits(pixel_limit=100_000))
    with pytest.raises(ImageError, match=r"^image: Processed animation exceeds pixel limit$"):
        animation.check_output(frame, 11, Limits(pixel_limit=100_000))


def test_cannot_animate_warning() -> None:
    assert animation.cannot_animate("avif") == ParamWarning(
        "animated", "true", "avif output cannot be animated; first frame used"
    )
    result = transform(GIF, "gif", TransformOptions(format="png", animated=True), Limits())
    assert result.warnings == (animation.cannot_animate("png"),) and result.frames == 1


def test_encoded_frames_counts_what_the_encoder_wrote() -> None:
    same = moving_square(1, 10, 10) * 3  # identical frames are merged by the encoders
    for suffix, fmt in ((".gif", "gif"), (".webp", "webp")):
        data = encode_animation(same, suffix, [100] * 3, 0)
        assert animation.encoded_frames(data, fmt, Limits()) == 1
    assert animation.encoded_frames(GIF, "gif", Limits()) == 4


def test_webp_frames_are_limited_before_libvips_reads_them() -> None:
    data = tiny_webp(12)
    check_webp_frames(data, "webp", 12)
    with pytest.raises(ImageError, match=r"^image: Input image has too many frames \(12 > 11\)$"):
        check_webp_frames(data, "webp", 11)
    check_webp_frames(tiny_gif(12), "gif", 11)  # GIF headers are read in linear time
    big = tiny_webp(WEBP_FRAME_CEILING + 1)
    with pytest.raises(ImageError, match=r"frames \(10001 > 10000\)"):
        load_checked(big, "webp", Limits())
    assert load_checked(big, "webp", Limits(max_frames=20_000)).width == 1
