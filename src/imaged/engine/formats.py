"""Format ids, MIME types, magic-byte detection and decoder/encoder discovery (formats.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyvips

from imaged.engine import codec_samples, vips
from imaged.engine.loaders import LOADERS as LOADERS  # re-exported: engine/load.py reads it here
from imaged.errors import ImageError

FORMATS = ("avif", "gif", "heic", "jpeg", "jxl", "pdf", "png", "raw", "svg", "tiff", "webp")
VALID_FORMATS_TEXT = ", ".join(FORMATS)
ALIASES = {"jpg": "jpeg", "tif": "tiff"}

MIME_TYPES = {
    "avif": "image/avif",
    "gif": "image/gif",
    "heic": "image/heic",
    "jpeg": "image/jpeg",
    "jxl": "image/jxl",
    "pdf": "application/pdf",
    "png": "image/png",
    "raw": "application/octet-stream",
    "svg": "image/svg+xml",
    "tiff": "image/tiff",
    "webp": "image/webp",
}

_AVIF_BRANDS = {b"avif", b"avis"}
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevx", b"hevm", b"hevs"}


def normalise_format(token: str) -> str:
    """Lowercase and resolve the `jpg`/`tif` aliases; the result may still be invalid."""
    lowered = token.lower()
    return ALIASES.get(lowered, lowered)


def _heif_brand(data: bytes) -> str | None:
    major = data[8:12]
    if major == b"avif":
        return "avif"
    if major in (b"heic", b"heix", b"hevc"):
        return "heic"
    # Improvement over the original: consult the compatible brands (e.g. major `mif1`).
    box_size = int.from_bytes(data[0:4], "big")
    end = min(len(data), box_size if box_size >= 16 else 16, 4096)
    compatible = {data[i : i + 4] for i in range(16, end - 3, 4)} | {major}
    if compatible & _AVIF_BRANDS:
        return "avif"
    if compatible & _HEIC_BRANDS:
        return "heic"
    return None


def _is_svg(data: bytes) -> bool:
    head = data[:4096]
    if b"\x00" in head:
        return False
    text = head.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lowered = text.lower()
    start = lowered.find("<svg")
    if start < 0 or start > 1024:
        return False
    html = lowered.find("<html")
    return not (0 <= html < start)


def detect(data: bytes) -> str | None:
    """The format id of `data` by magic bytes, or None if unknown."""
    if len(data) < 12:
        return None
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"GIF8"):
        return "gif"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if data.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL ")):
        return "jxl"
    if data[4:8] == b"ftyp":
        brand = _heif_brand(data)
        if brand is not None:
            return brand
    if data.startswith(b"%PDF-"):
        return "pdf"
    if _is_svg(data):
        return "svg"
    return None


def webp_frames(data: bytes) -> int:
    """The frames (ANMF chunks) of an animated WebP, from the RIFF chunk headers alone; 0
    for a still WebP. Cheap: libvips reads the frame index of a WebP in time quadratic in
    its frame count, so hostile counts are found here first (engine/load.py)."""
    frames, offset = 0, 12
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        frames += data[offset : offset + 4] == b"ANMF"
        offset += 8 + size + (size & 1)
    return frames


def unsupported(direction: Literal["decoding", "encoding"], fmt: str) -> ImageError:
    """A format this libvips cannot read or write (`image: encoding type pdf is not …`)."""
    return ImageError(f"{direction} type {fmt} is not supported")


@dataclass(frozen=True)
class Codecs:
    """What the linked libvips can decode and encode, alphabetical (healthz, startup log)."""

    decoders: tuple[str, ...]
    encoders: tuple[str, ...]

    def check_decoder(self, data: bytes) -> str:
        fmt = detect(data)
        if fmt is None:
            raise ImageError("unknown image type")
        if fmt not in self.decoders:
            raise unsupported("decoding", fmt)
        return fmt

    def check_encoder(self, fmt: str) -> None:
        if fmt not in self.encoders:
            raise unsupported("encoding", fmt)


def _encodes(fmt: str) -> bool:
    """Whether libheif really has the encoder behind `compression` (AV1 vs HEVC)."""
    image = (pyvips.Image.black(16, 16) + 128).cast("uchar").bandjoin([64, 32])
    try:
        image.heifsave_buffer(compression="av1" if fmt == "avif" else "hevc")
    except pyvips.Error:
        return False
    return True


def _decodes(sample: bytes) -> bool:
    """Whether libheif has the decoder for a real sample file (pixels, not just a header)."""
    try:
        pyvips.Operation.call(LOADERS["heic"], sample).avg()
    except pyvips.Error:
        return False
    return True


def discover() -> Codecs:
    """Probe the linked libvips once at startup (formats.md, with the codec probe IMPROVE).

    A generic format is a decoder when its loader exists and is not blocked, and an encoder
    when its saver exists; AVIF and HEIC share one loader and saver, so each direction is
    tried on real data: encoding with each compression, decoding a sample of each."""
    decoders: set[str] = set()
    encoders: set[str] = {"raw"}
    for fmt in ("gif", "jpeg", "jxl", "png", "tiff", "webp"):
        if vips.operation_available(LOADERS[fmt]):
            decoders.add(fmt)
        if vips.operation_available(LOADERS[fmt].replace("load", "save")):
            encoders.add(fmt)
    samples = {"avif": codec_samples.AVIF, "heic": codec_samples.HEIC}
    for fmt, sample in samples.items():
        if vips.operation_available("heifload_buffer") and _decodes(sample):
            decoders.add(fmt)
        if vips.operation_available("heifsave_buffer") and _encodes(fmt):
            encoders.add(fmt)
    for fmt in ("svg", "pdf"):
        if vips.operation_available(LOADERS[fmt]):
            decoders.add(fmt)
    return Codecs(tuple(sorted(decoders)), tuple(sorted(encoders)))
