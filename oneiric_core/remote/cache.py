"""On-disk state of remote sync under `state_dir/remote/`:

    remote/<source>/manifest.raw    the last good manifest of a source, byte for byte as fetched
    remote/<source>/record.json     what is known about it: sha256, ETag, when, which keys verified it
    remote/artifacts/<sha256>       artifacts, content-addressed; nothing else ever lives here,
                                    so clearing the directory can never touch other state
    remote/quarantine/              cached artifacts whose content no longer matched their name
    remote/tmp/                     downloads in progress (renamed into artifacts/ once verified)

Every write goes to a temporary file that is renamed into place, so a crash leaves either the
old or the new version; directories and files are created private (private_files.py). The
record carries the manifest's sha256: a manifest.raw that does
not match it (a torn write, an edit by hand) is not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..private_files import private_dir, write_private

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SOURCE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
RECORD_VERSION = 1


def _safe_name(name: str) -> str:
    if not _SOURCE.match(name) or name in (".", ".."):
        raise ValueError(f"'{name}' cannot name a cache directory")
    return name


@dataclass(frozen=True)
class CachedManifest:
    raw: bytes
    record: dict[str, Any]

    @property
    def digest(self) -> str:
        return str(self.record.get("digest", ""))

    @property
    def etag(self) -> str | None:
        value = self.record.get("etag")
        return value if isinstance(value, str) else None

    @property
    def last_modified(self) -> str | None:
        value = self.record.get("last_modified")
        return value if isinstance(value, str) else None


class ManifestCache:
    """The last good manifest of one source."""

    def __init__(self, root: Path, source: str) -> None:
        self.dir = root / _safe_name(source)
        self.raw_path = self.dir / "manifest.raw"
        self.record_path = self.dir / "record.json"

    def load(self) -> tuple[CachedManifest | None, str | None]:
        """(the cached manifest, None), or (None, why there is none usable)."""
        try:
            raw = self.raw_path.read_bytes()
            record = json.loads(self.record_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None, "no manifest has been cached yet"
        except (OSError, ValueError) as exc:
            return None, f"the cached manifest cannot be read ({exc})"
        if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
            return None, "the cached manifest's record is not in a known format"
        if hashlib.sha256(raw).hexdigest() != record.get("digest"):
            return None, "the cached manifest does not match its recorded sha256"
        return CachedManifest(raw, record), None

    def save(self, raw: bytes, **record: Any) -> CachedManifest:
        full = {"version": RECORD_VERSION, "digest": hashlib.sha256(raw).hexdigest(), "saved_at": time.time(),
                **record}
        write_private(self.raw_path, raw)
        write_private(self.record_path, json.dumps(full, sort_keys=True, indent=1).encode("utf-8"))
        return CachedManifest(raw, full)

    def update_record(self, cached: CachedManifest, **changes: Any) -> CachedManifest:
        """A new ETag or fetch time for the same bytes."""
        record = {**cached.record, **changes}
        write_private(self.record_path, json.dumps(record, sort_keys=True, indent=1).encode("utf-8"))
        return CachedManifest(cached.raw, record)


class ArtifactStore:
    """Content-addressed artifacts: a file is stored under its own sha256, or not at all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "artifacts"
        self.quarantine_dir = root / "quarantine"
        self.tmp_dir = root / "tmp"

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"'{sha256}' is not a sha256 hex digest")
        return self.dir / sha256

    def verified(self, sha256: str) -> tuple[Path | None, str | None]:
        """(path, None) when the cached artifact is there and still hashes to its name;
        (None, None) when it is not cached; (None, where it went) when it was corrupt and
        has been moved to quarantine (the caller downloads it again)."""
        path = self.path_for(sha256)
        try:
            actual = _hash_file(path)
        except FileNotFoundError:
            return None, None
        except IsADirectoryError:
            return None, self.quarantine(path, sha256)
        if actual == sha256:
            return path, None
        return None, self.quarantine(path, sha256)

    def quarantine(self, path: Path, sha256: str) -> str:
        private_dir(self.quarantine_dir)
        target = self.quarantine_dir / f"{sha256}.{time.time_ns()}"
        os.replace(path, target)
        return str(target)

    def temp_file(self) -> IO[bytes]:
        private_dir(self.tmp_dir)
        return tempfile.NamedTemporaryFile(prefix="download-", dir=self.tmp_dir, delete=False)

    def commit(self, tmp: Path, sha256: str) -> Path:
        path = self.path_for(sha256)
        private_dir(path.parent)
        os.replace(tmp, path)
        return path

    def discard(self, tmp: Path) -> None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["ArtifactStore", "CachedManifest", "ManifestCache"]
