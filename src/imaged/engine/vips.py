"""Process-wide libvips set-up (performance.md): cache off, threads, untrusted loaders."""

from __future__ import annotations

import os
from typing import Any

import pyvips

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


def vips_version() -> str:
    return f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"


def pyvips_version() -> str:
    return str(pyvips.__version__)
