"""The built-in providers: one small module each, registered as `source="builtin"` candidates.

Importing this package imports no provider module: candidates name their factories as
`"oneiric_core.providers.<module>:<attr>"` strings the engine imports when it builds one.
Every factory takes a settings dict (the engine adds `state_dir`), does no I/O, and returns
an object with `async start()`, `async health() -> HealthResult`, `async stop()` plus its
own small API. Where a key has several built-ins, the one that needs nothing outside the
process has priority 10 so it is the default.
"""

from __future__ import annotations

import copy
import dataclasses
import sys

from ..domains import Candidate, Domain

_PKG = __name__


def _candidate(domain: Domain, key: str, provider: str, factory: str, description: str,
               settings: dict | None = None, priority: int = 0) -> Candidate:
    return Candidate(
        domain=domain, key=key, provider=provider, factory=f"{_PKG}.{factory}", priority=priority,
        stack_level=0, source="builtin", settings=settings or {}, metadata={"description": description},
    )


BUILTIN_CANDIDATES: list[Candidate] = [
    _candidate(Domain.ADAPTER, "cache", "memory", "cache_memory:create",
               "In-process LRU cache; entries last as long as the process.",
               {"max_entries": 1024}, priority=10),
    _candidate(Domain.ADAPTER, "cache", "sqlite", "cache_sqlite:create",
               "Cache in one SQLite file under the state directory; survives restarts.",
               {"path": "cache.sqlite"}),
    _candidate(Domain.ADAPTER, "cache", "redis", "cache_redis:create",
               "Cache on a Redis server, shared between hosts (RESP2, no client library).",
               {"host": "127.0.0.1", "port": 6379, "db": 0, "timeout_s": 2.0}),
    _candidate(Domain.ADAPTER, "storage", "local", "storage_local:create",
               "Named files under one local directory; names cannot leave it.",
               {"root": "storage"}),
    _candidate(Domain.ADAPTER, "http", "httpx", "http_httpx:create",
               "Pooled outbound HTTP client (httpx); health GETs the optional health URL.",
               {"timeout_s": 5.0}),
    _candidate(Domain.SERVICE, "scheduler", "interval", "scheduler_interval:create",
               "Runs named jobs every N seconds inside the host process."),
    _candidate(Domain.TASK, "runner", "inline", "task_inline:create",
               "Runs a function as a task inside the host process.",
               {"sync_in_thread": True, "drain_timeout_s": 5.0}, priority=10),
    _candidate(Domain.TASK, "runner", "subprocess", "task_subprocess:create",
               "Runs an allowed program as a child process with a timeout.",
               {"allowed_programs": [sys.executable]}),
    _candidate(Domain.EVENT, "bus", "memory", "eventbus_memory:create",
               "In-process publish/subscribe between components."),
    _candidate(Domain.WORKFLOW, "runner", "inline", "workflow_inline:create",
               "Runs a list of steps in order, each fed the previous result."),
    _candidate(Domain.ACTION, "compress", "gzip", "compress:create_gzip",
               "Compresses and decompresses bytes with gzip.",
               {"level": 6}, priority=10),
    _candidate(Domain.ACTION, "compress", "zlib", "compress:create_zlib",
               "Compresses and decompresses bytes with zlib.",
               {"level": 6}),
]


def builtin_candidates() -> list[Candidate]:
    """Fresh copies of BUILTIN_CANDIDATES, safe to change (settings and metadata included)."""
    return [
        dataclasses.replace(c, settings=copy.deepcopy(c.settings), metadata=copy.deepcopy(c.metadata))
        for c in BUILTIN_CANDIDATES
    ]


__all__ = ["BUILTIN_CANDIDATES", "builtin_candidates"]
