"""Text and JSON log lines on stdout, in the formats of the spec (config.md, Logging), and
the request id every line written while handling a request carries (observability.md).

The id lives in a context variable, not in parameters: set once when a request starts, it is
seen by every line logged in that request's task and in the tasks it starts (pipeline tasks,
fetches), down to the standard-library bridge, without passing it through every call.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import re
import sys
import threading
import time
import traceback
from typing import Any, TextIO

from imaged.jsonfmt import js_number

LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40, "fatal": 50}

# --- request ids ---------------------------------------------------------------------------

REQUEST_ID_FIELD = "request_id"
REQUEST_ID_HEADER = "X-Request-Id"  # on every response; sent to origins by the fetch client
_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "imaged_request_id", default=None
)
# A client's own id is kept when it is 1–128 of these characters (nothing a log line or a
# header would have to escape).
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


# Ids correlate log lines, they guard nothing: a PRNG seeded from the OS at start-up is random
# enough, and unlike `os.urandom` it does not release the GIL (a request would then wait
# for a worker thread to hand it back before it could go on).
_IDS = random.Random()


def new_request_id() -> str:
    """32 random lowercase hex characters."""
    return f"{_IDS.getrandbits(128):032x}"


def accepted_request_id(incoming: str | None) -> str:
    """The client's id when it is well-formed, else a new one."""
    if incoming is not None and _CLIENT_ID.fullmatch(incoming):
        return incoming
    return new_request_id()


def set_request_id(request_id: str) -> None:
    """The id of the request the current task handles, for every line it logs from now on
    (and every task it starts). A request's task is its own: nothing needs resetting."""
    _REQUEST_ID.set(request_id)


def current_request_id() -> str | None:
    return _REQUEST_ID.get()


def _text_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return js_number(value)
    if isinstance(value, BaseException):
        value = f"{type(value).__name__}: {value}"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    text = str(value)
    # One event per line: a line break inside a value must not start a new "event".
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    if any(c in text for c in ' ="'):
        return '"' + text.replace('"', '\\"') + '"'
    return text


def error_fields(exc: BaseException) -> dict[str, str]:
    """The JSON form of an `err` field: type, message and stack."""
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "stack": "".join(traceback.format_exception(exc)),
    }


def _json_value(value: Any) -> Any:
    return error_fields(value) if isinstance(value, BaseException) else value


class Logger:
    """Writes one line per event; events below `level` are dropped. Thread-safe."""

    def __init__(self, fmt: str = "text", level: str = "info", stream: TextIO | None = None):
        self.fmt = fmt
        self.threshold = LEVELS[level]
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def format(self, level: str, message: str, fields: dict[str, Any]) -> str:
        request_id = _REQUEST_ID.get()
        if request_id is not None and REQUEST_ID_FIELD not in fields:
            fields = {REQUEST_ID_FIELD: request_id, **fields}  # the first field
        if self.fmt == "json":
            record: dict[str, Any] = {"level": level, "time": int(time.time() * 1000)}
            record.update({k: _json_value(v) for k, v in fields.items() if k != "msg"})
            record["msg"] = message
            return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)
        parts = [time.strftime("%Y/%m/%d %H:%M:%S"), level.upper()]
        if message:
            parts.append(message)
        parts += [f"{k}={_text_value(v)}" for k, v in fields.items() if k != "msg"]
        return " ".join(parts)

    def log(self, level: str, message: str, **fields: Any) -> None:
        if not self.enabled(level):
            return
        line = self.format(level, message, fields)
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def debug(self, message: str, **fields: Any) -> None:
        self.log("debug", message, **fields)

    def info(self, message: str, **fields: Any) -> None:
        self.log("info", message, **fields)

    def warn(self, message: str, **fields: Any) -> None:
        self.log("warn", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("error", message, **fields)


def fatal(message: str, **fields: Any) -> None:
    """Configuration errors: always text format, written before the real logger exists."""
    Logger("text", "info").log("fatal", message, **fields)


class _Bridge(logging.Handler):
    """Sends Python `logging` records (aiohttp, asyncio, botocore…) to our logger, so
    that everything the process logs is one format on stdout."""

    def __init__(self, logger: Logger) -> None:
        super().__init__(logging.WARNING)
        self.target = logger

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warn"
        fields: dict[str, Any] = {"logger": record.name}
        if record.exc_info and record.exc_info[1] is not None:
            fields["err"] = record.exc_info[1]
        try:
            message = record.getMessage()
        except Exception:  # a malformed third-party log call must not break logging
            message = str(record.msg)
        self.target.log(level, message, **fields)


# libvips reports every oddity of a broken upload as a warning (through the `pyvips`
# logger): that is per-request noise about client input, not an event of the server.
QUIET_LOGGERS = {"pyvips": logging.CRITICAL}


def bridge_stdlib_logging(logger: Logger) -> None:
    """Route warnings and errors of the standard `logging` module to `logger`."""
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Bridge):
            root.removeHandler(handler)
    root.addHandler(_Bridge(logger))
    root.setLevel(logging.WARNING)
