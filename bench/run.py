"""`make bench`: imaged under load against in-process pyvips and thumbor (bench/README.md).

Writes bench/results/bench-<time>.{json,md} (and latest.{json,md}) and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyvips

from bench import (
    animation,
    batch,
    budget,
    caching,
    decodeonce,
    loadgen,
    memory,
    overhead,
    quality,
    report,
)
from bench.inproc import thumbnail_output
from bench.measure import (
    Probe,
    Row,
    measure_inproc,
    measure_server,
    merge,
    probe,
    server_load,
)
from bench.servers import (
    Imaged,
    Server,
    Thumbor,
    available_allocators,
    default_allocator,
    ensure_thumbor,
)
from bench.workloads import BY_KEY, ROOT, Workload, select
from imaged.engine.jpegturbo import FORCE_LIBVIPS_ENV

# imaged-libvips: imaged with its JPEG decode forced back onto libvips (the A/B of
# engine/jpegturbo.py; FORCE_LIBVIPS_ENV exists for this benchmark only).
PEERS = ("imaged", "imaged-libvips", "pyvips", "thumbor")
SECTIONS = (
    "matrix",
    "memory",
    "scaling",
    "animation",
    "metrics",
    "caching",
    "batch",
    "budget",
    "decodeonce",
)


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _ints(text: str) -> list[int]:
    return [int(p) for p in _csv(text)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="smoke run: tiny durations, one level")
    p.add_argument("--workloads", default="all", help="e.g. W1,W5 (default: all)")
    p.add_argument("--peers", default=",".join(PEERS), help=",".join(PEERS))
    p.add_argument("--sections", default=",".join(SECTIONS), help=",".join(SECTIONS))
    p.add_argument("--concurrency", default="1,2,4,8", help="client concurrency levels")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per level and round")
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="measure each workload's peers this many times, in rotating order, and pool the "
        "rounds: the machine's changing load then hits every peer alike (default 2; 1 with "
        "--quick)",
    )
    p.add_argument("--server-concurrency", type=int, default=os.cpu_count() or 1)
    p.add_argument("--allocator", default="auto", help="glibc|glibc-arena2|mimalloc|jemalloc")
    p.add_argument("--allocators", default="available", help="memory study allocators")
    p.add_argument("--soak-seconds", type=float, default=60.0)
    p.add_argument("--drift-requests", default="200,2000", help="first,total")
    p.add_argument("--scaling-workload", default="W1")
    p.add_argument("--scaling-levels", default="1,2,4", help="--concurrency values")
    p.add_argument("--animation-requests", type=int, default=5, help="requests per animation case")
    p.add_argument(
        "--decodeonce-runs", type=int, default=9, help="decodeonce section: runs (median)"
    )
    p.add_argument(
        "--overhead-rounds",
        type=int,
        default=None,
        help="metrics section: rounds, each a fresh pair of servers (default 8; 1 with --quick)",
    )
    p.add_argument("--batch-sources", type=int, default=200, help="batch section: JPEGs")
    p.add_argument("--batch-no-ray", action="store_true", help="batch section without Ray")
    p.add_argument("--loadgen", default="auto", choices=("auto", "wrk", "python"))
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--no-install", action="store_true", help="never create the thumbor venv")
    args = p.parse_args(argv)
    if args.quick:
        args.duration = min(args.duration, 2.0)
        args.concurrency = "2"
        args.soak_seconds = 2.0
        args.drift_requests = "10,30"
        args.scaling_levels = "1,2"
        args.animation_requests = min(args.animation_requests, 2)
        args.decodeonce_runs = min(args.decodeonce_runs, 2)
        args.batch_sources = min(args.batch_sources, 20)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    if args.overhead_rounds is None:
        args.overhead_rounds = 1 if args.quick else 8
    return args


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def row_line(row: Row) -> str:
    cpu = "–" if row.cpu_ms is None else f"{row.cpu_ms:.1f}"
    rss = "–" if row.peak_rss_mb is None else f"{row.peak_rss_mb:.0f}"
    return (
        f"  {row.workload} {row.peer:13s} c={row.concurrency}: {row.rps:6.1f} req/s "
        f"p50 {row.p50_ms:7.1f} ms p99 {row.p99_ms:7.1f} ms err {row.errors} "
        f"cpu {cpu} ms/req rss {rss} MB"
    )


def run_server_levels(
    server: Server, workload: Workload, peer: str, args: argparse.Namespace, tool: str
) -> list[Row]:
    load = server_load(server, workload, peer)
    out: Probe = probe(load.url, load, decode=workload.kind == "transform")
    if out.status != 200:
        progress(f"  {workload.key} {peer}: probe answered {out.status}")
    elif workload.kind == "transform":
        out = replace(out, ssimulacra2=quality.score(workload.path, out.body))
    levels = _ints(args.concurrency)
    loadgen.run(tool, load, max(levels), 3600, 2 * max(levels))  # warm-up, not measured
    rows: list[Row] = []
    for level in levels:
        row = measure_server(server, workload, peer, tool, level, args.duration, out)
        progress(row_line(row))
        rows.append(row)
    return rows


def run_peer(
    args: argparse.Namespace, tool: str, allocator: str, workload: Workload, peer: str
) -> list[Row]:
    """Every concurrency level of one peer on one workload (one round)."""
    if peer in ("imaged", "imaged-libvips"):
        env = {FORCE_LIBVIPS_ENV: "1"} if peer == "imaged-libvips" else {}
        with Imaged(args.server_concurrency, allocator, env=env) as server:
            return run_server_levels(server, workload, peer, args, tool)
    if peer == "thumbor":
        with Thumbor(args.server_concurrency, allocator) as server:
            return run_server_levels(server, workload, "thumbor", args, tool)
    rows: list[Row] = []
    variants = ["plain", "decode"] if workload.kind == "metadata" else ["plain"]
    score = None
    if workload.kind == "transform":
        score = quality.score(workload.path, thumbnail_output(workload, workload.path.read_bytes()))
    for variant in variants:
        for level in _ints(args.concurrency):
            row = measure_inproc(workload, variant, level, args.duration, allocator, score)
            progress(row_line(row))
            rows.append(row)
    return rows


def run_matrix(
    args: argparse.Namespace, tool: str, allocator: str, thumbor_ok: bool
) -> list[dict[str, Any]]:
    wanted = _csv(args.peers)
    rows: list[Row] = []
    for workload in select(args.workloads):
        progress(f"{workload.key}: {workload.title}")
        peers = [p for p in PEERS if p in wanted]
        if not (thumbor_ok and workload.thumbor is not None) and "thumbor" in peers:
            peers.remove("thumbor")
        rounds: dict[tuple[str, int], list[Row]] = {}
        for index in range(max(1, args.rounds)):
            shift = index % len(peers) if peers else 0
            for peer in peers[shift:] + peers[:shift]:
                for row in run_peer(args, tool, allocator, workload, peer):
                    rounds.setdefault((row.peer, row.concurrency), []).append(row)
        rows += [merge(group) for group in rounds.values()]
    return [r.as_dict() for r in rows]


def run_memory(args: argparse.Namespace, tool: str, allocator: str) -> dict[str, Any]:
    first, total = _ints(args.drift_requests)
    plan = memory.Plan(
        soak_seconds=args.soak_seconds,
        drift_first=first,
        drift_total=total,
        big_requests=2 if args.quick else 6,
    )
    if args.allocators == "available":
        names = [allocator] if args.quick else available_allocators()
    else:
        names = _csv(args.allocators)
    results: dict[str, Any] = {}
    with memory.temp_dir() as tmp:
        progress("generating the 48 MP JPEG…")
        big = memory.make_big_jpeg(Path(tmp))
        for name in names:
            progress(f"memory study, allocator {name}")
            entry: dict[str, Any] = {}
            entry["soak"] = memory.soak(tool, name, args.server_concurrency, plan)
            progress(f"  soak: {entry['soak']}")
            entry["drift"] = memory.drift(tool, name, args.server_concurrency, plan)
            progress(f"  drift: {entry['drift']}")
            entry["big"] = memory.big_vs_small(tool, name, args.server_concurrency, plan, big)
            progress(f"  48 MP: {entry['big']}")
            results[name] = entry
    return results


def run_scaling(args: argparse.Namespace, tool: str, allocator: str) -> list[dict[str, Any]]:
    plan = memory.Plan(
        scaling_levels=tuple(_ints(args.scaling_levels)),
        scaling_seconds=max(args.duration, 1.0),
    )
    rows = memory.scaling(tool, allocator, BY_KEY[args.scaling_workload.upper()], plan)
    for r in rows:
        progress(f"  --concurrency {r['server_concurrency']}: {r['rps']:.1f} req/s")
    return rows


def run_overhead(args: argparse.Namespace, tool: str, allocator: str) -> dict[str, Any]:
    """CPU per request with and without --metrics-listen (bench/overhead.py)."""
    with memory.temp_dir() as tmp:
        return overhead.run(
            tool,
            allocator,
            args.server_concurrency,
            Path(tmp),
            duration=max(args.duration, 1.0),
            rounds=max(1, args.overhead_rounds),
            control=not args.quick,
            progress=progress,
        )


def write(results: dict[str, Any], out_dir: Path, stamp: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    text = report.markdown(results)
    blob = json.dumps(results, indent=2)
    for name in (f"bench-{stamp}", "latest"):
        (out_dir / f"{name}.json").write_text(blob)
        (out_dir / f"{name}.md").write_text(text)
    return out_dir / f"bench-{stamp}.md"


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so every server started here is stopped."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    args = parse_args(argv)
    sections = _csv(args.sections)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown section(s): {', '.join(sorted(unknown))}")
    tool = loadgen.choose(args.loadgen)
    allocator = default_allocator() if args.allocator == "auto" else args.allocator
    workloads = select(args.workloads)
    missing = [str(w.path) for w in workloads if not w.path.is_file()]
    if missing:
        raise SystemExit(f"corpus file(s) missing: {', '.join(missing)} (set BENCH_CORPUS)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results: dict[str, Any] = {
        "meta": {
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "cpus": os.cpu_count(),
            "loadavg_before": " ".join(f"{v:.2f}" for v in os.getloadavg()),
            "server_concurrency": args.server_concurrency,
            "allocator": allocator,
            "vips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}",
            "loadgen": tool,
            "duration": args.duration,
            "rounds": args.rounds,
            "concurrency": _ints(args.concurrency),
            "quick": args.quick,
        },
        "notes": [],
    }
    thumbor_ok = False
    if "matrix" in sections and "thumbor" in _csv(args.peers):
        problem = ensure_thumbor(install=not args.no_install)
        thumbor_ok = problem is None
        results["meta"]["thumbor"] = "thumbor 7.8.0, Pillow engine" if thumbor_ok else None
        if problem:
            results["notes"].append(f"thumbor not run: {problem}")
            progress(f"thumbor not run: {problem}")
    out_dir = Path(args.out)
    if "matrix" in sections:
        results["matrix"] = run_matrix(args, tool, allocator, thumbor_ok)
        results["summary"] = report.summary(results["matrix"], [w.key for w in workloads])
        results["ab"] = report.ab_summary(results["matrix"], [w.key for w in workloads])
        write(results, out_dir, stamp)
    if "memory" in sections:
        results["memory"] = run_memory(args, tool, allocator)
        write(results, out_dir, stamp)
    if "scaling" in sections:
        results["scaling_workload"] = args.scaling_workload.upper()
        results["scaling"] = run_scaling(args, tool, allocator)
    if "animation" in sections:
        progress("animations…")
        results["animation"] = animation.run(
            tool, allocator, args.server_concurrency, args.animation_requests
        )
        for row in results["animation"]:
            progress(f"  {row['key']}: {row['cpu_ms']:.0f} ms/req, +{row['above_idle_mb']:.0f} MB")
    if "metrics" in sections:
        progress("metrics overhead: with and without --metrics-listen")
        results["metrics_overhead"] = run_overhead(args, tool, allocator)
    if "caching" in sections:
        progress("caching: hot URL and 304s")
        results["caching"] = caching.run(
            tool, allocator, args.server_concurrency, _ints(args.concurrency), args.duration
        )
        for r in results["caching"]:
            progress(f"  {r['variant']} c={r['concurrency']}: {r['rps']:.1f} req/s")
    if "decodeonce" in sections:
        progress("decode once: one PUT /pipeline (4 tasks) against 4 PUT /transform")
        row = decodeonce.run(allocator, args.server_concurrency, args.decodeonce_runs)
        results["decodeonce"] = row
        progress(f"  ratio {row['ratio']:.2f} (bar {row['bar']})")
    if "batch" in sections:
        progress(f"batch: {args.batch_sources} JPEGs, four WebP outputs each")
        results["batch"] = batch.run(
            args.batch_sources, args.server_concurrency, ray=not args.batch_no_ray
        )
        for r in results["batch"]:
            progress(f"  {r['variant']}: {r['images_per_s']:.2f} images/s")
    if "budget" in sections:
        progress("memory budget: the same load with and without --memory-budget 300m")
        with memory.temp_dir() as tmp:
            results["budget"] = budget.run(
                lambda args: Imaged(budget.CONCURRENCY, allocator, args), Path(tmp), progress
            )
    results["meta"]["loadavg_after"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    path = write(results, out_dir, stamp)
    print(report.markdown(results))
    print(f"results: {path} (+ .json)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
