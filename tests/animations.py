"""Animated test inputs and how to read animated outputs (animation.md).

Synthetic animations whose frames are all different (a square that moves and changes colour
over a gradient, optionally on a transparent background), encoded by libvips with chosen
delays and loop counts; byte-level GIF and WebP writers for inputs libvips would never
write (frames of their own sizes and positions, disposal modes, any loop count or delay,
hostile frame counts); and the per-frame comparison the tests use: each output frame
against the same operation applied to that input frame as a still image.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyvips

Pixels = npt.NDArray[np.uint8]


# --- synthetic animations through libvips -------------------------------------------------


def moving_square(
    frames: int,
    width: int,
    height: int,
    *,
    alpha: bool = False,
    seed: int = 0,
    shimmer: bool = False,
) -> list[pyvips.Image]:
    """Distinct frames: a gradient (or, with `alpha`, a transparent canvas) with a square
    that moves diagonally and changes colour from frame to frame; with `shimmer` the
    gradient's blue changes too, so no part of two frames is the same."""
    x = np.arange(width, dtype=np.float64)[None, :] * 255 / max(1, width - 1)
    y = np.arange(height, dtype=np.float64)[:, None] * 255 / max(1, height - 1)
    side = max(2, min(width, height) // 3)
    out: list[pyvips.Image] = []
    for index in range(frames):
        canvas = np.zeros((height, width, 4 if alpha else 3), dtype=np.uint8)
        if not alpha:
            canvas[:, :, 0] = x.astype(np.uint8)
            canvas[:, :, 1] = y.astype(np.uint8)
            canvas[:, :, 2] = (60 + 40 * seed + (9 * index if shimmer else 0)) % 256
        left = (index * 7 + seed * 3) % max(1, width - side)
        top = (index * 5 + seed * 2) % max(1, height - side)
        colour = [(40 + 53 * index) % 256, (200 - 31 * index) % 256, (90 + 17 * index) % 256]
        canvas[top : top + side, left : left + side, :3] = colour
        if alpha:
            canvas[top : top + side, left : left + side, 3] = 255
            # A half-transparent band, so partial alpha goes through premultiplication.
            canvas[height // 2 : height // 2 + 2, :, :3] = [250, 250, 0]
            canvas[height // 2 : height // 2 + 2, :, 3] = 128
        image = pyvips.Image.new_from_array(canvas, interpretation="srgb")
        out.append(image)
    return out


def as_strip(
    frames: Sequence[pyvips.Image], delays: Sequence[int] | None = None, loop: int | None = None
) -> pyvips.Image:
    """Frames stacked into libvips' "toilet roll", with `page-height`, `delay` and `loop`."""
    strip = pyvips.Image.arrayjoin(list(frames), across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    if delays is not None:
        strip.set_type(pyvips.GValue.array_int_type, "delay", list(delays))
    if loop is not None:
        strip.set_type(pyvips.GValue.gint_type, "loop", loop)
    return strip


def encode_animation(
    frames: Sequence[pyvips.Image],
    suffix: str,
    delays: Sequence[int] | None = None,
    loop: int | None = None,
    **options: object,
) -> bytes:
    return bytes(as_strip(frames, delays, loop).write_to_buffer(suffix, **options))


# --- reading animations -------------------------------------------------------------------


@dataclass(frozen=True)
class Animation:
    """What a decoder sees: frame size, frame count, delays (ms) and loop count."""

    width: int
    height: int
    frames: int
    delays: list[int] | None
    loop: int | None


def info(data: bytes) -> Animation:
    image = pyvips.Image.new_from_buffer(data, "")
    pages = int(image.get("n-pages")) if image.get_typeof("n-pages") else 1
    delays = list(image.get("delay")) if image.get_typeof("delay") else None
    loop = int(image.get("loop")) if image.get_typeof("loop") else None
    return Animation(image.width, image.height, pages, delays, loop)


def frames_of(data: bytes) -> list[Pixels]:
    """Every frame of an encoded image, decoded as RGBA (opaque inputs get alpha 255)."""
    pages = info(data).frames
    out = []
    for page in range(pages):
        options = {"page": page} if pages > 1 else {}
        image = pyvips.Image.new_from_buffer(data, "", **options)
        out.append(rgba(image))
    return out


def rgba(image: pyvips.Image) -> Pixels:
    """8-bit RGBA pixels of a decoded image (grey is widened, missing alpha is opaque)."""
    if image.interpretation not in ("srgb", "b-w"):
        image = image.colourspace("srgb")
    if image.bands in (1, 2):
        image = image.colourspace("srgb")
    if not image.hasalpha():
        image = image.bandjoin(255)
    array = np.asarray(image.cast("uchar").numpy(), dtype=np.uint8)
    return array.reshape(image.height, image.width, 4)


def mad(actual: Pixels, expected: Pixels) -> float:
    """Mean absolute difference of premultiplied RGBA, so the colour of fully transparent
    pixels (which encoders may change) does not count."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)

    def premultiplied(pixels: Pixels) -> npt.NDArray[np.float64]:
        values = pixels.astype(np.float64)
        values[:, :, :3] *= values[:, :, 3:4] / 255
        return values

    return float(np.abs(premultiplied(actual) - premultiplied(expected)).mean())


def png(image: pyvips.Image) -> bytes:
    data: bytes = image.pngsave_buffer(compression=1)
    return data


def still_frames(data: bytes) -> list[bytes]:
    """Each frame of an animated input as the still image (lossless PNG) the decoder makes
    of it: the reference input for "the same operation applied to that frame"."""
    pages = info(data).frames
    return [png(pyvips.Image.new_from_buffer(data, "", page=p)) for p in range(pages)]


# --- a byte-level GIF writer ----------------------------------------------------------------

_MIN_CODE_SIZE = 8
_CLEAR_EVERY = 200  # literal codes between clear codes: the code width never grows


def lzw(indices: bytes) -> bytes:
    """GIF LZW data (with its leading minimum code size and the sub-blocks) that stores
    every index as a literal 9-bit code, clearing the table before the code width would
    grow: valid for every decoder, and trivial to get right."""
    clear, end = 1 << _MIN_CODE_SIZE, (1 << _MIN_CODE_SIZE) + 1
    codes = [clear]
    for i, index in enumerate(indices):
        if i and i % _CLEAR_EVERY == 0:
            codes.append(clear)
        codes.append(index)
    codes.append(end)
    packed, bits, count = bytearray(), 0, 0
    for code in codes:
        bits |= code << count
        count += _MIN_CODE_SIZE + 1
        while count >= 8:
            packed.append(bits & 0xFF)
            bits >>= 8
            count -= 8
    if count:
        packed.append(bits & 0xFF)
    return bytes([_MIN_CODE_SIZE]) + sub_blocks(bytes(packed))


def sub_blocks(data: bytes) -> bytes:
    out = bytearray()
    for start in range(0, len(data), 255):
        chunk = data[start : start + 255]
        out += bytes([len(chunk)]) + chunk
    return bytes(out) + b"\x00"


@dataclass(frozen=True)
class GifFrame:
    """One GIF image block: palette indices (row-major, `width` × `height`) at (left, top)."""

    indices: bytes
    width: int
    height: int
    left: int = 0
    top: int = 0
    delay_cs: int = 10
    disposal: int = 1  # 0/1 keep, 2 restore to background, 3 restore to previous
    transparent: int | None = None
    palette: bytes | None = None  # a local colour table of 256 RGB entries


def palette(colours: Sequence[tuple[int, int, int]]) -> bytes:
    """256 RGB entries: `colours` first, the rest black."""
    entries = [bytes(c) for c in colours] + [b"\x00\x00\x00"] * (256 - len(colours))
    return b"".join(entries[:256])


def gif_bytes(
    width: int,
    height: int,
    frames: Sequence[GifFrame],
    *,
    colours: bytes | None = None,
    loop: int | None = 0,
) -> bytes:
    """An animated GIF89a: logical screen, global palette, NETSCAPE loop extension (None:
    none, i.e. play once), then each frame with its graphic control extension."""
    flags = 0xF7 if colours is not None else 0x00  # global table of 256 entries
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, flags, 0, 0))
    if colours is not None:
        out += colours
    if loop is not None:
        out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop) + b"\x00"
    for frame in frames:
        packed = (frame.disposal & 7) << 2 | (1 if frame.transparent is not None else 0)
        out += b"\x21\xf9\x04" + struct.pack(
            "<BHBB", packed, frame.delay_cs, frame.transparent or 0, 0
        )
        local = 0x87 if frame.palette is not None else 0x00
        out += b"\x2c" + struct.pack(
            "<HHHHB", frame.left, frame.top, frame.width, frame.height, local
        )
        if frame.palette is not None:
            out += frame.palette
        out += lzw(frame.indices)
    out += b"\x3b"
    return bytes(out)


def tiny_gif(frames: int, *, delay_cs: int = 10, loop: int | None = 0) -> bytes:
    """A 1×1 GIF of `frames` frames, black and white in turn (so no two neighbours match):
    23 bytes a frame, for frame counts far above any limit."""
    head = gif_bytes(1, 1, [], colours=palette([(0, 0, 0), (255, 255, 255)]), loop=loop)[:-1]
    blocks = [
        b"\x21\xf9\x04\x00" + struct.pack("<H", delay_cs) + b"\x00\x00"
        b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + lzw(bytes([index]))
        for index in (0, 1)
    ]
    return head + b"".join(blocks[i % 2] for i in range(frames)) + b"\x3b"


# --- a byte-level animated WebP writer ------------------------------------------------------


def riff_chunks(
    data: bytes, start: int = 12, end: int | None = None
) -> list[tuple[bytes, int, int]]:
    """(fourcc, offset of the chunk header, offset after its padded payload) of each chunk."""
    chunks, offset, stop = [], start, len(data) if end is None else end
    while offset + 8 <= stop:
        (size,) = struct.unpack_from("<I", data, offset + 4)
        after = offset + 8 + size + (size & 1)
        chunks.append((data[offset : offset + 4], offset, min(after, stop)))
        offset = after
    return chunks


def chunk(fourcc: bytes, payload: bytes) -> bytes:
    return (
        fourcc + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")
    )


def frame_bitstream(image: pyvips.Image, **options: object) -> bytes:
    """The image chunks (VP8L, or ALPH + VP8) of `image` saved as a still WebP."""
    data = bytes(image.webpsave_buffer(keep="none", **options))
    return b"".join(
        data[a:b] for kind, a, b in riff_chunks(data) if kind in (b"VP8 ", b"VP8L", b"ALPH")
    )


@dataclass(frozen=True)
class WebpFrame:
    bitstream: bytes  # from `frame_bitstream`
    width: int
    height: int
    left: int = 0  # even (the format stores half the offset)
    top: int = 0
    duration: int = 100
    blend: bool = False
    dispose: bool = False


def _u24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def webp_bytes(
    width: int, height: int, frames: Sequence[WebpFrame], *, loop: int = 0, alpha: bool = True
) -> bytes:
    """An animated WebP: VP8X (canvas size), ANIM (loop count), one ANMF per frame."""
    flags = 0x02 | (0x10 if alpha else 0)
    parts = [chunk(b"VP8X", bytes([flags, 0, 0, 0]) + _u24(width - 1) + _u24(height - 1))]
    parts.append(chunk(b"ANIM", b"\x00\x00\x00\x00" + struct.pack("<H", loop)))
    for frame in frames:
        bits = (0 if frame.blend else 0x02) | (0x01 if frame.dispose else 0)
        header = _u24(frame.left // 2) + _u24(frame.top // 2)
        header += _u24(frame.width - 1) + _u24(frame.height - 1) + _u24(frame.duration)
        parts.append(chunk(b"ANMF", header + bytes([bits]) + frame.bitstream))
    body = b"".join(parts)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def tiny_webp(frames: int) -> bytes:
    """A 1×1 animated WebP of `frames` lossless frames, black and white in turn."""
    pixels = [pyvips.Image.black(1, 1).new_from_image([v] * 3).cast("uchar") for v in (0, 255)]
    bits = [frame_bitstream(p.copy(interpretation="srgb"), lossless=True) for p in pixels]
    return webp_bytes(1, 1, [WebpFrame(bits[i % 2], 1, 1) for i in range(frames)], alpha=False)


# --- structure of GIF and WebP files (for splicing and for the corruption battery) -----------


@dataclass(frozen=True)
class Block:
    """One structural block of a file: its kind and byte range [start, end)."""

    kind: str
    start: int
    end: int


_GIF_EXTENSIONS = {0xF9: "graphic-control", 0xFE: "comment", 0x01: "plain-text"}


def _skip_sub_blocks(data: bytes, offset: int) -> int:
    while offset < len(data) and data[offset]:
        offset += data[offset] + 1
    return min(offset + 1, len(data))


def gif_blocks(data: bytes) -> list[Block]:
    """Header, logical screen, palettes, every extension and every image (descriptor, local
    palette, LZW code size, data sub-blocks) and the trailer, in file order."""
    blocks = [Block("header", 0, 6), Block("screen", 6, 13)]
    offset = 13
    if data[10] & 0x80:
        size = 3 * (2 << (data[10] & 7))
        blocks.append(Block("global-palette", offset, offset + size))
        offset += size
    while offset < len(data):
        marker = data[offset]
        if marker == 0x21 and offset + 1 < len(data):
            label = data[offset + 1]
            kind = _GIF_EXTENSIONS.get(label, "application" if label == 0xFF else "extension")
            if label == 0xFF and data[offset + 3 : offset + 11] == b"NETSCAPE":
                kind = "netscape-loop"
            end = _skip_sub_blocks(data, offset + 2)
            blocks.append(Block(kind, offset, end))
            offset = end
        elif marker == 0x2C:
            blocks.append(Block("image-descriptor", offset, offset + 10))
            flags = data[offset + 9] if offset + 9 < len(data) else 0
            offset += 10
            if flags & 0x80:
                size = 3 * (2 << (flags & 7))
                blocks.append(Block("local-palette", offset, offset + size))
                offset += size
            blocks.append(Block("lzw-code-size", offset, offset + 1))
            end = _skip_sub_blocks(data, offset + 1)
            blocks.append(Block("image-data", offset + 1, end))
            offset = end
        elif marker == 0x3B:
            blocks.append(Block("trailer", offset, offset + 1))
            offset += 1
        else:
            break
    return blocks


def webp_blocks(data: bytes) -> list[Block]:
    """The RIFF header, every chunk, and inside each ANMF its frame header and the image
    chunks (VP8, VP8L, ALPH) of the frame."""
    blocks = [Block("riff-header", 0, 12)]
    for fourcc, start, end in riff_chunks(data):
        kind = fourcc.decode("latin-1").strip().lower()
        blocks.append(Block(kind, start, end))
        if fourcc == b"ANMF":
            blocks.append(Block("anmf-header", start + 8, start + 24))
            for inner, a, b in riff_chunks(data, start + 24, end):
                blocks.append(Block("anmf-" + inner.decode("latin-1").strip().lower(), a, b))
    return blocks


def splice_gif_frames(data: bytes, count: int) -> bytes:
    """`data` (an animated GIF of at least two frames) with its second frame repeated until
    there are `count` frames, each copy moved down and right by its index: cheap to build,
    yet every frame is different and the decoder renders every one on the full canvas."""
    blocks = gif_blocks(data)
    second = [i for i, b in enumerate(blocks) if b.kind == "image-descriptor"][1]
    control = second - 1 if blocks[second - 1].kind == "graphic-control" else second
    pixels = next(b for b in blocks[second:] if b.kind == "image-data")
    frame = data[blocks[control].start : pixels.end]
    descriptor = blocks[second].start - blocks[control].start
    width, height = struct.unpack_from("<HH", data, 6)
    frame_width, frame_height = struct.unpack_from("<HH", data, blocks[second].start + 5)
    out = bytearray(data[: blocks[control].start])
    for index in range(count - 1):
        moved = bytearray(frame)
        left = index * 3 % max(1, width - frame_width)
        top = index * 2 % max(1, height - frame_height)
        struct.pack_into("<HH", moved, descriptor + 1, left, top)
        out += moved
    return bytes(out) + b"\x3b"
