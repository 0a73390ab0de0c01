"""Process-wide libvips set-up (performance.md): cache off, threads, untrusted loaders; and
libvips' own memory and file accounting, for the metrics."""

from __future__ import annotations

import ctypes
import functools
import os
import re
from pathlib import Path
from typing import Any

import pyvips

from imaged.engine.loaders import LOADERS

_BLOCKED_FLAG = 32  # VIPS_OPERATION_BLOCKED
# Bytes per band of each libvips band format (`image.format`): an image's rendered size.
BYTES_PER_BAND = {
    "uchar": 1,
    "char": 1,
    "ushort": 2,
    "short": 2,
    "uint": 4,
    "int": 4,
    "float": 4,
    "complex": 8,
    "double": 8,
    "dpcomplex": 16,
}


def configure() -> None:
    """Idempotent; called before the first image operation."""
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)
    pyvips.cache_set_max_files(0)
    if "VIPS_CONCURRENCY" not in os.environ:
        pyvips.vips_lib.vips_concurrency_set(1)
    # Block every loader libvips marks untrusted (ImageMagick, matrix, CSV, FITS, …) but keep
    # the SVG loader, which the contract needs; only our magic-byte-detected loaders are called.
    pyvips.block_untrusted_set(True)
    pyvips.operation_block_set("VipsForeignLoadSvg", False)
    # Defence in depth (docs/security.md): block *every* loader, trusted or not (matrix,
    # Ultra HDR, …), then unblock only the formats whose loaders loaders.LOADERS calls by
    # name (e.g. VipsForeignLoadJpeg: its buffer, source and file variants), so not even a
    # sniffing call (`new_from_buffer`) could reach another format's loader.
    pyvips.operation_block_set("VipsForeignLoad", True)
    for name in set(LOADERS.values()):
        gtype = pyvips.vips_lib.vips_type_find(b"VipsOperation", name.encode())
        if gtype:
            buffer_class = str(pyvips.type_name(gtype))
            format_class = buffer_class.removesuffix("Buffer")
            known = pyvips.type_from_name(format_class) != 0
            pyvips.operation_block_set(format_class if known else buffer_class, False)


def operation_available(name: str) -> bool:
    """True if libvips has the operation and it is not blocked."""
    lib: Any = pyvips.vips_lib
    ffi: Any = pyvips.ffi
    if not lib.vips_type_find(b"VipsOperation", name.encode()):
        return False
    op = lib.vips_operation_new(name.encode())
    if op == ffi.NULL:
        return False
    try:
        return not (lib.vips_operation_get_flags(op) & _BLOCKED_FLAG)
    finally:
        lib.g_object_unref(op)


def introspect() -> dict[str, int | bool]:
    """The live libvips set-up, read back from libvips (logged at debug on startup)."""
    return {
        "cacheMax": int(pyvips.cache_get_max()),
        "cacheMaxMem": int(pyvips.cache_get_max_mem()),
        "cacheMaxFiles": int(pyvips.cache_get_max_files()),
        "concurrency": int(pyvips.concurrency_get()),
        # csvload is one of the loaders libvips marks untrusted.
        "untrustedBlocked": not operation_available("csvload"),
    }


def vips_version() -> str:
    return f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"


def pyvips_version() -> str:
    return str(pyvips.__version__)


# --- libvips' tracked memory and files (observability.md) --------------------------------

_LIBVIPS = re.compile(r"libvips(?:-[0-9a-f]+)?\.so(?:\.[0-9]+)*")


@functools.cache
def _loaded_libvips() -> ctypes.CDLL | None:
    """The libvips that pyvips loaded, for the counters pyvips does not bind. Opening a
    library that is already loaded returns that same instance (and counters), so it is
    found by its path in the process's mappings; None where there are none (not Linux)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
        if _LIBVIPS.fullmatch(os.path.basename(path)):
            library = ctypes.CDLL(path)
            library.vips_tracked_get_mem.restype = ctypes.c_size_t
            library.vips_tracked_get_mem_highwater.restype = ctypes.c_size_t
            library.vips_tracked_get_files.restype = ctypes.c_int
            return library
    return None


def tracking_available() -> bool:
    return _loaded_libvips() is not None


def tracked_memory() -> int:
    """Bytes libvips has allocated for pixel buffers now (`vips_tracked_get_mem`)."""
    library = _loaded_libvips()
    return int(library.vips_tracked_get_mem()) if library is not None else 0


def tracked_memory_highwater() -> int:
    """The most bytes libvips has had allocated at once since the process started."""
    library = _loaded_libvips()
    return int(library.vips_tracked_get_mem_highwater()) if library is not None else 0


def tracked_files() -> int:
    """Files libvips has open now."""
    library = _loaded_libvips()
    return int(library.vips_tracked_get_files()) if library is not None else 0
