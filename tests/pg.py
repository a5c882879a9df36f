"""The PostgreSQL the store tests run against: $ONEIRIC_TEST_PG, else the server this
machine is expected to have (trust auth, database `test`). Each test gets a schema of its
own (the store lives in its connection's search_path), dropped afterwards.

Where no server answers, PostgreSQL-backed tests skip with one line that says how to run
them; with ONEIRIC_REQUIRE_PG=1 (.ci/run sets it) that skip is a failure instead."""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

DEFAULT_URL = "postgresql://127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("ONEIRIC_TEST_PG", "").strip() or DEFAULT_URL



@functools.cache
def _unreachable(url: str) -> str | None:
    """Why no PostgreSQL answers at `url`, or None when one does."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return " ".join(str(exc).split())
    return None


def require_pg() -> str:
    """The server's URL; skips (or, with ONEIRIC_REQUIRE_PG=1, fails) the test without one."""
    url = server_url()
    why = _unreachable(url)
    if why is not None:
        line = (f"no PostgreSQL at {url} ({why}); set ONEIRIC_TEST_PG=postgresql://USER@HOST:PORT/DB "
                "to run the PostgreSQL store tests")
        if os.environ.get("ONEIRIC_REQUIRE_PG") == "1":
            pytest.fail(f"ONEIRIC_REQUIRE_PG=1 but {line}", pytrace=False)
        pytest.skip(line)
    return url


def with_schema(url: str, schema: str) -> str:
    """`url` with its connections' search_path set to `schema`."""
    option = quote(f"-csearch_path={schema}", safe="")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


@contextlib.contextmanager
def fresh_schema() -> Iterator[str]:
    """A store URL in a new, empty schema of the test server, dropped at the end."""
    import psycopg

    url = require_pg()
    schema = f"oneiric_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_schema(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def demo_on_store(dest: Path, url: str) -> Path:
    """A copy of the demo settings at `dest` whose app.yml points the store at `url`."""
    import shutil

    shutil.copytree(Path(__file__).resolve().parents[1] / "settings", dest)
    with (dest / "app.yml").open("a") as app:
        app.write(f"\nstore:\n  url: \"{url}\"\n")
    return dest
