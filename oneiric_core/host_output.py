"""What `oneiric run` writes to stdout: journal events and providers' `logging` records, one
JSON line each, with an sd-daemon(3) priority prefix when stdout is systemd's journal.

journald reads a service's stdout line by line and files every line at the unit's default
priority (info) unless it starts with `<N>`: `<3>` err, `<4>` warning, `<6>` info, `<7>` debug.
Without the prefixes `journalctl -p warning` never shows a `swap-rollback`. systemd tells a
service that its stdout is the journal with JOURNAL_STREAM=<device>:<inode>, and a prefix is
written only when stdout's fstat() matches it (systemd.exec(5), sd_journal_stream_fd(3)): the
variable is inherited, so `oneiric run > events.log` inside a unit keeps writing plain JSON lines
that a shipper or `jq` reads as they are.

Providers log through Python's `logging` (`logging.getLogger(__name__).warning(...)`); the host
sends those records to the same stream, as JSON lines that have `logger` and `level` where an
event has `kind`, so a provider's own warning lands in the journal beside the events, at its
priority, and never as an unlabelled line on stderr.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import IO

from .errors import UsageError
from .events import Event, Severity
from .text import json_text, one_line

# syslog priorities (sd-daemon(3) SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG; SD_CRIT for CRITICAL)
CRIT, ERR, WARNING, INFO, DEBUG = 2, 3, 4, 6, 7

EVENT_PRIORITY = {Severity.ERROR: ERR, Severity.WARNING: WARNING, Severity.INFO: INFO}

LOG_LEVEL_ENV = "ONEIRIC_LOG_LEVEL"
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
              "error": logging.ERROR, "critical": logging.CRITICAL}

_COMPACT = {"separators": (",", ":")}


def to_journal(stream: IO[str], env: Mapping[str, str] | None = None) -> bool:
    """Whether `stream` is the journal stream systemd connected (JOURNAL_STREAM names its
    device and inode); False for anything else, a redirected stdout included."""
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        expected = (int(device), int(inode))
        found = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):  # unset or malformed; a stream with no fd (StringIO)
        return False
    return (found.st_dev, found.st_ino) == expected


def log_priority(levelno: int) -> int:
    """The syslog priority of a `logging` level."""
    if levelno >= logging.CRITICAL:
        return CRIT
    if levelno >= logging.ERROR:
        return ERR
    if levelno >= logging.WARNING:
        return WARNING
    return INFO if levelno >= logging.INFO else DEBUG


class LineWriter:
    """Whole lines to one stream, prefixed with their priority when it is the journal. A lock
    keeps each line whole: provider threads log while the event loop writes events."""

    def __init__(self, out: IO[str], *, prefixed: bool) -> None:
        self.out = out
        self.prefixed = prefixed
        self._lock = threading.Lock()

    def line(self, priority: int, text: str) -> None:
        line = f"<{priority}>{text}\n" if self.prefixed else text + "\n"
        with self._lock:
            try:
                self.out.write(line)
                self.out.flush()
            except (BrokenPipeError, ValueError):  # nobody reads stdout any more: keep hosting
                pass

    def event(self, event: Event) -> None:
        # ASCII-escaped (json_text): a note or name never puts a raw ESC into journald or a terminal
        self.line(EVENT_PRIORITY.get(event.severity, INFO), json_text(event.to_dict(), **_COMPACT))


class LogLines(logging.Handler):
    """`logging` records as JSON lines on a LineWriter: ts, level, logger, message (and the
    traceback as `exception`, inside the one line, so journald keeps it as one entry)."""

    def __init__(self, writer: LineWriter, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.writer = writer
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line: dict[str, object] = {"ts": record.created, "level": record.levelname.lower(),
                                       "logger": record.name, "message": record.getMessage()}
            if record.exc_info:
                line["exception"] = self._formatter.formatException(record.exc_info)
            self.writer.line(log_priority(record.levelno), json_text(line, **_COMPACT))
        except Exception:  # noqa: BLE001 - logging's contract: a bad record is reported, never raised
            self.handleError(record)


def log_level(env: Mapping[str, str] | None = None) -> int:
    """The level from ONEIRIC_LOG_LEVEL (default info); a UsageError naming the value otherwise."""
    raw = (os.environ if env is None else env).get(LOG_LEVEL_ENV, "").strip()
    if not raw:
        return logging.INFO
    try:
        return LOG_LEVELS[raw.lower()]
    except KeyError:
        raise UsageError(f"{LOG_LEVEL_ENV} is '{one_line(raw)}'; use one of "
                         f"{', '.join(LOG_LEVELS)}.") from None


def capture_logging(writer: LineWriter, level: int) -> Callable[[], None]:
    """Send every `logging` record at `level` or above to `writer` (the root logger's handler);
    returns the undo, which puts the root logger's level back."""
    root = logging.getLogger()
    handler = LogLines(writer, level)
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)

    def undo() -> None:
        root.removeHandler(handler)
        root.setLevel(previous)

    return undo
