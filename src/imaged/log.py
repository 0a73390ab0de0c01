"""Text and JSON log lines on stdout, in the formats of the spec (config.md, Logging)."""

from __future__ import annotations

import json
import sys
import time
import traceback
from typing import Any, TextIO

LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40, "fatal": 50}


def _text_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, BaseException):
        value = f"{type(value).__name__}: {value}"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = str(value)
    if any(c in text for c in ' ="'):
        return '"' + text.replace('"', '\\"') + '"'
    return text


def _json_value(value: Any) -> Any:
    if isinstance(value, BaseException):
        return {
            "type": type(value).__name__,
            "message": str(value),
            "stack": "".join(traceback.format_exception(value)),
        }
    return value


class Logger:
    """Writes one line per event; events below `level` are dropped."""

    def __init__(self, fmt: str = "text", level: str = "info", stream: TextIO | None = None):
        self.fmt = fmt
        self.threshold = LEVELS[level]
        self.stream = stream or sys.stdout

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def log(self, level: str, message: str, **fields: Any) -> None:
        if not self.enabled(level):
            return
        if self.fmt == "json":
            record: dict[str, Any] = {"level": level, "time": int(time.time() * 1000)}
            record.update({k: _json_value(v) for k, v in fields.items() if k != "msg"})
            record["msg"] = message
            line = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)
        else:
            parts = [time.strftime("%Y/%m/%d %H:%M:%S"), level.upper()]
            if message:
                parts.append(message)
            parts += [f"{k}={_text_value(v)}" for k, v in fields.items() if k != "msg"]
            line = " ".join(parts)
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
