"""The settings watcher: saves of settings files on disk become reloads on the engine's loop.

Why it is shaped like this:

* watchdog's Observer (inotify on Linux) rather than polling, so a save is seen within a
  millisecond or two and an idle host costs nothing;
* one non-recursive watch on the settings directory, not on the files: editors replace a
  file by renaming a temporary over it (or move the original aside and write a new one),
  and a watch on the old inode would go deaf after the first save. Only the known settings
  file names count; editor swap, backup and temporary files are ignored by name;
* a write is not a change until the writer is done: `write_text` truncates (an empty file
  is valid YAML that means "defaults") and then writes. Events of one file are therefore
  debounced: a change settles once the file has been quiet for `quiet_s` after a close,
  a rename into place or a delete, or for the longer `writing_quiet_s` after a bare modify
  or create (the writer may still hold it open), and never later than `max_wait_s` after
  its first event, so a file written continuously is still picked up;
* the observer thread never touches engine state: it only hands raw events to the
  asyncio loop with `loop.call_soon_threadsafe`; debouncing and `on_change` run on the loop
  thread, where the engine lives. watchdog is imported lazily, so CLI processes that never
  watch do not pay for it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver
    from watchdog.observers.inotify import InotifyObserver

QUIET_S = 0.05
WRITING_QUIET_S = 0.5
MAX_WAIT_S = 2.0
STOP_JOIN_S = 2.0
# Kubernetes mounts a ConfigMap as symlinks through `..data`, updated by renaming a new
# `..data` into place: that one event means every file may have changed.
K8S_DATA_LINK = "..data"

# What an event tells about a file, for the debouncer.
WRITING, DONE, GONE = "writing", "done", "gone"


@dataclass(frozen=True)
class WatcherStatus:
    """Whether settings edits on disk are being picked up, as every front door shows it.

    `state` is "alive" (watching `directory`), "down" (it should be watching but is not;
    `reason` says why) or "off" (no host in this process or none running)."""

    state: str
    directory: str | None = None
    reason: str | None = None
    since: float | None = None
    pid: int | None = None
    hostname: str | None = None

    @property
    def alive(self) -> bool:
        return self.state == "alive"

    def describe(self) -> str:
        """The words after "settings watcher: " in `oneiric status` and the console."""
        if self.alive:
            return f"alive (watching {self.directory})"
        return f"{'down' if self.state == 'down' else 'off'} ({self.reason or 'not running'})"

    def to_dict(self) -> dict[str, Any]:
        return {"alive": self.alive, "state": self.state, "directory": self.directory,
                "reason": self.reason, "since": self.since, "pid": self.pid, "hostname": self.hostname}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> WatcherStatus:
        return cls(str(raw.get("state") or "down"), raw.get("directory"), raw.get("reason"),
                   raw.get("since"), raw.get("pid"), raw.get("hostname"))


@dataclass
class _Pending:
    first: float
    writing: bool = False
    handle: asyncio.TimerHandle | None = None


class SettingsWatcher:
    """Watches `directory` for saves of the files named in `names`; calls `on_change(path)`
    on `loop`'s thread once per settled change. `on_down(reason)` (also on the loop) is
    told when the watch dies under it, e.g. the directory was deleted."""

    def __init__(
        self,
        directory: str | Path,
        names: Iterable[str],
        on_change: Callable[[Path], None],
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        on_down: Callable[[str], None] | None = None,
        quiet_s: float = QUIET_S,
        writing_quiet_s: float = WRITING_QUIET_S,
        max_wait_s: float = MAX_WAIT_S,
    ) -> None:
        self.directory = Path(os.path.abspath(directory))
        self.names = frozenset(names)
        self._on_change = on_change
        self._on_down = on_down
        self._loop = loop
        self.quiet_s = quiet_s
        self.writing_quiet_s = max(writing_quiet_s, quiet_s)
        self.max_wait_s = max(max_wait_s, self.writing_quiet_s)
        self._observer: Any = None
        self._closes = False  # whether the backend reports close-after-write (inotify does)
        self._pending: dict[str, _Pending] = {}
        self._stopped = False
        self.backend: str | None = None
        self.started_at: float | None = None
        self.down_reason: str | None = None
        self.changes = 0  # settled changes handed to on_change (for status and diagnostics)

    # -- control (loop thread) -------------------------------------------------------------
    def start(self) -> None:
        """Start the observer thread. Raises OSError when the OS refuses a watch (for example
        the inotify instance or watch limit is reached); the caller reports it."""
        from watchdog.events import (
            DirDeletedEvent,
            FileClosedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers import Observer

        self._loop = self._loop or asyncio.get_running_loop()
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                watcher._from_observer(event)

        inotify: type[InotifyObserver] | None
        try:
            from watchdog.observers.inotify import InotifyObserver as inotify
        except ImportError:  # not Linux
            inotify = None
        observer: BaseObserver
        if inotify is not None and Observer is inotify:
            # Full events: a file renamed in from elsewhere arrives as a move (complete file),
            # not as a create that looks like a writer still writing.
            observer = inotify(generate_full_events=True)
            self._closes = True
        else:
            observer = Observer()
        observer.daemon = True
        observer.name = "oneiric-settings-watcher"
        try:
            observer.schedule(
                Handler(), str(self.directory), recursive=False,
                event_filter=[FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileMovedEvent,
                              FileDeletedEvent, DirDeletedEvent],
            )
            observer.start()
        except BaseException:
            observer.stop()  # also ends the inotify reader thread the constructor started
            raise
        self._observer = observer
        self.backend = type(observer).__name__
        self.started_at = time.time()
        self.down_reason = None
        self._stopped = False

    def stop(self) -> None:
        """Stop the observer thread and forget changes not yet settled; idempotent."""
        self._stopped = True
        for pending in self._pending.values():
            if pending.handle is not None:
                pending.handle.cancel()
        self._pending.clear()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(STOP_JOIN_S)

    @property
    def thread(self) -> Any:
        """The observer thread (None when stopped)."""
        return self._observer

    @property
    def alive(self) -> bool:
        """True while the observer thread and its inotify reader both run."""
        observer = self._observer
        if observer is None or self._stopped or self.down_reason is not None:
            return False
        return observer.is_alive() and all(e.is_alive() for e in list(observer.emitters))

    def status(self) -> WatcherStatus:
        if self.alive:
            return WatcherStatus("alive", str(self.directory), since=self.started_at, pid=os.getpid(),
                                 hostname=socket.gethostname())
        reason = self.down_reason or ("stopped" if self._stopped or self._observer is None
                                      else "the observer thread has exited")
        return WatcherStatus("down", str(self.directory), reason, self.started_at, os.getpid(), socket.gethostname())

    # -- observer thread: classify, then hand over --------------------------------------------
    def _from_observer(self, event: Any) -> None:
        """Runs on the observer thread: must never raise (that would kill the thread) and
        never touch anything but the loop's thread-safe queue."""
        try:
            notes = self._classify(event)
            if notes and not self._stopped:
                loop = self._loop
                if loop is not None and not loop.is_closed():
                    loop.call_soon_threadsafe(self._note_all, notes)
        except RuntimeError:
            pass  # the loop closed between the check and the call: we are shutting down
        except Exception:  # noqa: BLE001 - a bug here must not kill the observer thread
            pass

    def _classify(self, event: Any) -> list[tuple[str, str]]:
        kind = event.event_type
        src = os.fsdecode(event.src_path) if event.src_path else ""
        if event.is_directory:
            if kind == "deleted" and os.path.abspath(src) == str(self.directory):
                return [("", "dir-deleted")]
            return []
        src_name = os.path.basename(src)
        if kind == "moved":
            dest = os.fsdecode(event.dest_path) if event.dest_path else ""
            dest_name = os.path.basename(dest)
            notes = []
            if src_name in self.names:
                notes.append((src_name, GONE))
            if dest_name in self.names and os.path.dirname(dest) == str(self.directory):
                notes.append((dest_name, DONE))
            elif dest_name == K8S_DATA_LINK:
                notes.extend((name, DONE) for name in sorted(self.names))
            return notes
        if src_name not in self.names:
            return []
        if kind in ("modified", "created"):
            return [(src_name, WRITING if self._closes else DONE)]
        if kind == "closed":
            return [(src_name, DONE)]
        if kind == "deleted":
            return [(src_name, GONE)]
        return []

    # -- loop thread: debounce and deliver ------------------------------------------------------
    def _note_all(self, notes: list[tuple[str, str]]) -> None:
        for name, what in notes:
            if what == "dir-deleted":
                self._went_down(self._gone_reason())
            else:
                self._note(name, what)

    def _note(self, name: str, what: str) -> None:
        if self._stopped or self._loop is None:
            return
        now = self._loop.time()
        pending = self._pending.get(name)
        if pending is None:
            pending = self._pending[name] = _Pending(first=now)
        pending.writing = what == WRITING
        window = self.writing_quiet_s if pending.writing else self.quiet_s
        due = min(now + window, pending.first + self.max_wait_s)
        if pending.handle is not None:
            pending.handle.cancel()
        pending.handle = self._loop.call_at(due, self._settle, name)

    def _settle(self, name: str) -> None:
        if self._pending.pop(name, None) is None or self._stopped:
            return
        self.changes += 1
        self._on_change(self.directory / name)

    def _gone_reason(self) -> str:
        return f"the settings directory {self.directory} was deleted or moved"

    def _went_down(self, reason: str) -> None:
        if self.down_reason is None and not self._stopped:
            self.down_reason = reason
            if self._on_down is not None:
                self._on_down(reason)

    def check(self) -> str | None:
        """Call periodically on the loop: notices a watch that died without an event (the
        reader thread exited) and reports it once through `on_down`. Returns the reason."""
        if self._stopped or self._observer is None:
            return None
        if self.down_reason is None and not self.alive:
            # The directory's own delete event may still be on its way to the loop.
            self._went_down(self._gone_reason() if not self.directory.is_dir() else "its observer thread exited")
        return self.down_reason


__all__ = ["MAX_WAIT_S", "QUIET_S", "SettingsWatcher", "WatcherStatus", "WRITING_QUIET_S"]
