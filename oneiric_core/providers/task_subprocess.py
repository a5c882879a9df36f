"""task/runner `subprocess`: runs a program as a child process and collects its output.

It exists for work that must be isolated from the host (its own memory, its own crash).
Only programs on the `allowed_programs` list may run (default: this Python interpreter),
argv is never passed through a shell, and each child gets its own process group so a
timeout or `stop()` kills the child together with anything it spawned.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..domains import HealthResult
from . import _common

_POSIX = os.name == "posix"


@dataclass(frozen=True, slots=True)
class CompletedRun:
    returncode: int
    stdout: bytes
    stderr: bytes
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class SubprocessTimeout(TimeoutError):
    """The child outlived its timeout and was killed; the output it wrote so far is kept."""

    def __init__(self, argv: list[str], timeout_s: float, stdout: bytes, stderr: bytes) -> None:
        super().__init__(f"{Path(argv[0]).name} did not finish within {timeout_s:g} s and was killed.")
        self.argv, self.timeout_s, self.stdout, self.stderr = argv, timeout_s, stdout, stderr


class SubprocessRunner:
    def __init__(self, allowed_programs: list[str], default_timeout_s: float | None, cwd: Path | None) -> None:
        self.allowed_programs = allowed_programs
        self.default_timeout_s = default_timeout_s
        self.cwd = cwd
        self._allowed: set[str] | None = None  # resolved on start(): create() does no I/O
        self._children: set[asyncio.subprocess.Process] = set()
        self._stopped = False

    @property
    def running(self) -> int:
        return sum(1 for proc in self._children if proc.returncode is None)

    async def start(self) -> None:
        self._stopped = False
        self._allowed = await asyncio.to_thread(lambda: {_canonical(p) for p in self.allowed_programs})
        if self.cwd is not None:
            await asyncio.to_thread(self.cwd.mkdir, parents=True, exist_ok=True)

    async def run(self, argv: list[str], timeout_s: float | None = None) -> CompletedRun:
        """Run `argv` (no shell); SubprocessTimeout when it outlives `timeout_s`."""
        if self._stopped:
            raise RuntimeError("The subprocess task runner is stopped.")
        if not isinstance(argv, (list, tuple)) or not argv or not all(isinstance(a, str) for a in argv):
            raise TypeError(f"argv must be a non-empty list of strings, got {argv!r}.")
        if self._allowed is None:
            self._allowed = {_canonical(p) for p in self.allowed_programs}
        if _canonical(argv[0]) not in self._allowed:
            raise PermissionError(f"Program {argv[0]!r} is not in this runner's allowed_programs setting.")
        if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
                                      or timeout_s <= 0):
            raise ValueError(f"timeout_s must be a number of seconds greater than 0 or None, got {timeout_s!r}.")
        return await self._exec(list(argv), timeout_s if timeout_s is not None else self.default_timeout_s)

    async def health(self) -> HealthResult:
        started = time.perf_counter()
        try:
            if self._stopped:
                return HealthResult.failed("The subprocess task runner is stopped.")
            result = await self._exec([sys.executable, "-c", "pass"], 10.0)
            latency = _common.elapsed_ms(started)
            if result.returncode != 0:
                detail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
                return HealthResult.failed(
                    f"The probe process exited with {result.returncode} {detail[0]}".rstrip() + ".", latency)
            return HealthResult.ok(f"probe process exited 0 in {result.duration_ms:.0f} ms", latency)
        except (OSError, SubprocessTimeout, RuntimeError) as exc:  # no process, a hung one, or stopped under us
            return HealthResult.failed(f"Cannot start a probe process: {_common.describe(exc)}.",
                                       _common.elapsed_ms(started))

    async def stop(self) -> None:
        self._stopped = True
        children = [proc for proc in self._children if proc.returncode is None]
        for proc in children:
            _kill(proc)
        await asyncio.gather(*(proc.wait() for proc in children), return_exceptions=True)

    async def _exec(self, argv: list[str], timeout_s: float | None) -> CompletedRun:
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.cwd,
            start_new_session=_POSIX,
        )
        self._children.add(proc)
        assert proc.stdout is not None and proc.stderr is not None
        readers = [asyncio.ensure_future(proc.stdout.read()), asyncio.ensure_future(proc.stderr.read())]
        try:
            try:
                async with asyncio.timeout(timeout_s):  # None: no limit
                    await proc.wait()
            except TimeoutError:
                _kill(proc)
                await proc.wait()
                stdout, stderr = await _collect(readers)
                raise SubprocessTimeout(argv, timeout_s or 0.0, stdout, stderr) from None
            stdout, stderr = await _collect(readers)
            return CompletedRun(proc.returncode or 0, stdout, stderr, _common.elapsed_ms(started))
        except BaseException:
            if proc.returncode is None:  # cancelled while waiting: take the child down too
                _kill(proc)
                await asyncio.shield(proc.wait())
            for reader in readers:
                reader.cancel()
            raise
        finally:
            self._children.discard(proc)


async def _collect(readers: Sequence[asyncio.Future[bytes]]) -> tuple[bytes, bytes]:
    """The output read so far; a grandchild still holding a pipe cannot keep us waiting long."""
    done, pending = await asyncio.wait(readers, timeout=2.0)
    for reader in pending:
        reader.cancel()
    out = [reader.result() if reader in done and not reader.exception() else b"" for reader in readers]
    return out[0], out[1]


def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill the child's whole process group (it leads its own session), or just the child."""
    if proc.returncode is not None:
        return
    try:
        if _POSIX:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _canonical(program: str) -> str:
    """A program name as the real file it runs, so `python3` and `/usr/bin/python3` compare equal."""
    found = shutil.which(program) if os.sep not in program else program
    return os.path.realpath(found) if found else program


def create(settings: dict[str, Any]) -> SubprocessRunner:
    programs = settings.get("allowed_programs", [sys.executable])
    if (not isinstance(programs, (list, tuple)) or not programs
            or not all(isinstance(p, str) and p.strip() for p in programs)):
        raise ValueError(f"Setting 'allowed_programs' must be a non-empty list of program paths, got {programs!r}.")
    cwd = _common.file_path(settings, "cwd", ".") if settings.get("cwd") is not None else None
    return SubprocessRunner(
        allowed_programs=list(programs),
        default_timeout_s=_common.number(settings, "default_timeout_s", None, positive=True, allow_none=True),
        cwd=cwd,
    )
