"""Benchmark: remote manifests (docs/architecture.md §11, issue 5).

Targets: "verify + register a signed 1,000-entry manifest: under 100 ms" and "a 304 refresh
in under 10 ms of engine time", each also reported as a ratio to parsing the same manifest
JSON with the standard library (`json.loads`), measured in the same run.

What is measured, on a temporary copy of ./settings with a `remote:` section and its state
(SQLite, manifest cache) on disk, as a host keeps it:

  json.loads            the baseline: `json.loads(raw)` of the signed manifest bytes
  first registration    `await engine.remote.sync_now()` on a fresh Engine (a new state dir
                        each run) whose file source holds the manifest: read the file, parse,
                        canonicalise (RFC 8785) and verify the ed25519 signature over those
                        bytes, judge version and expiry against the ledger in the store, check
                        every entry (shape, domain, allow-list), write the manifest cache
                        (fsync) and the ledger, register N candidates (the resolver re-ranks
                        the N keys), journal remote-sync-complete, write the source status
  refresh, all changed  the same on one engine, each round a signed manifest one version
                        higher whose every entry's settings differ: N candidates replaced
  core only             parse + canonicalise + verify + check entries + build the rows, no I/O
                        and no registry: what the pipeline itself costs
    of which RFC 8785   `canonical_bytes` of the parsed manifest (the signed bytes), beside
                        `json.dumps(sort_keys=True)`, what was signed before RFC 8785
  304 refresh           a hosting Engine (loops running, pooled httpx client) whose source is
                        an HTTP server on 127.0.0.1 answering If-None-Match with 304:
                          wall         what `await engine.remote.sync_now()` takes
                          HTTP         the exchange itself (SyncOutcome.fetch_ms)
                          engine time  wall - HTTP: breaker, trust check, status, store write

Runs are interleaved (round 1 of every measure, round 2, ...) so a noisy moment on a shared
machine hits all of them alike.

Usage:  .venv/bin/python bench/remote.py [--quick] [--check] [--entries N] [--runs N] [--keep]
Exits 0 (it is a report) unless --check is given and a target FAILs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(REPO))

import _common  # noqa: E402

from oneiric_core.engine import Engine  # noqa: E402
from oneiric_core.remote import signing  # noqa: E402
from oneiric_core.remote.manifest import canonical_bytes, check_entries, parse_manifest  # noqa: E402
from oneiric_core.remote.registration import candidate_rows  # noqa: E402

REGISTER_TARGET_MS = 100.0
NOT_MODIFIED_TARGET_MS = 10.0
APP = """\
lifecycle: {activation_timeout: 5, health_timeout: 2, cleanup_timeout: 2}
health: {interval_s: 3600}
"""


def extra_args(parser) -> None:
    parser.add_argument("--entries", type=int, default=None, help="entries in the manifest (default 1000, --quick 100)")
    parser.add_argument("--runs", type=int, default=None, help="measured runs per measure (default 15, --quick 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")


def make_manifest(n: int, version: int, key: Any, key_id: str) -> bytes:
    factories = ["oneiric_core.providers.cache_memory:create", "oneiric_core.providers.storage_local:create",
                 "oneiric_core.providers.compress:create_gzip"]
    entries = [{"domain": "adapter", "key": f"remote-key-{i:05d}", "provider": f"acme-{i % 7}",
                "factory": factories[i % 3], "priority": i % 11, "stack_level": 0,
                "settings": {"max_entries": 1000 + i, "revision": version},
                "metadata": {"description": f"bench entry {i}", "team": "acme"}} for i in range(n)]
    data = {"version": version, "name": "bench", "generated_at": "2025-01-01T00:00:00Z",
            "expires_at": "2099-01-01T00:00:00Z", "entries": entries, "signatures": []}
    return json.dumps(signing.sign_manifest(data, key, key_id)).encode()


def settings_for(root: Path, uri: str, key_id: str, public: str, *, interval_s: float = 3600) -> Path:
    settings = root / "settings"
    shutil.copytree(REPO / "settings", settings)
    remote = {"sources": [{"name": "bench", "uri": uri, "interval_s": interval_s, "signature_required": True,
                           "retries": 0}],
              "trusted_keys": [{"id": key_id, "public_key": public}]}
    (settings / "app.yml").write_text(APP + "remote: " + json.dumps(remote) + "\n")
    return settings


class _Server:
    def __init__(self, payload: bytes) -> None:
        tag = f'"{hashlib.sha256(payload).hexdigest()[:32]}"'

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.headers.get("If-None-Match") == tag:
                    self.send_response(304)
                    self.send_header("ETag", tag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", tag)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/manifest.json"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def core(raw: bytes, keys: dict[str, str]) -> int:
    parsed = parse_manifest(raw)
    result = signing.verify(parsed.data, parsed.model.signatures, keys, threshold=1, required=True,
                            message=parsed.signed_bytes)
    assert result.ok, result.reason
    accepted, rejected = check_entries(parsed.model, ["oneiric_core.providers."])
    assert not rejected
    return len(candidate_rows(accepted, {}))


async def run(args) -> int:
    n = args.entries or (100 if args.quick else 1000)
    runs = args.runs or (3 if args.quick else 15)
    warmup = 1 if args.quick else 3
    key = signing.generate_private_key()
    key_id = "bench-key"
    public = signing.b64(signing.public_raw(key))
    # Versions only go up (a sync refuses a lower one): one manifest per round, signed beforehand.
    raw = [make_manifest(n, version, key, key_id) for version in range(1, warmup + runs + 2)]
    keys = {key_id: public}
    tmp = Path(tempfile.mkdtemp(prefix="oneiric-bench-remote-"))
    print(f"bench/remote.py -- {_common.environment_line()}")
    print(f"signed manifest: {n:,} entries, {len(raw[0]):,} bytes of JSON; state (SQLite, manifest cache) "
          f"on disk under {tmp}; {runs} measured runs after {warmup} warm-up, interleaved")
    print()
    server = _Server(raw[0])
    times: dict[str, list[float]] = {k: [] for k in (
        "json", "first", "refresh", "core", "jcs", "dumps", "304 wall", "304 http", "304 engine")}
    try:
        manifest_file = tmp / "refresh" / "manifest.json"
        manifest_file.parent.mkdir(parents=True)
        manifest_file.write_bytes(raw[0])
        refresher = Engine(settings_for(tmp / "refresh", str(manifest_file), key_id, public),
                           state_dir=tmp / "refresh" / "state")
        host = Engine(settings_for(tmp / "host", server.url, key_id, public), state_dir=tmp / "host" / "state")
        await host.start()  # its first sync (200, n candidates) runs in start()
        status = host.remote.statuses()[0]
        assert status["state"] == "ok" and status["entries"] == {"adapter": n}, status
        first_root = tmp / "first"
        first_root.mkdir()
        (first_root / "manifest.json").write_bytes(raw[0])
        first_settings = settings_for(first_root, str(first_root / "manifest.json"), key_id, public)
        for round_no in range(warmup + runs):
            measured = round_no >= warmup

            def note(name: str, value: float, measured: bool = measured) -> None:
                if measured:
                    times[name].append(value)

            started = time.perf_counter()
            json.loads(raw[round_no % 2])
            note("json", (time.perf_counter() - started) * 1000)

            started = time.perf_counter()
            core(raw[round_no % 2], keys)
            note("core", (time.perf_counter() - started) * 1000)

            data = json.loads(raw[0])
            started = time.perf_counter()
            canonical_bytes(data)
            note("jcs", (time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            json.dumps({k: v for k, v in data.items() if k != "signatures"}, sort_keys=True, separators=(",", ":"),
                       ensure_ascii=False).encode()
            note("dumps", (time.perf_counter() - started) * 1000)

            fresh = Engine(first_settings, state_dir=first_root / f"state-{round_no}")
            started = time.perf_counter()
            out = (await fresh.remote.sync_now())[0]
            note("first", (time.perf_counter() - started) * 1000)
            assert out.ok and out.counts["added"] == n, out.message()
            fresh.close()

            manifest_file.write_bytes(raw[round_no + 1])
            started = time.perf_counter()
            out = (await refresher.remote.sync_now())[0]
            note("refresh", (time.perf_counter() - started) * 1000)
            assert out.ok and out.changed, out.message()

            started = time.perf_counter()
            out = (await host.remote.sync_now())[0]
            wall = (time.perf_counter() - started) * 1000
            assert out.ok and out.not_modified, out.message()
            note("304 wall", wall)
            note("304 http", out.fetch_ms)
            note("304 engine", wall - out.fetch_ms)
        await host.stop()
        host.close()
        refresher.close()
    finally:
        server.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    base = _common.median(times["json"])
    labels = {
        "json": "json.loads of the manifest (baseline)",
        "first": f"sync: first registration ({n:,} added)",
        "refresh": f"sync: refresh, every entry changed ({n:,} replaced)",
        "core": "  core only: parse + canonicalise + verify + check + rows",
        "jcs": "    of which RFC 8785 canonical bytes",
        "dumps": "    json.dumps(sort_keys), the old signed bytes",
        "304 wall": "304 refresh over HTTP: wall",
        "304 http": "  the HTTP exchange (fetch_ms)",
        "304 engine": "  engine time (wall - HTTP)",
    }
    rows = [[labels[k], len(v), _common.median(v), _common.percentile(v, 95), _common.median(v) / base]
            for k, v in times.items()]
    print(_common.table(["measure", "runs", "median ms", "p95 ms", "x json.loads"], rows))
    print()
    jcs, dumps = _common.median(times["jcs"]), _common.median(times["dumps"])
    print(f"RFC 8785 canonicalisation: {jcs:.2f} ms, {jcs / dumps:.1f}x json.dumps(sort_keys=True) at {dumps:.2f} ms "
          "(same run)")
    print()
    register = max(_common.median(times["first"]), _common.median(times["refresh"]))
    engine_304 = _common.median(times["304 engine"])
    ok_register = register < REGISTER_TARGET_MS
    ok_304 = engine_304 < NOT_MODIFIED_TARGET_MS
    print(_common.verdict(ok_register, f"verify + register a signed {n:,}-entry manifest, median < "
                          f"{REGISTER_TARGET_MS:g} ms: {register:.1f} ms (worse of first registration and "
                          f"refresh; {register / base:.1f}x json.loads at {base:.2f} ms)"))
    print(_common.verdict(ok_304, f"304 refresh, engine time median < {NOT_MODIFIED_TARGET_MS:g} ms: "
                          f"{engine_304:.2f} ms ({engine_304 / base:.2f}x json.loads; wall "
                          f"{_common.median(times['304 wall']):.2f} ms including the HTTP exchange)"))
    _common.finish(ok_register and ok_304, args.check)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _common.parse_args("Remote manifests: verify + register, and the 304 refresh.", argv, extra_args)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
