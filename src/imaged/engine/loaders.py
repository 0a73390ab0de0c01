"""The libvips loader called for each input format (formats.md).

We call each loader by name rather than letting libvips sniff the bytes, so magic-byte
detection (`formats.detect`) really gates which loader runs, and the process set-up
(`vips.configure`) unblocks exactly these loaders. A module of its own, below both, so that
neither imports the other for it.
"""

from __future__ import annotations

LOADERS = {
    "avif": "heifload_buffer",
    "heic": "heifload_buffer",
    "gif": "gifload_buffer",
    "jpeg": "jpegload_buffer",
    "jxl": "jxlload_buffer",
    "pdf": "pdfload_buffer",
    "png": "pngload_buffer",
    "svg": "svgload_buffer",
    "tiff": "tiffload_buffer",
    "webp": "webpload_buffer",
}
