"""adapter/storage `local`: named blobs kept as files under one directory.

It exists so a host has somewhere to put files with nothing to set up. Names are relative
paths such as `reports/today.json`; a name can never leave the root (absolute paths and
`..` components are refused, and symlinks that lead out are caught after resolving).
Writes go to a temporary file first and are renamed into place, so a reader never sees
half a file. File I/O runs in worker threads.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from ..domains import HealthResult
from ..private_files import open_private, private_dir, write_private
from . import _common

_HIDDEN_PREFIX = ".oneiric-"  # temporary and probe files; never listed


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._started = False

    async def start(self) -> None:
        await asyncio.to_thread(private_dir, self.root)
        self._started = True

    def path_for(self, name: str) -> Path:
        """The file that holds `name`; ValueError for any name that would leave the root."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"Storage names must be non-empty strings, got {name!r}.")
        if "\x00" in name or "\\" in name:
            raise ValueError(f"Storage name {name!r} contains a NUL or backslash character.")
        pure = PurePosixPath(name)
        if pure.is_absolute():
            raise ValueError(f"Storage name {name!r} is absolute; names are relative to the storage root.")
        if any(part == ".." for part in pure.parts):
            raise ValueError(f"Storage name {name!r} contains '..'; names must stay inside the storage root.")
        if not pure.parts or pure.parts[-1] == ".":
            raise ValueError(f"Storage name {name!r} does not name a file.")
        if pure.name.startswith(_HIDDEN_PREFIX):
            raise ValueError(f"Storage names may not start with {_HIDDEN_PREFIX!r}, which is reserved.")
        path = self.root.joinpath(*pure.parts)
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise ValueError(f"Storage name {name!r} leads outside the storage root through a symlink.")
        return path

    async def put(self, name: str, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"Storage data must be bytes, got {type(data).__name__}.")
        path = self.path_for(name)
        self._check_started()
        await asyncio.to_thread(_write_atomically, path, bytes(data))

    async def get(self, name: str) -> bytes:
        """The bytes stored under `name`; FileNotFoundError when there is none."""
        path = self.path_for(name)
        self._check_started()
        return await asyncio.to_thread(path.read_bytes)

    async def delete(self, name: str) -> bool:
        """Remove `name`; True when it existed."""
        path = self.path_for(name)
        self._check_started()
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        return True

    async def exists(self, name: str) -> bool:
        path = self.path_for(name)
        self._check_started()
        return await asyncio.to_thread(path.is_file)

    async def list(self) -> list[str]:
        """Every stored name, sorted, with `/` separators."""
        self._check_started()
        return await asyncio.to_thread(self._list)

    async def health(self) -> HealthResult:
        started = time.perf_counter()
        if not self._started:
            return HealthResult.failed(f"The storage root {self.root} is not started.")
        probe = self.root / f"{_HIDDEN_PREFIX}health-{uuid.uuid4().hex}"
        token = uuid.uuid4().bytes
        try:
            await asyncio.to_thread(_probe, probe, token)
        except OSError as exc:
            reason = exc.strerror or _common.describe(exc)
            return HealthResult.failed(f"Cannot write to the storage root {self.root}: {reason}.",
                                       _common.elapsed_ms(started))
        except RuntimeError as exc:  # no worker thread to run it in (the host is shutting down)
            return HealthResult.failed(f"Storage probe in {self.root} failed: {_common.describe(exc)}.",
                                       _common.elapsed_ms(started))
        return HealthResult.ok(f"wrote and removed a probe file in {self.root}", _common.elapsed_ms(started))

    async def stop(self) -> None:
        """Remove leftover temporary files from interrupted writes; files themselves stay."""
        if not self._started:
            return
        self._started = False
        await asyncio.to_thread(self._sweep_temporaries)

    def _list(self) -> builtins.list[str]:  # `list` in this class is the method above
        names = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(_HIDDEN_PREFIX)]
            for filename in filenames:
                if filename.startswith(_HIDDEN_PREFIX):
                    continue
                rel = Path(dirpath, filename).relative_to(self.root)
                names.append(rel.as_posix())
        return sorted(names)

    def _sweep_temporaries(self) -> None:
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for filename in filenames:
                if filename.startswith(_HIDDEN_PREFIX):
                    try:
                        os.unlink(os.path.join(dirpath, filename))
                    except OSError:
                        pass

    def _check_started(self) -> None:
        if not self._started:
            raise RuntimeError(f"The storage root {self.root} is not started.")


def _write_atomically(path: Path, data: bytes) -> None:
    # a hidden temporary name, so that list() never shows a write in progress
    write_private(path, data, temp_name=f"{_HIDDEN_PREFIX}tmp-{uuid.uuid4().hex}")


def _probe(path: Path, token: bytes) -> None:
    try:
        with open_private(path) as handle:
            handle.write(token)
        if path.read_bytes() != token:
            raise OSError(f"probe file {path.name} read back different bytes")
        path.unlink()
    except BaseException:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def create(settings: dict[str, Any]) -> LocalStorage:
    return LocalStorage(root=_common.file_path(settings, "root", "storage"))
