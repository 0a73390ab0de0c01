"""Results → Markdown tables (and the summary the issue's targets are read from)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PEER_ORDER = ("imaged", "imaged-libvips", "pyvips", "pyvips-decode", "thumbor")
# Issue 13's bars: CPU per request against imaged's own libvips decode (the A/B) and thumbor.
AB_MAX_RATIO = 0.88  # W1, W2, W6: at least 12 % below the libvips decode
AB_WORKLOADS = ("W1", "W2", "W6")
THUMBOR_MAX_RATIO = {"W2": 1.05}
W5_MIN_SAVING_MS = 20.0


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _dims(row: dict[str, Any]) -> str:
    if row.get("width") is None:
        return "–"
    return f"{row['width']}×{row['height']}"


def table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "--:" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def cpu_per_request(rows: list[dict[str, Any]]) -> float | None:
    """Total CPU over total requests across the concurrency levels of one peer."""
    done = sum(int(r["requests"]) for r in rows if r["cpu_ms"] is not None)
    if not done:
        return None
    total = sum(float(r["cpu_ms"]) * int(r["requests"]) for r in rows if r["cpu_ms"] is not None)
    return total / done


def summary(matrix: list[dict[str, Any]], workloads: list[str]) -> list[dict[str, Any]]:
    """Per workload: CPU ms/request of each peer, the best peer and imaged's ratio to it.

    Thumbor does not count on W7; on W5 the reference is one plain full decode (target 1.5×).
    """
    out: list[dict[str, Any]] = []
    for key in workloads:
        rows = [r for r in matrix if r["workload"] == key]
        cpu = {p: cpu_per_request([r for r in rows if r["peer"] == p]) for p in PEER_ORDER}
        first = {p: next((r for r in rows if r["peer"] == p), None) for p in PEER_ORDER}
        entry: dict[str, Any] = {"workload": key, "cpu_ms": cpu}
        entry["output"] = {
            p: {
                "bytes": r["out_bytes"],
                "width": r["width"],
                "height": r["height"],
                "ssimulacra2": r.get("ssimulacra2"),
            }
            for p, r in first.items()
            if r is not None
        }
        if key == "W5":
            base, limit = cpu.get("pyvips-decode"), 1.5
            entry["reference"] = "pyvips-decode"
        else:
            peers = [p for p in ("pyvips", "thumbor") if cpu.get(p) is not None]
            if key == "W7":
                peers = [p for p in peers if p != "thumbor"]
            best = min(peers, key=lambda p: cpu[p] or 0.0) if peers else None
            base, limit = (cpu[best] if best else None), 1.0
            entry["reference"] = best
        entry["limit"] = limit
        imaged = cpu.get("imaged")
        entry["ratio"] = imaged / base if imaged is not None and base else None
        entry["met"] = None if entry["ratio"] is None else entry["ratio"] <= limit
        out.append(entry)
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ab_summary(matrix: list[dict[str, Any]], workloads: list[str]) -> list[dict[str, Any]]:
    """Per workload: imaged against its forced libvips decode and against thumbor, CPU and
    quality side by side, with the bars of issue 13 (None where a bar does not apply)."""
    out: list[dict[str, Any]] = []
    for key in workloads:
        rows = [r for r in matrix if r["workload"] == key]
        peers = ("imaged", "imaged-libvips", "thumbor", "pyvips")
        cpu = {p: cpu_per_request([r for r in rows if r["peer"] == p]) for p in peers}
        first = {p: next((r for r in rows if r["peer"] == p), None) for p in peers}
        entry: dict[str, Any] = {"workload": key, "cpu_ms": cpu}
        entry["bytes"] = {p: r["out_bytes"] for p, r in first.items() if r}
        entry["ssimulacra2"] = {p: r.get("ssimulacra2") for p, r in first.items() if r}
        entry["ratio_libvips"] = _ratio(cpu["imaged"], cpu["imaged-libvips"])
        entry["ratio_thumbor"] = _ratio(cpu["imaged"], cpu["thumbor"]) if key != "W7" else None
        bars: dict[str, bool | None] = {}
        if key in AB_WORKLOADS and entry["ratio_libvips"] is not None:
            bars[f"≤ {AB_MAX_RATIO} × libvips decode"] = entry["ratio_libvips"] <= AB_MAX_RATIO
        if key in THUMBOR_MAX_RATIO and entry["ratio_thumbor"] is not None:
            limit = THUMBOR_MAX_RATIO[key]
            bars[f"≤ {limit} × thumbor"] = entry["ratio_thumbor"] <= limit
        if key == "W5" and cpu["imaged"] is not None and cpu["imaged-libvips"] is not None:
            saving = cpu["imaged-libvips"] - cpu["imaged"]
            bars[f"≥ {W5_MIN_SAVING_MS:g} ms below libvips decode"] = saving >= W5_MIN_SAVING_MS
        quality = entry["ssimulacra2"]
        if key != "W7" and quality.get("imaged") is not None and quality.get("thumbor"):
            bars["SSIMULACRA2 ≥ thumbor"] = quality["imaged"] >= quality["thumbor"]
        entry["bars"] = bars
        out.append(entry)
    return out


def ab_table(entries: list[dict[str, Any]]) -> str:
    rows: list[list[str]] = []
    for e in entries:
        cpu, size, score = e["cpu_ms"], e["bytes"], e["ssimulacra2"]
        bars = "; ".join(f"{k}: {'yes' if v else '**no**'}" for k, v in e["bars"].items())
        rows.append(
            [
                e["workload"],
                _num(cpu["imaged"]),
                _num(cpu["imaged-libvips"]),
                _num(e["ratio_libvips"], 2),
                _num(cpu["thumbor"]),
                _num(e["ratio_thumbor"], 2),
                " / ".join(_num(score.get(p)) for p in ("imaged", "thumbor", "pyvips")),
                " / ".join(str(size.get(p) or "–") for p in ("imaged", "thumbor", "pyvips")),
                bars or "–",
            ]
        )
    header = ["workload", "imaged", "imaged, libvips decode", "ratio", "thumbor", "ratio"]
    header += ["SSIMULACRA2 imaged / thumbor / pyvips", "bytes imaged / thumbor / pyvips", "bars"]
    return table(header, rows)


def summary_table(entries: list[dict[str, Any]]) -> str:
    rows: list[list[str]] = []
    for e in entries:
        cpu = e["cpu_ms"]
        ratio = e["ratio"]
        verdict = "–" if e["met"] is None else ("yes" if e["met"] else "**no**")
        out = e["output"]
        dims = " / ".join(
            f"{p}: {_dims(o)} {o['bytes'] or '–'} B"
            + (f" q {o['ssimulacra2']:.1f}" if o.get("ssimulacra2") is not None else "")
            for p, o in out.items()
        )
        rows.append(
            [
                e["workload"],
                _num(cpu.get("imaged")),
                _num(cpu.get("pyvips")),
                _num(cpu.get("pyvips-decode")) if e["workload"] == "W5" else "–",
                _num(cpu.get("thumbor")),
                f"{e['reference'] or '–'} × {e['limit']}",
                _num(ratio, 2),
                verdict,
                dims,
            ]
        )
    header = [
        "workload",
        "imaged",
        "pyvips",
        "pyvips decode",
        "thumbor",
        "target",
        "ratio",
        "met",
        "output (dims, bytes)",
    ]
    return table(header, rows)


def matrix_table(matrix: list[dict[str, Any]]) -> str:
    rows = [
        [
            r["workload"],
            r["peer"],
            str(r["concurrency"]),
            _num(r["rps"]),
            _num(r["p50_ms"]),
            _num(r["p99_ms"]),
            str(r["errors"]),
            _num(r["cpu_ms"]),
            _num(r["peak_rss_mb"], 0),
            "–" if r["out_bytes"] is None else str(r["out_bytes"]),
            _num(r.get("ssimulacra2")),
            _dims(r),
        ]
        for r in matrix
    ]
    header = ["workload", "peer", "conc", "req/s", "p50 ms", "p99 ms", "errors"]
    header += ["CPU ms/req", "peak RSS MB", "out bytes", "SSIMULACRA2", "dims"]
    return table(header, rows)


def memory_table(memory: dict[str, dict[str, Any]]) -> str:
    rows: list[list[str]] = []
    for allocator, m in memory.items():
        soak, drift, big = m.get("soak") or {}, m.get("drift") or {}, m.get("big") or {}
        small, large = big.get("12mp") or {}, big.get("48mp") or {}
        rows.append(
            [
                allocator,
                _num(soak.get("idle_rss_mb"), 0),
                _num(soak.get("peak_rss_mb"), 0),
                _num(soak.get("rps")),
                _num(soak.get("cpu_ms")),
                f"{_num(drift.get('rss_first_mb'), 0)} → {_num(drift.get('rss_total_mb'), 0)}",
                _num(drift.get("ratio"), 2),
                f"{_num(small.get('peak_rss_mb'), 0)} / {_num(large.get('peak_rss_mb'), 0)}",
                _num(big.get("ratio"), 2),
                _num(big.get("ratio_above_idle"), 2),
            ]
        )
    header = [
        "allocator",
        "idle RSS",
        "W1 c8 peak RSS",
        "req/s",
        "CPU ms/req",
        "drift RSS (first → all)",
        "drift ratio",
        "12 MP / 48 MP peak",
        "48/12",
        "48/12 above idle",
    ]
    return table(header, rows)


def scaling_table(rows: list[dict[str, Any]]) -> str:
    return table(
        ["--concurrency", "connections", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "cores busy"],
        (
            [
                str(r["server_concurrency"]),
                str(r["connections"]),
                _num(r["rps"]),
                _num(r["p50_ms"]),
                _num(r["p99_ms"]),
                _num(r["cpu_ms"]),
                _num(r["cpu_util"], 2),
            ]
            for r in rows
        ),
    )


def _bound(row: dict[str, Any]) -> str:
    """Peak above idle, with the verdict where the row has a bound (M1)."""
    text = _num(row["above_idle_mb"], 0)
    if "met" in row:
        text += f" (≤ {row['bound_mb']}: {'yes' if row['met'] else '**no**'})"
    return text


def animation_table(rows: list[dict[str, Any]]) -> str:
    header = ["case", "operation", "requests", "CPU ms/req", "p50 ms", "idle RSS MB"]
    header += ["peak RSS MB", "above idle MB", "frames", "output"]
    return table(
        header,
        (
            [
                r["key"],
                r["title"],
                str(r["requests"]),
                _num(r["cpu_ms"]),
                _num(r["p50_ms"]),
                _num(r["idle_rss_mb"], 0),
                _num(r["peak_rss_mb"], 0),
                _bound(r),
                str(r["frames"]),
                f"{_dims(r)} {r['out_bytes']} B",
            ]
            for r in rows
        ),
    )


def overhead_table(section: dict[str, Any]) -> str:
    return table(
        ["case", "CPU ms/req without", "with --metrics-listen", "recording", "median round",
         "control pair", "scrape ms", "total (scrape / 15 s)", "requests", "target < 2 %"],
        (
            [
                f"{c['case']}: {c['title']}",
                _num(c["cpu_ms_without"], 3),
                _num(c["cpu_ms_with"], 3),
                f"{c['recording_difference'] * 100:+.2f} %",
                f"{c['median_round_difference'] * 100:+.2f} %",
                "–" if c.get("control_difference") is None
                else f"{c['control_difference'] * 100:+.2f} %",
                _num(c["scrape_cpu_ms"], 2),
                f"{c['difference'] * 100:+.2f} %",
                f"{c['requests_without']} / {c['requests_with']}",
                "yes" if c["met"] else "**no**",
            ]
            for c in section["cases"]
        ),
    )  # fmt: skip


def caching_table(rows: list[dict[str, Any]]) -> str:
    return table(
        ["variant", "conc", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "origin/req", "err"],
        (
            [
                r["variant"],
                str(r["concurrency"]),
                _num(r["rps"]),
                _num(r["p50_ms"]),
                _num(r["p99_ms"]),
                _num(r["cpu_ms"], 2),
                _num(r["origin_per_request"], 3),
                str(r["errors"]),
            ]
            for r in rows
        ),
    )


def decodeonce_table(row: dict[str, Any]) -> str:
    widths = "/".join(str(w) for w in row["widths"])
    return table(
        ["source", "tasks", "runs", "pipeline CPU ms", "4 × transform CPU ms", "ratio",
         "bar", "pipeline wall ms", "4 × transform wall ms"],
        [[
            row["source"],
            f"webp {widths}",
            str(row["runs"]),
            _num(row["pipeline_cpu_ms"]),
            _num(row["transforms_cpu_ms"]),
            _num(row["ratio"], 2),
            f"≤ {row['bar']}: {'yes' if row['met'] else '**no**'}",
            _num(row["pipeline_wall_ms"]),
            _num(row["transforms_wall_ms"]),
        ]],
    )  # fmt: skip


def batch_table(rows: list[dict[str, Any]]) -> str:
    return table(
        ["variant", "sources", "wall s", "images/s", "CPU s/source", "busy cores", "of"],
        (
            [
                r["variant"],
                str(r["sources"]),
                _num(r["wall_s"]),
                _num(r["images_per_s"], 2),
                _num(r["cpu_s_per_source"], 3),
                _num(r["busy_cores"], 2),
                str(r["cores"]),
            ]
            for r in rows
        ),
    )


def budget_table(rows: list[dict[str, Any]]) -> str:
    return table(
        ["--memory-budget", "idle RSS MB", "peak RSS MB", "above idle MB", "seconds", "statuses"],
        (
            [
                r["budget"],
                _num(r["idle_rss_mb"]),
                _num(r["peak_rss_mb"]),
                _num(r["above_idle_mb"]),
                _num(r["seconds"], 2),
                ", ".join(f"{k}×{v}" for k, v in r["statuses"].items()),
            ]
            for r in rows
        ),
    )


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    parts = [
        f"# imaged benchmark — {meta['started']}",
        "",
        f"- machine: {meta['cpus']} logical CPUs, load average before/after "
        f"{meta['loadavg_before']} / {meta.get('loadavg_after', '?')} "
        "(a shared machine: compare ratios within one run, not absolute numbers)",
        f"- imaged: --concurrency {meta['server_concurrency']}, allocator "
        f"{meta['allocator']}, libvips {meta['vips']}; load generator: {meta['loadgen']}; "
        f"{meta['duration']} s per level × {meta.get('rounds', 1)} rounds "
        "(peers in rotating order)",
        f"- thumbor: {meta.get('thumbor') or 'not run'}",
    ]
    if results.get("summary"):
        parts += ["", "## CPU per request (ms) against the peers", ""]
        parts += [summary_table(results["summary"])]
    if results.get("ab"):
        parts += ["", "## JPEG decode A/B and quality (CPU ms per request)", ""]
        parts += [ab_table(results["ab"])]
    if results.get("matrix"):
        parts += ["", "## All measurements", "", matrix_table(results["matrix"])]
    if results.get("memory"):
        parts += ["", "## Memory (MB) by allocator", "", memory_table(results["memory"])]
    if results.get("scaling"):
        key = results.get("scaling_workload", "W1")
        parts += ["", f"## Throughput against --concurrency ({key})", ""]
        parts += [scaling_table(results["scaling"])]
    if results.get("animation"):
        parts += ["", "## Animations (`animated=true`, one request at a time)", ""]
        parts += [animation_table(results["animation"])]
    if results.get("metrics_overhead"):
        section = results["metrics_overhead"]
        parts += ["", "## Cost of metrics: CPU per request with and without --metrics-listen", ""]
        parts += [
            f"Both servers under the same load at the same time, {section['rounds']} rounds "
            f"(a fresh pair each) of {section['duration']} s at {section['connections']} "
            "connections each; "
            f"a scrape's CPU is charged at one scrape per {section['scrape_interval']:g} s. "
            f"Recording one request in-process: {section['recording_us']:.1f} µs.",
            "",
            overhead_table(section),
        ]

    if results.get("caching"):
        parts += ["", "## Caching: a hot URL and 304s (W2 fetched from a loopback origin)", ""]
        parts += [caching_table(results["caching"])]
    if results.get("decodeonce"):
        parts += ["", "## Decode once: one PUT /pipeline against the same four PUT /transform", ""]
        parts += [
            "Server CPU (medians over the runs, one request at a time).",
            "",
            decodeonce_table(results["decodeonce"]),
        ]
    if results.get("batch"):
        parts += ["", "## Batch: `imaged batch` against a loop of PUT /pipeline", ""]
        parts += [
            "Four WebP outputs (1600, 800, 400, 200 px wide) per corpus-derived JPEG; wall "
            "time from start to exit (worker and Ray start-up included); CPU of the whole "
            "process tree (the server process for the loop).",
            "",
            batch_table(results["batch"]),
        ]
    if results.get("budget"):
        parts += ["", "## Memory budget: 16 × 48 MP → 400 px + 16 × 12 MP PNG → TIFF at once", ""]
        parts += ["`--concurrency 8`; peak RSS is VmHWM of the server process.", ""]
        parts += [budget_table(results["budget"])]
    if results.get("notes"):
        parts += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    return "\n".join(parts) + "\n"
