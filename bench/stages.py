"""Where the time goes (`python bench/stages.py`): CPU per stage of a transform in-process,
the same transform through imaged's engine and over HTTP, and thumbor's Pillow path.

Stages are forced one at a time (`copy_memory` after each) with one libvips thread, so their
sum is close to, but not exactly, the fused lazy pipeline. Medians of `--repeat` runs of
`time.process_time`. W5 is broken down per metadata flag instead. Writes
bench/results/stages-<time>.{json,md}.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyvips

from bench import loadgen, memory
from bench.inproc import SUFFIX, UNBOUNDED, configure
from bench.procstat import Window, wait_idle
from bench.servers import THUMBOR_VENV, Imaged, default_allocator
from bench.workloads import ROOT, Workload, select

Stages = dict[str, Any]


def cpu_ms(fn: Callable[[], Any], repeat: int) -> float:
    """Median CPU milliseconds of `fn()` after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeat):
        started = time.process_time()
        fn()
        samples.append((time.process_time() - started) * 1000)
    return statistics.median(samples)


def _try_stages(fn: Callable[[], Stages]) -> Stages:
    try:
        return fn()
    except Exception as exc:
        return {"engine_ab": f"n/a ({type(exc).__name__}: {str(exc)[:80]})"}


def _try(fn: Callable[[], float]) -> float | str:
    """A measurement that needs the engine's current API; its error text where it changed."""
    try:
        return fn()
    except Exception as exc:
        return f"n/a ({type(exc).__name__}: {str(exc)[:80]})"


def transform_options(workload: Workload) -> Any:
    from imaged.engine.options import TransformOptions

    return TransformOptions(
        format=workload.fmt or "jpeg", width=workload.width, quality=workload.quality
    )


def _jpeg_decode(data: bytes, factor: int) -> Callable[[], Any]:
    return lambda: pyvips.Image.jpegload_buffer(
        data, shrink=factor, access="sequential"
    ).copy_memory()


def _extract(
    extract: Callable[..., Any], data: bytes, options: Any, repeat: int
) -> Callable[[], float]:
    from imaged.engine.options import Limits

    return lambda: cpu_ms(lambda: extract(data, "jpeg", options, Limits()), repeat)


def _turbo_decode(data: bytes, factor: int) -> Callable[[], Any]:
    """imaged's libjpeg-turbo decode (engine/jpegturbo.py) after libvips' header read."""
    from imaged.engine import jpegturbo
    from imaged.engine.load import load

    def run() -> Any:
        header = load(data, "jpeg", shrink=factor) if factor > 1 else load(data, "jpeg")
        image = jpegturbo.decode(data, "jpeg", header, factor)
        if image is header:
            raise RuntimeError(jpegturbo.decision(data, "jpeg", header, factor))
        return image.copy_memory()

    return run


def engine_ab(workload: Workload, data: bytes, repeat: int) -> Stages:
    """The whole engine call with the libjpeg-turbo decode and with it forced off."""
    from imaged.engine import jpegturbo

    out: Stages = {}
    forced = jpegturbo._FORCED
    try:
        for label, force in (("libjpeg_turbo", False), ("libvips", True)):
            jpegturbo._FORCED = force
            out[f"engine_{label}_decode_ms"] = cpu_ms(engine_call(workload, data), repeat)
    finally:
        jpegturbo._FORCED = forced
    return out


def jpeg_stages(workload: Workload, data: bytes, repeat: int) -> Stages:
    """Header, decode at each JPEG shrink, resize, rotate, colour and both encoders."""
    from imaged.engine import geometry

    assert workload.width is not None and workload.fmt is not None
    head = pyvips.Image.new_from_buffer(data, "", access="sequential")
    orientation = head.get("orientation") if head.get_typeof("orientation") else 1
    stored_w, stored_h = head.width, head.height
    across = stored_h if orientation >= 5 else stored_w  # the axis `width` applies to
    shrink = across / workload.width
    stages: Stages = {"input": f"{stored_w}×{stored_h}, orientation {orientation}"}
    stages["header_ms"] = cpu_ms(
        lambda: pyvips.Image.new_from_buffer(data, "", access="sequential").width, repeat
    )
    for factor in (1, 2, 4, 8):
        n = max(1, repeat // 4) if factor == 1 else repeat
        stages[f"decode_shrink{factor}_ms"] = cpu_ms(_jpeg_decode(data, factor), n)
        stages[f"decode_libjpeg_turbo_shrink{factor}_ms"] = _try(
            lambda f=factor, n=n: cpu_ms(_turbo_decode(data, f), n)
        )
    chosen = geometry.jpeg_shrink(shrink)
    widest = max(f for f in (1, 2, 4, 8) if across / f >= workload.width)
    stages["imaged_shrink"] = chosen
    stages["largest_possible_shrink"] = widest
    decoded = pyvips.Image.jpegload_buffer(data, shrink=chosen).copy_memory()
    scale = workload.width / (decoded.height if orientation >= 5 else decoded.width)
    stages["resize_ms"] = cpu_ms(
        lambda: decoded.resize(scale, kernel="lanczos3").copy_memory(), repeat
    )
    small = decoded.resize(scale, kernel="lanczos3").copy_memory()
    if orientation >= 5:
        stages["rotate_ms"] = cpu_ms(lambda: small.rot("d90").copy_memory(), repeat)
        small = small.rot("d90").copy_memory()
    stages.update(colour_and_encode(workload, small, repeat))
    return stages


def colour_and_encode(workload: Workload, small: pyvips.Image, repeat: int) -> Stages:
    from imaged.engine.colour import import_to_srgb, to_srgb8
    from imaged.engine.encode import encode

    stages: Stages = {}
    stages["colour_ms"] = _try(
        lambda: cpu_ms(lambda: to_srgb8(import_to_srgb(small)).copy_memory(), repeat)
    )
    final = to_srgb8(import_to_srgb(small)).copy_memory()
    options = transform_options(workload)
    stages["encode_imaged_ms"] = _try(lambda: cpu_ms(lambda: encode(final, options), repeat))
    try:
        stages["encode_imaged_bytes"] = len(encode(final, options))
        stages["encode_imaged_ssimulacra2"] = _score(workload, encode(final, options))
    except Exception as exc:
        stages["encode_imaged_bytes"] = f"n/a ({type(exc).__name__}: {str(exc)[:80]})"
    kwargs = {"Q": workload.quality} if workload.quality is not None else {}
    suffix = SUFFIX[workload.fmt or "jpeg"]
    stages["encode_libvips_defaults_ms"] = cpu_ms(
        lambda: final.write_to_buffer(suffix, **kwargs), repeat
    )
    stages["output_size"] = f"{final.width}×{final.height}"
    stages.update(encoder_variants(workload, final, repeat))
    return stages


def encoder_variants(workload: Workload, final: pyvips.Image, repeat: int) -> Stages:
    """What the encoder settings cost: WebP effort × smart_subsample, AVIF effort,
    JPEG baseline vs progressive + optimised Huffman."""
    q = {"Q": workload.quality} if workload.quality is not None else {}
    variants: dict[str, dict[str, Any]] = {}
    if workload.fmt == "webp":
        for effort in (2, 4):
            for smart in (True, False):
                variants[f"webp_effort{effort}_smart_subsample_{smart}"] = {
                    "effort": effort,
                    "smart_subsample": smart,
                }
        # imaged's settings at thumbor's default quality (80), for W6's unequal defaults
        variants["webp_q80_effort2_smart_subsample_True"] = {
            "Q": 80,
            "effort": 2,
            "smart_subsample": True,
        }
    elif workload.fmt == "avif":
        variants = {f"avif_effort{e}": {"effort": e, "compression": "av1"} for e in (0, 2, 4)}
    elif workload.fmt == "jpeg":
        variants = {
            "jpeg_baseline": {},
            "jpeg_progressive_optimized": {"interlace": True, "optimize_coding": True},
        }
    suffix = SUFFIX[workload.fmt or "jpeg"]
    stages: Stages = {}
    final = _bare(final)
    for name, kwargs in variants.items():
        options = {**q, **kwargs, **_STRIP}
        n = max(2, repeat // 3) if workload.fmt == "avif" else repeat
        stages[f"encode_{name}_ms"] = cpu_ms(_saver(final, suffix, options), n)
        encoded = final.write_to_buffer(suffix, **options)
        stages[f"encode_{name}_bytes"] = len(encoded)
        stages[f"encode_{name}_ssimulacra2"] = _score(workload, encoded)
    return stages


# No metadata in the output; libvips before 8.15 (e.g. Debian bookworm's 8.14) says `strip`.
_STRIP: dict[str, Any] = {"keep": "none"} if pyvips.at_least_libvips(8, 15) else {"strip": True}


def _bare(image: pyvips.Image) -> pyvips.Image:
    """The pixels without any metadata: libvips 8.14's `strip` still writes EXIF into WebP
    (13 kB on W6), which would count as encoder output."""
    pixels = image.write_to_memory()
    bare = pyvips.Image.new_from_memory(
        pixels, image.width, image.height, image.bands, image.format
    )
    return bare.copy(interpretation=image.interpretation)


def _score(workload: Workload, encoded: bytes) -> float | str:
    """SSIMULACRA2 of an encoder variant (bench/quality.py), where the scorer is installed."""
    from bench import quality

    value = quality.score(workload.path, encoded)
    return "n/a (pip install '.[bench]')" if value is None else value


def _saver(image: pyvips.Image, suffix: str, options: dict[str, Any]) -> Callable[[], Any]:
    return lambda: image.write_to_buffer(suffix, **options)


_COPIES_CHILD = """
import sys, pyvips
from pathlib import Path
from bench.procstat import peak_mib, reset_peak, rss_mib
pyvips.cache_set_max(0)
pyvips.vips_lib.vips_concurrency_set(1)
data, mode, width = Path(sys.argv[1]).read_bytes(), sys.argv[2], int(sys.argv[3])
def load(**kw):
    if mode == "buffer":
        return pyvips.Image.jpegload_buffer(data, access="sequential", **kw)
    return pyvips.Image.jpegload_source(pyvips.Source.new_from_memory(data),
                                        access="sequential", **kw)
import os
before = rss_mib(os.getpid())
reset_peak(os.getpid())
full = load()
shrink = max(f for f in (1, 2, 4, 8) if full.width / f >= width)
small = load(shrink=shrink)
small.resize(width / small.width).webpsave_buffer(Q=75)
print(peak_mib(os.getpid()) - before)
"""


def input_copies(path: Path, width: int) -> Stages:
    """Extra peak RSS (fresh process) of a header load + shrink-on-load reload + encode, with
    the input passed as bytes (`*load_buffer` copies it into a libvips blob, per load) and
    as a memory source (`Source.new_from_memory`: no copy)."""
    out: Stages = {}
    for mode in ("buffer", "source"):
        cmd = [sys.executable, "-c", _COPIES_CHILD, str(path), mode, str(width)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
        value: float | str = (
            float(proc.stdout) if proc.returncode == 0 else f"n/a ({proc.stderr[-200:]})"
        )
        out[f"load_shrink_encode_extra_peak_rss_{mode}_mb"] = value
    return out


def generic_stages(workload: Workload, data: bytes, repeat: int) -> Stages:
    """Non-JPEG inputs (no shrink-on-load): full decode, colour, resize, encode."""
    assert workload.width is not None
    stages: Stages = {}
    stages["header_ms"] = cpu_ms(
        lambda: pyvips.Image.new_from_buffer(data, "", access="sequential").width, repeat
    )
    stages["decode_full_ms"] = cpu_ms(
        lambda: pyvips.Image.new_from_buffer(data, "", access="sequential").copy_memory(),
        repeat,
    )
    decoded = pyvips.Image.new_from_buffer(data, "").copy_memory()
    scale = workload.width / decoded.width
    if decoded.hasalpha():
        stages["premultiply_resize_unpremultiply_ms"] = cpu_ms(
            lambda: (
                decoded.premultiply()
                .resize(scale)
                .unpremultiply()
                .cast(decoded.format)
                .copy_memory()
            ),
            repeat,
        )
    stages["resize_ms"] = cpu_ms(lambda: decoded.resize(scale).copy_memory(), repeat)
    small = decoded.resize(scale).copy_memory()
    stages.update(colour_and_encode(workload, small, repeat))
    return stages


def metadata_stages(data: bytes, repeat: int) -> Stages:
    """W5: each metadata flag alone and together, against one plain full decode."""
    from imaged.engine.metadata import extract
    from imaged.engine.options import MetadataOptions

    stages: Stages = {}
    stages["plain_full_decode_ms"] = cpu_ms(
        lambda: pyvips.Image.new_from_buffer(data, "", access="sequential").avg(), repeat
    )
    for label, flags in (
        ("header", {}),
        ("exif", {"exif": True}),
        ("stats", {"stats": True}),
        ("thumbhash", {"thumbhash": True}),
        ("all", {"exif": True, "stats": True, "thumbhash": True}),
    ):
        stages[f"engine_{label}_ms"] = _try(
            _extract(extract, data, MetadataOptions(**flags), repeat)
        )
    base, total = stages["plain_full_decode_ms"], stages["engine_all_ms"]
    if isinstance(total, float):
        stages["all_over_decode"] = total / base
    return stages


def engine_call(workload: Workload, data: bytes) -> Callable[[], Any]:
    """One request's work through imaged's engine, in-process (no HTTP, no thread hop)."""
    from imaged.engine.options import Limits, MetadataOptions

    if workload.kind == "metadata":
        from imaged.engine.metadata import extract

        meta = MetadataOptions(exif=True, stats=True, thumbhash=True)
        return lambda: extract(data, "jpeg", meta, Limits())
    from imaged.engine.transform import transform

    fmt = "png" if workload.file.endswith(".png") else "jpeg"
    options = transform_options(workload)
    return lambda: transform(data, fmt, options, Limits())


def thumbnail_ms(workload: Workload, data: bytes, repeat: int) -> float:
    assert workload.width is not None
    kwargs: dict[str, Any] = dict(_STRIP)
    if workload.quality is not None:
        kwargs["Q"] = workload.quality
    suffix = SUFFIX[workload.fmt or "jpeg"]
    width = workload.width
    return cpu_ms(
        lambda: pyvips.Image.thumbnail_buffer(data, width, height=UNBOUNDED).write_to_buffer(
            suffix, **kwargs
        ),
        repeat,
    )


def server_vs_engine(
    workloads: list[Workload], rounds: int, per_round: int, tool: str
) -> dict[str, dict[str, float | str]]:
    """Mean CPU per request of the engine in-process, of the server over HTTP (concurrency
    1) and of the HTTP floor for the same body (`PUT /metadata` without flags: body read +
    header + JSON), measured in alternating rounds so that the machine's changing load
    hits all three alike."""
    out: dict[str, dict[str, float | str]] = {}
    with Imaged(1, default_allocator()) as server:
        for w in workloads:
            data = w.path.read_bytes()
            try:
                call = engine_call(w, data)
                call()
            except Exception as exc:
                call = None
                out[w.key] = {"engine": f"n/a ({type(exc).__name__}: {str(exc)[:80]})"}
            loads = {
                "server": loadgen.Load("PUT", server.url + w.imaged_target, w.path),
                "floor": loadgen.Load("PUT", server.url + "/metadata", w.path),
            }
            for load in loads.values():
                loadgen.run(tool, load, 1, 3600, 3)
            sums = {"engine": 0.0, "server": 0.0, "floor": 0.0}
            counts = {"engine": 0, "server": 0, "floor": 0}
            for _ in range(rounds):
                if call is not None:
                    started = time.process_time()
                    for _ in range(per_round):
                        call()
                    sums["engine"] += time.process_time() - started
                    counts["engine"] += per_round
                for name, load in loads.items():
                    wait_idle(server.pid)
                    with Window(server.pid) as window:
                        result = loadgen.run(tool, load, 1, 3600, per_round)
                    sums[name] += window.cpu
                    counts[name] += result.requests
            entry = out.setdefault(w.key, {})
            for name, total in sums.items():
                if counts[name]:
                    entry[name] = total / counts[name] * 1000
    return out


def pillow(workload: Workload, repeat: int) -> dict[str, Any] | str:
    python = THUMBOR_VENV / "bin" / "python"
    if not python.exists() or workload.kind != "transform":
        return "n/a (no bench/.venv-thumbor: run bench/run.py once)"
    cmd = [str(python), str(ROOT / "bench" / "pillow_stages.py"), str(workload.path)]
    cmd += [str(workload.width), workload.fmt or "jpeg", str(workload.quality or "-")]
    cmd += [str(repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return f"n/a ({proc.stderr.strip()[-200:]})"
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def py_spy(seconds: float, workload: Workload, tool: str) -> dict[str, Any] | str:
    """Sample imaged under load (2 connections) and attribute active samples: event loop
    (HTTP, body, JSON) vs worker threads, by innermost imaged/aiohttp Python frame."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return "n/a (pip install py-spy==0.4.3 into .venv)"
    with Imaged(2, default_allocator()) as server, tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "spy.txt"
        load = loadgen.Load("PUT", server.url + workload.imaged_target, workload.path)
        loadgen.run(tool, load, 2, 3600, 4)
        cmd = [spy, "record", "--native", "-r", "250", "-d", str(int(seconds))]
        cmd += ["--format", "raw", "-o", str(raw), "-p", str(server.pid)]
        recorder = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        loadgen.run(tool, load, 2, seconds + 1)
        recorder.wait(timeout=seconds + 60)
        if not raw.exists():
            return "n/a (py-spy recorded nothing: ptrace not permitted?)"
        return summarize_spy(raw.read_text())


def summarize_spy(text: str) -> dict[str, Any]:
    """Collapsed stacks → share of samples per thread kind and per innermost frame."""
    kinds: collections.Counter[str] = collections.Counter()
    frames: collections.Counter[str] = collections.Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        parts = stack.split(";")
        if any("run_forever" in p for p in parts):
            kinds["event loop (HTTP, body, JSON)"] += count
        elif any("concurrent/futures/thread.py" in p for p in parts):
            kinds["engine worker threads"] += count
        else:
            kinds["other native threads"] += count
        ours = [p for p in parts if "imaged/" in p or "aiohttp/" in p]
        frames[ours[-1].split(" (")[0] + " (" + ours[-1].split(" (")[1] if ours else "native"] += (
            count
        )
    share = {k: round(100 * v / total, 1) for k, v in kinds.most_common()} if total else {}
    top = {k: round(100 * v / total, 1) for k, v in frames.most_common(15)} if total else {}
    return {"samples": total, "percent_by_thread": share, "percent_by_innermost_frame": top}


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# imaged profile — {results['started']}, libvips {results.get('libvips')}", ""]
    for key, entry in results["workloads"].items():
        lines += [f"## {key}: {entry['title']}", "", "| stage | CPU ms |", "|---|--:|"]
        for name, value in entry["stages"].items():
            shown = f"{value:.1f}" if isinstance(value, float) else str(value)
            lines.append(f"| {name} | {shown} |")
        pil = entry.get("pillow")
        if isinstance(pil, dict):
            for name, value in pil.items():
                shown = f"{value:.1f}" if isinstance(value, float) else str(value)
                lines.append(f"| pillow {name} | {shown} |")
        lines.append("")
    if results.get("py_spy"):
        lines += ["## py-spy", "", "```", json.dumps(results["py_spy"], indent=2), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/stages.py", description=__doc__)
    parser.add_argument("--workloads", default="W1,W2,W6")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=6, help="engine/server alternations")
    parser.add_argument("--per-round", type=int, default=5, help="requests per round")
    parser.add_argument("--py-spy", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--loadgen", default="auto", choices=("auto", "wrk", "python"))
    parser.add_argument(
        "--stages-only",
        action="store_true",
        help="no server or Pillow runs (e.g. in a venv on a system libvips)",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args(argv)
    configure()
    tool = loadgen.choose(args.loadgen)
    workloads = select(args.workloads)
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "workloads": {}}
    results["libvips"] = ".".join(str(pyvips.version(i)) for i in range(3))
    server = (
        {w.key: {} for w in workloads}
        if args.stages_only
        else server_vs_engine(workloads, args.rounds, args.per_round, tool)
    )
    for w in workloads:
        data = w.path.read_bytes()
        print(f"{w.key}: {w.title}", file=sys.stderr, flush=True)
        if w.kind == "metadata":
            stages = metadata_stages(data, args.repeat)
        else:
            stages = (
                jpeg_stages(w, data, args.repeat)
                if w.file.endswith(".jpg")
                else generic_stages(w, data, args.repeat)
            )
            stages["pyvips_thumbnail_save_ms"] = thumbnail_ms(w, data, args.repeat)
        if w.file.endswith(".jpg"):
            stages.update(_try_stages(lambda w=w, data=data: engine_ab(w, data, args.repeat)))
        if args.stages_only:
            results["workloads"][w.key] = {"title": w.title, "stages": stages}
            continue
        if w.file.endswith(".jpg") and w.width:
            stages.update(input_copies(w.path, w.width))
        if w.key == "W1":
            with memory.temp_dir() as tmp:
                big = input_copies(memory.make_big_jpeg(Path(tmp)), 400)
            stages.update({k.replace("extra", "48mp_extra"): v for k, v in big.items()})
        measured = server[w.key]
        stages["engine_in_process_mean_ms"] = measured.get("engine", "n/a")
        stages["server_cpu_per_request_mean_ms"] = measured.get("server", "n/a")
        stages["server_http_floor_same_body_ms"] = measured.get("floor", "n/a")
        engine, whole = measured.get("engine"), measured.get("server")
        if isinstance(engine, float) and isinstance(whole, float):
            stages["server_minus_engine_ms"] = whole - engine
        entry = {"title": w.title, "stages": stages, "pillow": pillow(w, args.repeat)}
        results["workloads"][w.key] = entry
        print(json.dumps(entry, indent=1), file=sys.stderr, flush=True)
    if args.py_spy:
        results["py_spy"] = py_spy(args.py_spy, workloads[0], tool)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"stages-{stamp}.json").write_text(json.dumps(results, indent=2))
    text = markdown(results)
    (out / f"stages-{stamp}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
