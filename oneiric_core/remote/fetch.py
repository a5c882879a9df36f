"""Where a URI points and fetching it: http(s) with httpx, or a file on disk.

Every fetch has a deadline for the whole exchange (httpx's own timeouts are per read, so a
server trickling a byte a second would never trip them) and a size cap enforced while the
body streams in, before anything is parsed. An HTTP manifest is asked for with
If-None-Match, so an unchanged one costs a 304; an unchanged file (same sha256 as the last
good one) is reported the same way. `with_retries` retries what can succeed on a second try
(timeouts, connection errors, 5xx, 408, 429) with exponential backoff and jitter, and nothing
else.

Artifact URIs are resolved against the manifest's location and may not escape it: no `..`
(plain or percent-encoded), no backslashes or control characters, no absolute paths, no
`file:` from an HTTP manifest, no network-path `//host` references, and for file manifests
the resolved path must stay inside the manifest's directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

from ..errors import RemoteSyncFailed
from ..input_limits import InputLimits, LimitExceeded, read_capped, size_text

CHUNK = 64 * 1024
USER_AGENT = "oneiric-console (remote manifests)"
BACKOFF_CAP_S = 30.0
T = TypeVar("T")


class FetchError(RemoteSyncFailed):
    pass


@dataclass(frozen=True)
class Location:
    kind: str  # "http" or "file"
    url: str | None = None
    path: Path | None = None

    def __str__(self) -> str:
        return self.url if self.kind == "http" and self.url is not None else str(self.path)


@dataclass
class Fetched:
    body: bytes | None  # None when not modified
    etag: str | None
    not_modified: bool
    status: int | None = None
    fetch_ms: float = 0.0  # time spent in the transfer itself
    last_modified: str | None = None


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def locate(uri: str, base_dir: Path) -> Location:
    """A source URI of app.yml: http(s)://..., file:///abs, file:rel/or/abs, or a plain path
    (relative to `base_dir`, the settings directory)."""
    text = uri.strip()
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")):
        return Location("http", url=text)
    if lowered.startswith("file://"):
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise FetchError(f"file URI {uri} names host '{parts.netloc}'; only local files are read", "unsafe-uri")
        from urllib.request import url2pathname  # here: urllib.request costs ~10 ms to import

        return Location("file", path=Path(url2pathname(parts.path)))
    if lowered.startswith("file:"):
        text = text[5:]
    path = Path(os.path.expanduser(text))
    return Location("file", path=path if path.is_absolute() else base_dir / path)


def artifact_refusal(manifest: Location, uri: str) -> str | None:
    """Why an artifact URI is refused for a manifest at `manifest`, or None when it is safe."""
    try:
        resolve_artifact(manifest, uri)
    except FetchError as exc:
        return str(exc)
    return None


def resolve_artifact(manifest: Location, uri: str) -> Location:
    text = uri.strip()
    if not text:
        raise FetchError("the artifact URI is empty", "unsafe-uri")
    decoded = unquote(text)
    if _CONTROL.search(text) or _CONTROL.search(decoded):
        raise FetchError(f"artifact URI {uri!r} contains control characters", "unsafe-uri")
    if "\\" in text or "\\" in decoded:
        raise FetchError(f"artifact URI {uri!r} contains a backslash", "unsafe-uri")
    scheme = _SCHEME.match(text)
    if scheme and scheme[1].lower() in ("http", "https"):
        parts = urlsplit(text)
        if not parts.netloc:
            raise FetchError(f"artifact URI {uri!r} has no host", "unsafe-uri")
        _no_dot_segments(parts.path, uri)
        return Location("http", url=text)
    if scheme:
        raise FetchError(f"artifact URI {uri!r}: only http(s) URLs and paths relative to the manifest are "
                         "allowed", "unsafe-uri")
    if text.startswith(("/", "~")) or decoded.startswith(("/", "~")):
        raise FetchError(f"artifact URI {uri!r} is absolute; it must be relative to the manifest", "unsafe-uri")
    _no_dot_segments(text, uri)
    if manifest.kind == "http":
        assert manifest.url is not None
        return Location("http", url=urljoin(manifest.url, text))
    assert manifest.path is not None
    base = manifest.path.parent
    target = base / decoded
    try:
        inside = target.resolve().is_relative_to(base.resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside:
        raise FetchError(f"artifact URI {uri!r} leads outside the manifest's directory", "unsafe-uri")
    return Location("file", path=target)


def _no_dot_segments(path: str, uri: str) -> None:
    for candidate in (path, unquote(path), unquote(unquote(path))):
        if ".." in candidate.split("/"):
            raise FetchError(f"artifact URI {uri!r} contains a '..' segment (path traversal)", "unsafe-uri")


# -- http --------------------------------------------------------------------------------------

def new_http_client() -> Any:
    """One pooled client per manager (creating one costs an SSL context): redirects followed
    (at most 5), no cookies kept between requests that matter."""
    import httpx

    return httpx.AsyncClient(follow_redirects=True, max_redirects=5, headers={"User-Agent": USER_AGENT})


def _retryable_status(status: int) -> bool:
    return status >= 500 or status in (408, 429)


async def _http_stream(client: Any, url: str, *, headers: dict[str, str], timeout: float, max_bytes: int,
                       sink: Callable[[bytes], None], limit_key: str = "max_bytes") -> tuple[int, Any]:
    """GET `url`, feeding the body to `sink` while counting it; returns (status, headers).
    A body over `max_bytes` is refused from its Content-Length before a byte of it is read, or
    stopped as soon as it passes the limit (no Content-Length, or a server that sends more than
    it announced): nothing past the limit is kept. `limit_key` names the app.yml setting that
    raises the limit, for the message. Raises FetchError for everything that went wrong."""
    import httpx

    what = f"GET {url}"
    try:
        async with asyncio.timeout(timeout):
            async with client.stream("GET", url, headers=headers, timeout=httpx.Timeout(timeout)) as response:
                status = response.status_code
                if status == 304:
                    return status, response.headers
                if status >= 400:
                    raise FetchError(f"{what} returned {status} {response.reason_phrase}".rstrip(),
                                     "http-status", retryable=_retryable_status(status))
                length = response.headers.get("content-length")
                if length and length.isdigit() and int(length) > max_bytes:
                    raise FetchError(f"{what}: the body is {size_text(int(length))}, more than the size limit of "
                                     f"{size_text(max_bytes)}; it was not downloaded (raise {limit_key} in app.yml "
                                     "to allow it)", "too-large")
                received = 0
                async for chunk in response.aiter_bytes(CHUNK):
                    received += len(chunk)
                    if received > max_bytes:
                        raise FetchError(f"{what}: the body passed the size limit of {size_text(max_bytes)}; the "
                                         f"download was stopped there (raise {limit_key} in app.yml to allow it)",
                                         "too-large")
                    sink(chunk)
                return status, response.headers
    except TimeoutError:
        raise FetchError(f"{what} did not finish within {timeout:g} s", "timeout", retryable=True) from None
    except httpx.TimeoutException:
        raise FetchError(f"{what} did not finish within {timeout:g} s", "timeout", retryable=True) from None
    except httpx.ConnectError as exc:
        raise FetchError(f"{what} failed: cannot connect ({_reason(exc)})", "unreachable", retryable=True) from None
    except httpx.TooManyRedirects:
        raise FetchError(f"{what} was redirected too many times", "http-status") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{what} failed: {_reason(exc)}", "unreachable", retryable=True) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


async def fetch_manifest(location: Location, *, client: Callable[[], Any], etag: str | None,
                         known_digest: str | None, timeout: float, max_bytes: int,
                         last_modified: str | None = None, limit_key: str = "max_bytes") -> Fetched:
    """The manifest's bytes, or not-modified (304, or a file whose sha256 is `known_digest`).
    HTTP asks with If-None-Match (the ETag), else If-Modified-Since (for servers without ETags,
    such as `python -m http.server`)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    if location.kind == "file":
        assert location.path is not None
        body = await asyncio.to_thread(_read_file, location.path, max_bytes, limit_key)
        fetched_ms = (loop.time() - started) * 1000
        if known_digest is not None and hashlib.sha256(body).hexdigest() == known_digest:
            return Fetched(None, known_digest, True, None, fetched_ms)
        return Fetched(body, None, False, None, fetched_ms)
    assert location.url is not None
    buffer = bytearray()
    headers = {"Accept": "application/json, application/yaml;q=0.9, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    elif last_modified:
        headers["If-Modified-Since"] = last_modified
    status, response_headers = await _http_stream(client(), location.url, headers=headers, timeout=timeout,
                                                  max_bytes=max_bytes, sink=buffer.extend, limit_key=limit_key)
    fetched_ms = (loop.time() - started) * 1000
    new_etag = response_headers.get("etag")
    modified = response_headers.get("last-modified")
    if status == 304:
        return Fetched(None, new_etag or etag, True, status, fetched_ms, modified or last_modified)
    return Fetched(bytes(buffer), new_etag, False, status, fetched_ms, modified)


def _read_file(path: Path, max_bytes: int, limit_key: str = "max_bytes") -> bytes:
    """The manifest file's bytes: its size is looked at before it is read, and at most
    max_bytes + 1 bytes are read (input_limits.read_capped), so a file growing meanwhile is
    refused too."""
    try:
        return read_capped(path, InputLimits(max_bytes=max_bytes, bytes_key=limit_key))
    except LimitExceeded as exc:
        found = "grew past" if exc.found is None else f"is {size_text(exc.found)}, more than"
        raise FetchError(f"{path} {found} the size limit of {size_text(max_bytes)}; it was not parsed (raise "
                         f"{limit_key} in app.yml to allow it)", "too-large") from None
    except FileNotFoundError:
        raise FetchError(f"{path} does not exist", "unreachable", retryable=True) from None
    except IsADirectoryError:
        raise FetchError(f"{path} is a directory, not a manifest file", "io") from None
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror or exc}", "io", retryable=True) from None


async def download(location: Location, out: IO[bytes], *, client: Callable[[], Any], timeout: float,
                   max_bytes: int) -> str:
    """Copy an artifact into `out` (a temp file) while hashing it; returns its sha256 hex."""
    digest = hashlib.sha256()

    def sink(chunk: bytes) -> None:
        digest.update(chunk)
        out.write(chunk)

    if location.kind == "file":
        assert location.path is not None
        await asyncio.to_thread(_copy_file, location.path, sink, max_bytes)
    else:
        assert location.url is not None
        await _http_stream(client(), location.url, headers={}, timeout=timeout, max_bytes=max_bytes, sink=sink,
                           limit_key="max_artifact_bytes")
    out.flush()
    return digest.hexdigest()


def _copy_file(path: Path, sink: Callable[[bytes], None], max_bytes: int) -> None:
    received = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    raise FetchError(f"artifact {path} is more than the {max_bytes:,} bytes allowed "
                                     "(max_artifact_bytes)", "too-large")
                sink(chunk)
    except FileNotFoundError:
        raise FetchError(f"artifact {path} does not exist", "artifact", retryable=True) from None
    except IsADirectoryError:
        raise FetchError(f"artifact {path} is a directory", "artifact") from None
    except OSError as exc:
        raise FetchError(f"cannot read artifact {path}: {exc.strerror or exc}", "artifact", retryable=True) from None


# -- retries --------------------------------------------------------------------------------------

def backoff_delay(attempt: int, base_s: float, *, cap_s: float = BACKOFF_CAP_S,
                  rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter for retry `attempt` (0 = the first retry): half of
    min(cap, base * 2^attempt) fixed, the other half random ("equal jitter")."""
    ceiling = min(cap_s, base_s * (2 ** attempt))
    return ceiling / 2 + rand() * ceiling / 2


async def with_retries(call: Callable[[], Awaitable[T]], *, retries: int, base_s: float,
                       on_retry: Callable[[int, FetchError, float], None] | None = None) -> T:
    """Run `call`; retry a retryable FetchError up to `retries` times with backoff_delay."""
    attempt = 0
    while True:
        try:
            return await call()
        except RemoteSyncFailed as exc:
            if not exc.retryable or attempt >= retries:
                raise
            delay = backoff_delay(attempt, base_s)
            if on_retry is not None and isinstance(exc, FetchError):
                on_retry(attempt + 1, exc, delay)
            attempt += 1
            await asyncio.sleep(delay)


__all__ = [
    "FetchError", "Fetched", "Location", "artifact_refusal", "backoff_delay", "download", "fetch_manifest",
    "locate", "new_http_client", "resolve_artifact", "with_retries",
]
