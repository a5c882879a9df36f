"""The PostgreSQL the fleet benchmarks measure (store_pg.py, fleet_push.py, rollout.py): the
server at $ONEIRIC_TEST_PG (default postgresql://127.0.0.1:5432/test), a fresh schema of its
own for each run, dropped at the end, so a run never sees another's rows."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

DEFAULT_URL = "postgresql://127.0.0.1:5432/test"


class NoServer(Exception):
    """No PostgreSQL answers: the one line the benchmark prints instead of its figures."""


@dataclass(frozen=True)
class BenchSchema:
    server: str  # the server's URL, as messages name it
    store_url: str  # a store URL in the fresh schema
    version: str  # the server's version


@contextlib.contextmanager
def bench_schema() -> Iterator[BenchSchema]:
    url = os.environ.get("ONEIRIC_TEST_PG", "").strip() or DEFAULT_URL
    try:
        import psycopg

        admin = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001 - whatever keeps us from the server is the one line printed
        raise NoServer(f"no PostgreSQL at {url} ({' '.join(str(exc).split())}): set ONEIRIC_TEST_PG to run "
                       "this benchmark") from None
    schema = f"oneiric_bench_{uuid.uuid4().hex[:10]}"
    try:
        admin.execute(f"CREATE SCHEMA {schema}")
        yield BenchSchema(url, f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}",
                          admin.info.parameter_status("server_version") or "?")
    finally:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()
