"""Results → Markdown tables (and the summary the issue's targets are read from)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PEER_ORDER = ("imaged", "pyvips", "pyvips-decode", "thumbor")


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
            p: {"bytes": r["out_bytes"], "width": r["width"], "height": r["height"]}
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


def summary_table(entries: list[dict[str, Any]]) -> str:
    rows: list[list[str]] = []
    for e in entries:
        cpu = e["cpu_ms"]
        ratio = e["ratio"]
        verdict = "–" if e["met"] is None else ("yes" if e["met"] else "**no**")
        out = e["output"]
        dims = " / ".join(
            f"{p}: {_dims(o)} {o['bytes'] or '–'} B" for p, o in out.items() if p in out
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
            _dims(r),
        ]
        for r in matrix
    ]
    header = ["workload", "peer", "conc", "req/s", "p50 ms", "p99 ms", "errors"]
    header += ["CPU ms/req", "peak RSS MB", "out bytes", "dims"]
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
    if results.get("matrix"):
        parts += ["", "## All measurements", "", matrix_table(results["matrix"])]
    if results.get("memory"):
        parts += ["", "## Memory (MB) by allocator", "", memory_table(results["memory"])]
    if results.get("scaling"):
        key = results.get("scaling_workload", "W1")
        parts += ["", f"## Throughput against --concurrency ({key})", ""]
        parts += [scaling_table(results["scaling"])]
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
    if results.get("notes"):
        parts += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    return "\n".join(parts) + "\n"
