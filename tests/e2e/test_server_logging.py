"""Log output of the real server (config.md, Logging): the startup lines in order, text and
JSON formats, levels, the debug `request` line, and the libvips set-up of performance.md
(operation cache off; libvips threads 1 unless VIPS_CONCURRENCY is set)."""

from __future__ import annotations

import json
import platform
import re
import signal
from pathlib import Path

import httpx
import pyvips
from tests.serverkit import LINE_TIME, Proc, free_port
from tests.waiting import wait_until

VIPS = f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"


def start(*args: str, env: dict[str, str] | None = None) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc(["-H", "127.0.0.1", "-p", str(port), *args], env)
    return proc, f"http://127.0.0.1:{port}"


def test_startup_lines_text() -> None:
    proc, url = start("-c", "2")
    with proc, httpx.Client(base_url=url) as client:
        codecs = client.get("/healthz").json()
        client.put("/metadata", content=b"junk")  # errors are not logged
        client.get("/nope")
    lines = proc.lines()
    decoders = json.dumps(codecs["decoders"], separators=(",", ":"))
    encoders = json.dumps(codecs["encoders"], separators=(",", ":"))
    expected = [
        "INFO imaged version=0.2.3",
        f'INFO runtime version="Python {platform.python_version()}"',
        f"INFO pyvips version={pyvips.__version__}",
        f"INFO vips version={VIPS}",
        "INFO concurrency value=2 source=flag",
        "INFO memory budget value=0 source=none",
        f"INFO decoders value={decoders}",
        f"INFO encoders value={encoders}",
        f"INFO server listening tls=false mtls=false url={url}",
        "INFO Shutting down signal=SIGTERM",
    ]
    assert len(lines) == len(expected), lines
    for line, tail in zip(lines, expected, strict=True):
        assert re.fullmatch(f"{LINE_TIME} {re.escape(tail)}", line), (line, tail)


def test_startup_lines_json_with_pipeline(tmp_path: Path) -> None:
    proc, url = start(
        "--log-format", "json", "-P", "--output-dir", str(tmp_path), "--max-pipeline-tasks", "7"
    )
    with proc:
        pass
    records = [json.loads(line) for line in proc.lines()]  # every line is one JSON object
    assert [r["msg"] for r in records] == [
        "imaged",
        "runtime",
        "pyvips",
        "vips",
        "concurrency",
        "memory budget",
        "decoders",
        "encoders",
        "pipeline enabled",
        "server listening",
        "Shutting down",
    ]
    assert all(r["level"] == "info" and isinstance(r["time"], int) for r in records)
    assert all(list(r)[:2] == ["level", "time"] and list(r)[-1] == "msg" for r in records)
    assert records[0]["version"] == "0.2.3"
    assert records[3]["version"] == VIPS
    assert records[5]["value"] == 0 and records[5]["source"] == "none"  # memory budget
    assert records[8]["maxTasks"] == 7
    listening = records[9]
    assert list(listening) == ["level", "time", "tls", "mtls", "url", "msg"]
    assert (listening["tls"], listening["mtls"], listening["url"]) == (False, False, url)
    assert records[10]["signal"] == "SIGTERM"


def test_debug_request_lines_and_libvips_setup() -> None:
    proc, url = start("--log-level", "debug", "--body-limit", "100")
    with proc, httpx.Client(base_url=url) as client:
        client.get("/healthz?a=1&b=%20x")
        client.head("/healthz")
        client.put("/transform?width=5", content=b"x" * 101)
        client.delete("/metadata")
        proc.wait_log("method=DELETE")
        lines = proc.lines()
    requests = [line for line in lines if " DEBUG request " in line]
    # Like every line of a request it starts with the request id (observability.md).
    pattern = f"{LINE_TIME} DEBUG request request_id=[0-9a-f]{{32}} (.*) duration=\\d+"
    parsed = [re.fullmatch(pattern, r) for r in requests]
    assert all(parsed), requests
    assert [m.group(1) for m in parsed if m] == [
        'method=GET path="/healthz?a=1&b=%20x" status=200',  # quoted: it contains "="
        "method=HEAD path=/healthz status=200",
        'method=PUT path="/transform?width=5" status=413',
        "method=DELETE path=/metadata status=404",
    ]
    libvips = [line for line in lines if " DEBUG libvips " in line]
    assert len(libvips) == 1
    assert libvips[0].endswith(
        "DEBUG libvips cacheMax=0 cacheMaxMem=0 cacheMaxFiles=0 concurrency=1 untrustedBlocked=true"
    )


def test_vips_concurrency_env_is_left_to_libvips() -> None:
    proc, _ = start(env={"LOG_LEVEL": "debug", "LOG_FORMAT": "json", "VIPS_CONCURRENCY": "3"})
    with proc:
        records = [json.loads(line) for line in proc.lines()]
    setup = next(r for r in records if r["msg"] == "libvips")
    assert setup == {
        "level": "debug",
        "time": setup["time"],
        "cacheMax": 0,
        "cacheMaxMem": 0,
        "cacheMaxFiles": 0,
        "concurrency": 3,
        "untrustedBlocked": True,
        "msg": "libvips",
    }


def test_warn_level_hides_info_and_debug() -> None:
    port = free_port()
    with Proc(["-H", "127.0.0.1", "-p", str(port)], {"LOG_LEVEL": "warn"}, wait=False) as proc:

        def answered() -> bool:  # no "server listening" line to wait for
            assert proc.proc.poll() is None, proc.log()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answered, "an answer from /healthz")
    assert proc.log() == ""


def test_a_native_crash_leaves_the_python_stacks_in_the_log() -> None:
    """faulthandler: a segfault inside libvips would otherwise die without a word."""
    proc, _ = start()
    with proc:
        proc.send(signal.SIGSEGV)
        assert proc.wait() == -signal.SIGSEGV
        log = proc.log()
    assert "Fatal Python error: Segmentation fault" in log
    assert "Thread" in log and "File " in log
