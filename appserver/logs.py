"""Logging: stdlib `logging` to stderr; `LOG_FORMAT=json` switches to JSON lines.

stdout is never used: in stdio mode it belongs to the protocol.
"""

from __future__ import annotations

import enum
import logging
import os
import sys
import time
from typing import Any

LOG_FORMAT_ENV = "LOG_FORMAT"
LOG_LEVEL_ENV = "APPSERVER_LOG"


class LogFormat(enum.Enum):
    DEFAULT = "default"
    JSON = "json"


def log_format_from_env_value(value: str | None) -> LogFormat:
    """Codex's rule: `json`, case-insensitive and trimmed; anything else is the default."""
    if value is not None and value.strip().lower() == "json":
        return LogFormat.JSON
    return LogFormat.DEFAULT


_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    converter = time.gmtime  # type: ignore[assignment]  # the timestamp ends in Z: UTC

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "target": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        import orjson  # only for LOG_FORMAT=json: `attach` starts without it

        return orjson.dumps(out, default=str).decode()


def configure_logging(level: str | None = None, fmt: LogFormat | None = None) -> None:
    fmt = fmt or log_format_from_env_value(os.environ.get(LOG_FORMAT_ENV))
    level = (level or os.environ.get(LOG_LEVEL_ENV) or "INFO").strip().upper()
    handler = logging.StreamHandler(sys.stderr)
    if fmt is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if level in logging.getLevelNamesMapping() else "INFO")
