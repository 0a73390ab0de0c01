"""Log lines exactly as config.md (Logging) describes them: text and JSON formats, value
rendering, levels, errors, the bridge from the standard `logging` module, and the request id
of the log context (observability.md)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from collections.abc import Iterator

import pytest

from imaged.log import (
    Logger,
    accepted_request_id,
    bridge_stdlib_logging,
    fatal,
    new_request_id,
    set_request_id,
)

TIME = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d"


def text_line(message: str, level: str = "info", **fields: object) -> str:
    stream = io.StringIO()
    Logger("text", "debug", stream).log(level, message, **fields)
    line = stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    match = re.fullmatch(f"({TIME}) (.*)\n", line)
    assert match, line
    return match.group(2)


def json_line(message: str, level: str = "info", **fields: object) -> dict[str, object]:
    stream = io.StringIO()
    Logger("json", "debug", stream).log(level, message, **fields)
    line = stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    parsed = json.loads(line)
    assert isinstance(parsed, dict)
    assert line == json.dumps(parsed, separators=(",", ":"), ensure_ascii=False) + "\n"
    return parsed


def test_text_time_is_local_time_now() -> None:
    stream = io.StringIO()
    before = time.strftime("%Y/%m/%d %H:%M")
    Logger("text", "info", stream).info("x")
    after = time.strftime("%Y/%m/%d %H:%M")
    assert stream.getvalue()[:16] in (before, after)


def test_text_rendering() -> None:
    assert text_line("imaged", version="0.2.3") == "INFO imaged version=0.2.3"
    assert text_line("runtime", version="Python 3.12.3") == 'INFO runtime version="Python 3.12.3"'
    assert (
        text_line("decoders", value=["avif", "gif", "jpeg"])
        == 'INFO decoders value=["avif","gif","jpeg"]'
    )
    assert text_line("x", obj={"a": 1, "b": [True]}) == 'INFO x obj={"a":1,"b":[true]}'
    assert text_line("x", a=None, b=True, c=False, d=7, e=2.5, f=3.0) == (
        "INFO x a=null b=true c=false d=7 e=2.5 f=3"
    )
    assert text_line("x", v="a=b") == 'INFO x v="a=b"'
    assert text_line("x", v='say "hi"') == 'INFO x v="say \\"hi\\""'
    assert text_line("x", v='a"b') == 'INFO x v="a\\"b"'
    assert text_line("x", v="") == "INFO x v="
    assert text_line("x", v="é€") == "INFO x v=é€"
    assert text_line("x", msg="skipped", k=1) == "INFO x k=1"
    assert text_line("", k=1) == "INFO k=1"  # no message
    assert text_line("Shutting down", signal="SIGTERM") == "INFO Shutting down signal=SIGTERM"
    assert text_line("y", "warn") == "WARN y"
    assert text_line("y", "debug") == "DEBUG y"
    assert text_line("y", "fatal", value="abc") == "FATAL y value=abc"


def test_text_line_breaks_cannot_forge_lines() -> None:
    assert text_line("x", v="a\nb") == "INFO x v=a\\nb"
    assert text_line("x", v="a\r\n2025/01/01 00:00:00 INFO forged") == (
        'INFO x v="a\\r\\n2025/01/01 00:00:00 INFO forged"'
    )


def test_text_error_field() -> None:
    assert text_line("Error shutting down", "error", err=ValueError("bad thing")) == (
        'ERROR Error shutting down err="ValueError: bad thing"'
    )


def test_json_format() -> None:
    before = int(time.time() * 1000)
    record = json_line("server listening", tls=False, mtls=False, url="http://127.0.0.1:8000")
    after = int(time.time() * 1000)
    assert list(record) == ["level", "time", "tls", "mtls", "url", "msg"]
    assert record["level"] == "info" and record["msg"] == "server listening"
    assert isinstance(record["time"], int) and before <= record["time"] <= after
    assert record["tls"] is False and record["url"] == "http://127.0.0.1:8000"
    assert "pid" not in record and "hostname" not in record
    decoders = json_line("decoders", value=["gif", "png"])
    assert decoders["value"] == ["gif", "png"]
    assert list(json_line("x", msg="ignored", a=1)) == ["level", "time", "a", "msg"]
    assert json_line("x", msg="ignored")["msg"] == "x"
    assert json_line("é", v="€")["v"] == "€"


def test_json_raw_utf8() -> None:
    stream = io.StringIO()
    Logger("json", "info", stream).info("é", v="€")
    assert "€" in stream.getvalue() and "\\u" not in stream.getvalue()


def test_json_error_has_type_message_and_stack() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        record = json_line("internal error", "error", requestId="r1", err=exc)
    err = record["err"]
    assert isinstance(err, dict)
    assert list(err) == ["type", "message", "stack"]
    assert err["type"] == "RuntimeError" and err["message"] == "boom"
    assert "Traceback" in err["stack"] and "raise RuntimeError" in err["stack"]
    assert record["level"] == "error" and record["requestId"] == "r1"


@pytest.mark.parametrize(
    ("threshold", "shown"),
    [
        ("debug", ["debug", "info", "warn", "error", "fatal"]),
        ("info", ["info", "warn", "error", "fatal"]),
        ("warn", ["warn", "error", "fatal"]),
        ("error", ["error", "fatal"]),
    ],
)
def test_levels(threshold: str, shown: list[str]) -> None:
    stream = io.StringIO()
    logger = Logger("json", threshold, stream)
    logger.debug("d")
    logger.info("i")
    logger.warn("w")
    logger.error("e")
    logger.log("fatal", "f")
    levels = [json.loads(line)["level"] for line in stream.getvalue().splitlines()]
    assert levels == shown


def test_fatal_is_text_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    fatal("Invalid port", value="abc")
    out = capsys.readouterr().out
    assert re.fullmatch(f"{TIME} FATAL Invalid port value=abc\n", out)


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    pyvips_level = logging.getLogger("pyvips").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("pyvips").setLevel(pyvips_level)


@pytest.mark.usefixtures("restore_root_logger")
def test_stdlib_logging_bridge() -> None:
    stream = io.StringIO()
    bridge_stdlib_logging(Logger("json", "info", stream))
    logging.getLogger("aiohttp.server").info("not shown (below warning)")
    try:
        raise OSError("socket gone")
    except OSError:
        logging.getLogger("asyncio").exception("Task exception %s", "was never retrieved")
    logging.getLogger("botocore").warning("careful")
    logging.getLogger("pyvips").warning("VIPS: error in tile 0 x 0")  # per-request noise
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["level"] for r in records] == ["error", "warn"]
    assert records[0]["msg"] == "Task exception was never retrieved"
    assert records[0]["logger"] == "asyncio" and records[0]["err"]["type"] == "OSError"
    assert records[1] == {**records[1], "logger": "botocore", "msg": "careful"}
    bridge_stdlib_logging(Logger("json", "info", io.StringIO()))  # replaces, not stacks
    assert sum(type(h).__name__ == "_Bridge" for h in logging.getLogger().handlers) == 1


# --- request ids (observability.md) ---------------------------------------------------------


def test_accepted_request_ids() -> None:
    for kept in ("a", "abc-123", "A.b_c:d-e", "x" * 128, "0123456789abcdef" * 2):
        assert accepted_request_id(kept) == kept
    for refused in (None, "", "x" * 129, "a b", "a/b", "é", "a\nb", "a=b", '"a"', "a,b"):
        new = accepted_request_id(refused)
        assert re.fullmatch("[0-9a-f]{32}", new), (refused, new)
    assert new_request_id() != new_request_id()


def _lines_of(fmt: str, request_id: str | None) -> list[str]:
    """What a task with `request_id` in its log context writes."""
    stream = io.StringIO()
    logger = Logger(fmt, "debug", stream)

    async def handle() -> None:
        if request_id is not None:
            set_request_id(request_id)
        logger.info("first", k=1)
        await asyncio.sleep(0)
        await asyncio.create_task(asyncio.to_thread(logger.warn, "in a thread of a subtask"))
        logger.error("explicit", request_id="given", k=2)

    async def main() -> None:
        await asyncio.create_task(handle())
        logger.info("outside")  # the request's task set nothing here

    asyncio.run(main())
    return stream.getvalue().splitlines()


def test_every_line_of_a_request_carries_its_id_as_the_first_field() -> None:
    text = [line.split(" ", 2)[2] for line in _lines_of("text", "req-1")]
    assert text == [
        "INFO first request_id=req-1 k=1",
        "WARN in a thread of a subtask request_id=req-1",
        "ERROR explicit request_id=given k=2",  # an explicit field is not doubled
        "INFO outside",
    ]
    records = [json.loads(line) for line in _lines_of("json", "req-2")]
    assert [list(r) for r in records] == [
        ["level", "time", "request_id", "k", "msg"],
        ["level", "time", "request_id", "msg"],
        ["level", "time", "request_id", "k", "msg"],
        ["level", "time", "msg"],
    ]
    assert [r.get("request_id") for r in records] == ["req-2", "req-2", "given", None]
    without = [line for line in _lines_of("text", None) if "explicit" not in line]
    assert len(without) == 3 and all(" request_id=" not in line for line in without)


def test_concurrent_requests_keep_their_own_ids() -> None:
    stream = io.StringIO()
    logger = Logger("json", "info", stream)

    async def request(request_id: str, turns: int) -> None:
        set_request_id(request_id)
        for turn in range(turns):
            logger.info("step", turn=turn)
            await asyncio.sleep(0)  # let the other request run in between

    async def main() -> None:
        await asyncio.gather(request("a", 3), request("b", 3))

    asyncio.run(main())
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["request_id"] for r in records] == ["a", "b", "a", "b", "a", "b"]
