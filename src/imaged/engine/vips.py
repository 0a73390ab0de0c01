"""Process-wide libvips set-up (performance.md): cache off, threads, untrusted loaders."""

from __future__ import annotations

import os
from typing import Any

import pyvips

from imaged.engine.loaders import LOADERS

_BLOCKED_FLAG = 32  # VIPS_OPERATION_BLOCKED


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
