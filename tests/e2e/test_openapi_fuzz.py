"""schemathesis against a live server, driven by that server's own /openapi.json (openapi.md,
"Checked by a fuzzer").

The real `st run` command, against a server with fetch and the pipeline on (local back-end),
every operation, with the checks for server errors, undocumented statuses, content types,
response headers and response schemas. Bodies and `url` values come from
`tests/fuzz_hooks.py`: small real images, damaged real images, arbitrary bytes; arbitrary
URLs or the loopback origin's images. No generated URL can leave the machine: the allow-list
admits only 127.0.0.1 and is checked before any name is resolved (SSRF protection is off
only so that the origin can be reached). The run is bounded by `--max-examples` per
operation and a fixed seed; the HAR report proves that every operation was also answered
its success status (200; 302 for `/`), so the fuzzer got past validation into the image work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fetch_origin import Origin
from tests.fuzz_hooks import ORIGIN_ENV
from tests.serverproc import ROOT, ServerProcess

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
EXAMPLES = os.environ.get("IMAGED_FUZZ_EXAMPLES", "60")
SEED = os.environ.get("IMAGED_FUZZ_SEED", "20261203")
# Keeps `fit=contain` canvases and outputs small; the document's maxima follow it.
DIMENSION_LIMIT = "300"
ST = Path(sys.executable).with_name("st")


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as server:
        yield server


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-out")


@pytest.fixture(scope="module")
def fuzzed(out_dir: Path) -> Iterator[ServerProcess]:
    args = [
        "--enable-fetch",
        "--enable-pipeline",
        "--output-dir",
        str(out_dir),
        "--allowed-hosts",
        r"^127\.0\.0\.1$",
        "--disable-ssrf-protection",
        "--dimension-limit",
        DIMENSION_LIMIT,
        "--concurrency",
        "2",
    ]
    with ServerProcess(args) as proc:
        yield proc


def statuses(har: Path) -> dict[str, Counter[int]]:
    """`METHOD /path` → how often each status was answered."""
    seen: dict[str, Counter[int]] = {}
    for entry in json.loads(har.read_text())["log"]["entries"]:
        request = entry["request"]
        path = request["url"].split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]
        seen.setdefault(f"{request['method']} /{path}", Counter())[entry["response"]["status"]] += 1
    return seen


def test_schemathesis_finds_no_failure(
    fuzzed: ServerProcess, origin: Origin, out_dir: Path, tmp_path: Path
) -> None:
    har = tmp_path / "run.har"
    command = [
        str(ST), "run", f"{fuzzed.url}/openapi.json",
        "--checks", ",".join(CHECKS),
        "--max-examples", EXAMPLES,
        "--seed", SEED,
        "--workers", "2",
        "--request-timeout", "60",
        "--suppress-health-check", "all",
        "--generation-database", "none",
        "--report", "har", "--report-har-path", str(har),
        "--no-color",
    ]  # fmt: skip
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        ORIGIN_ENV: origin.url(""),
    }
    # cwd: schemathesis keeps a `.schemathesis/` cache in its working directory.
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "Internal server error" not in fuzzed.log(), fuzzed.log()

    answered = statuses(har)
    paths = json.loads(fuzzed.client().get("/openapi.json").text)["paths"]
    # Each operation's documented success: 200, or 302 for the `/` redirect (playground.md).
    success = {
        f"{method.upper()} {path}": min(int(s) for s in operation["responses"] if s < "400")
        for path, item in paths.items()
        for method, operation in item.items()
    }
    # schemathesis reads GET /openapi.json itself (it is the schema, not an operation under
    # test), and it also probes undocumented methods: those are http-api.md's 404s.
    success.pop("GET /openapi.json")
    assert set(success) <= set(answered), report
    not_ok = sorted(op for op, status in success.items() if not answered[op][status])
    assert not_ok == [], f"never answered its success status: {not_ok}\n{report}"
    assert any(p.startswith("/img/") for p in origin.paths)  # real fetches happened
    assert any(p.is_file() for p in out_dir.rglob("*"))  # and pipeline outputs were stored
