#!/bin/sh
# Container entrypoint (docs/performance.md): bind every interface unless HOST is set,
# preload mimalloc when it is installed and LD_PRELOAD is not set, then replace this shell
# with imaged, passing every argument through unchanged (`docker run imaged --port 3000`).
#
#   HOST                  unset → 0.0.0.0; set (even empty) → kept as given
#   LD_PRELOAD            unset → mimalloc if found; set (even empty) → kept (LD_PRELOAD= is glibc)
#   IMAGED_PRELOAD_SEARCH globs searched for mimalloc (default: Debian's multiarch paths)
#   IMAGED_BIN            the program to run (default: imaged on PATH)
set -eu

if [ -z "${HOST+set}" ]; then
    HOST=0.0.0.0
    export HOST
fi

if [ -z "${LD_PRELOAD+set}" ]; then
    for lib in ${IMAGED_PRELOAD_SEARCH:-/usr/lib/*-linux-gnu/libmimalloc.so.* /usr/lib/libmimalloc.so*}; do
        if [ -f "$lib" ]; then
            LD_PRELOAD=$lib
            export LD_PRELOAD
            break
        fi
    done
fi

exec "${IMAGED_BIN:-imaged}" "$@"
