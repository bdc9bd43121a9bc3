"""Structured logs of the running servicer (issue 11 item 2: ``--log-format json`` writes JSON
lines; reliability: an operator can follow one order or event through the log).

:func:`configure_logging` sets the process's root handler: plain text, or one JSON object per
line with ``timestamp`` (wall time, UTC, ISO 8601), ``level``, ``logger``, ``message``, the
simulated instant ``sim_time`` when the process runs on a scaled clock, and every extra field
the call passed (``logger.info("order dispatched", extra={"order_id": …, "dispatch_id": …})``:
``order_id``, ``event_id``, ``dispatch_id``, ``job`` …), plus ``exception`` with the traceback.
uvicorn's loggers propagate to the same handler, so its lines are JSON too; httpx's line per VTN
request is left out below WARNING (the metrics count those requests).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any, Literal

from drready.domain.clock import ScaledClock, WallClock

__all__ = ["LOG_FORMATS", "JsonLineFormatter", "configure_logging"]

LOG_FORMATS: tuple[str, ...] = ("text", "json")
#: The attributes every ``LogRecord`` has; anything else on a record is an extra field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def __init__(self, clock: WallClock | ScaledClock | None = None) -> None:
        super().__init__()
        self._clock = clock if isinstance(clock, ScaledClock) else None

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self._clock is not None:
            out["sim_time"] = self._clock.now().isoformat(timespec="seconds")
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(
    fmt: Literal["text", "json"] | str = "text",
    level: str = "INFO",
    *,
    clock: WallClock | ScaledClock | None = None,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every log record of the process to ``stream`` (stderr) as text or JSON lines, at
    ``level`` and above; returns the handler installed on the root logger (replacing others)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log level must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLineFormatter(clock))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # one line per VTN request would drown the service's own (the metrics count them)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    return handler
