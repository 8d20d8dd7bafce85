"""Structured logging for every Branchline process: one JSON object per line on stderr.

``log_event(logger, "event_name", key=value, ...)`` attaches fields; the ``RedactingFilter``
runs on every record (message, fields and exception text) so nothing a handler writes can
carry a full PAN, track data or a PIN block.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

from branchline.common.redaction import redact_fields, redact_text

_FIELDS = "branchline_fields"


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        fields = getattr(record, _FIELDS, None)
        if fields:
            setattr(record, _FIELDS, redact_fields(fields))
        if record.exc_info:
            text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = redact_text(text)
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(getattr(record, _FIELDS, None) or {})
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, default=str, ensure_ascii=False)


def setup_logging(process: str, level: str = "info") -> None:
    """Configure the root logger once per process: JSON lines on stderr, redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("branchline").info(
        "process starting", extra={_FIELDS: {"event": "process_start", "process": process}}
    )


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, event, extra={_FIELDS: {"event": event, **fields}})
