"""Logs: one JSON object a line (structlog), for the app and for the libraries under it.

What may be in a log line is decided here, once: events the code names, with ids, routes,
statuses and durations. Never a child's name, a note, media or a submitted value. Exception
messages can carry submitted values (a validation error quotes its input, a database error
its bound parameters), so a logged exception keeps its type and where it was raised, and
loses its message; SQLAlchemy is also told never to put parameters in its errors
(core/db.py).
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType
from typing import Any

import structlog

_configured: str | None = None

# Libraries whose own lines would repeat ours (uvicorn's access log) or could carry values
# (SQLAlchemy's echo; HTTP clients log whole URLs with their query strings). Their
# warnings still come through.
_QUIET = {"uvicorn.access": logging.WARNING, "sqlalchemy.engine": logging.WARNING,
          "httpx": logging.WARNING, "httpx2": logging.WARNING, "httpcore": logging.WARNING,
          # WeasyPrint narrates every step of every PDF (and the images it fetches).
          "weasyprint": logging.WARNING, "fontTools": logging.WARNING}


def _exception_without_message(_logger: Any, _name: str, event: dict[str, Any]) -> dict:
    """Replace exc_info with the exception's type and the frames it went through."""
    exc_info = event.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if exc_info and exc_info[0] is not None:
        event["exc_type"] = exc_info[0].__name__
        event["exc_where"] = _frames(exc_info[2])
    event.pop("exception", None)
    event.pop("stack", None)
    return event


def _frames(tb: TracebackType | None) -> list[str]:
    return [f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno} {frame.name}"
            for frame in traceback.extract_tb(tb)][-12:]


def _foreign_message(_logger: Any, _name: str, event: dict[str, Any]) -> dict:
    """A library's record arrives as its formatted message; keep the logger's name."""
    record = event.get("_record")
    if record is not None:
        event.setdefault("logger", record.name)
    return event


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger through one structlog renderer. Safe to call more than once."""
    global _configured
    key = f"{level}:{fmt}"
    if _configured == key:
        return
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _foreign_message,
        _exception_without_message,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" \
        else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        # uvicorn installs its own handlers; ours (on the root) is the one that formats.
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(quiet)
    _configured = key


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
