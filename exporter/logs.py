"""One line per event, as logfmt or JSON, with structured fields passed via `extra`."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from typing import Any

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z",
        "level": _NAMES.get(record.levelno, "error"),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    extra = getattr(record, "fields", None)
    if isinstance(extra, dict):
        fields.update(extra)
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        fields["error"] = f"{type(error).__name__}: {error}"
    return fields


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text and not any(c in text for c in ' ="\\\n\t'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class LogfmtFormatter(logging.Formatter):
    """key=value pairs, quoted where needed, as Prometheus's own Go programs log."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log pipelines that parse JSON."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str)


def setup(level: str, fmt: str) -> None:
    """Send every logger's records to stderr in the chosen format at the chosen level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    for noisy in ("aiohttp.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Throttled:
    """A recurring event logged at most once per `interval` seconds, with how often it happened.

    Under attack an event can repeat thousands of times a second; one line every few
    seconds says as much without flooding the log or the disk.
    """

    def __init__(self, logger: logging.Logger, message: str, interval: float = 10.0) -> None:
        self._logger = logger
        self._message = message
        self._interval = interval
        self._count = 0
        self._last = -math.inf

    def note(self, level: int, fields: dict[str, Any]) -> None:
        """Count one occurrence; log it, with the count since the last line, if due."""
        self._count += 1
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._logger.log(
                level, self._message, extra={"fields": {**fields, "occurrences": self._count}}
            )
            self._count = 0
            self._last = now
