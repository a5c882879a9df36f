"""Real things for remote-manifest tests: an HTTP server on 127.0.0.1 in a thread, fresh ed25519
keys, signed manifests and settings directories with a `remote:` section."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from oneiric_core.engine import Engine
from oneiric_core.remote import signing
from tests.helpers import FAST_APP, demo_copy, until  # noqa: F401  (until: re-exported for the remote tests)

# -- keys and manifests -------------------------------------------------------------------------

@dataclass
class Key:
    id: str
    private: Any
    public: str  # base64 raw

    @classmethod
    def new(cls, key_id: str) -> Key:
        private = signing.generate_private_key()
        return cls(key_id, private, signing.b64(signing.public_raw(private)))


def entry(key: str = "cache", provider: str = "remote-memory", *, domain: str = "adapter",
          factory: str = "oneiric_core.providers.cache_memory:create", **extra: Any) -> dict[str, Any]:
    return {"domain": domain, "key": key, "provider": provider, "factory": factory, **extra}


FAR_FUTURE = "2099-01-01T00:00:00Z"


def manifest(entries: list[dict[str, Any]], *, version: int | str = 1, name: str = "acme",
             expires_at: str | None = FAR_FUTURE) -> dict[str, Any]:
    """A manifest; `expires_at=None` leaves the field out."""
    data = {"version": version, "name": name, "generated_at": "2025-01-01T00:00:00Z", "entries": entries,
            "signatures": []}
    if expires_at is not None:
        data["expires_at"] = expires_at
    return data


def signed(data: dict[str, Any], *keys: Key) -> dict[str, Any]:
    for key in keys:
        data = signing.sign_manifest(data, key.private, key.id)
    return data


def body(data: dict[str, Any]) -> bytes:
    return json.dumps(data, indent=1).encode()


# -- the server -----------------------------------------------------------------------------------

@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    etag: bool = True
    delay: float = 0.0  # seconds before answering
    content_length: bool = True  # False: stream the body without Content-Length (HTTP/1.0 close)


@dataclass
class Server:
    """`set(path, Route)` or `sequence(path, [Route, ...])` (one per request, the last repeats)."""

    httpd: ThreadingHTTPServer
    thread: threading.Thread
    routes: dict[str, list[Route]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def set(self, path: str, route: Route) -> None:
        with self.lock:
            self.routes[path] = [route]

    def serve(self, path: str, data: dict[str, Any] | bytes, **kwargs: Any) -> None:
        self.set(path, Route(data if isinstance(data, bytes) else body(data), **kwargs))

    def sequence(self, path: str, routes: list[Route]) -> None:
        with self.lock:
            self.routes[path] = list(routes)

    def _next(self, path: str) -> Route | None:
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            queue = self.routes.get(path)
            if not queue:
                return None
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def start_server() -> Server:
    server: Server

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802
            with server.lock:
                server.requests.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            route = server._next(self.path)
            if route is None:
                self._send(404, b"not found")
                return
            if route.delay:
                time.sleep(route.delay)
            tag = f'"{hashlib.sha256(route.body).hexdigest()[:32]}"'
            if route.status == 200 and route.etag and self.headers.get("If-None-Match") == tag:
                self.send_response(304)
                self.send_header("ETag", tag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if not route.content_length:
                self.protocol_version = "HTTP/1.0"
                self.send_response(route.status)
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for start in range(0, len(route.body), 16384):
                        self.wfile.write(route.body[start:start + 16384])
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True
                return
            self._send(route.status, route.body, tag if route.etag and route.status == 200 else None)

        def _send(self, status: int, payload: bytes, etag: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if etag:
                self.send_header("ETag", etag)
            self.end_headers()
            try:
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    server = Server(httpd, thread)
    thread.start()
    return server


# -- fixtures (a test module imports the ones it uses) ------------------------------------------------

@pytest.fixture
def server():
    srv = start_server()
    yield srv
    srv.close()


@pytest.fixture
def key() -> Key:
    return Key.new("acme-1")


@pytest.fixture
def engines(tmp_path):
    """`engines(settings, state="state")` -> an Engine on tmp_path/state, closed after the test."""
    made: list[Engine] = []

    def make(settings: Path, state: str = "state") -> Engine:
        eng = Engine(settings, state_dir=tmp_path / state, actor="tester")
        made.append(eng)
        return eng

    yield make
    for eng in made:
        eng.close()


# -- settings -------------------------------------------------------------------------------------

def source(name: str, uri: str, **options: Any) -> dict[str, Any]:
    """A source with test-sized defaults: no retries, tiny backoff, short timeout."""
    return {"name": name, "uri": uri, "interval_s": 3600, "timeout": 2.0, "retries": 0, "backoff_s": 0.01,
            **options}


def remote_settings(tmp_path: Path, sources: list[dict[str, Any]], keys: list[Key] = (), *, threshold: int = 1,
                    failures: int = 3, reset_s: float = 60.0, app_extra: str = "") -> Path:
    """The demo settings with FAST_APP and a `remote:` section (written as JSON, which is YAML)."""
    settings = demo_copy(tmp_path)
    remote = {"sources": sources, "trusted_keys": [{"id": k.id, "public_key": k.public} for k in keys],
              "threshold": threshold, "breaker": {"failures": failures, "reset_s": reset_s}}
    (settings / "app.yml").write_text(FAST_APP + app_extra + "remote: " + json.dumps(remote) + "\n")
    return settings


