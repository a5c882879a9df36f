"""The store on PostgreSQL: what differs from SQLite (schema in a search_path, a URL in the
messages, the server unreachable) and the product end to end on it (an engine, the CLI, the
journal's chain, a prune). The backend-neutral store tests run on both backends in
tests/test_store.py through the `store_url` fixture."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from oneiric_core import retention
from oneiric_core.domains import Domain
from oneiric_core.engine import Engine
from oneiric_core.events import Event
from oneiric_core.journal_chain import verify
from oneiric_core.retention import RetentionPolicy
from oneiric_core.store import StateStore, StoreError, pg_migrations, sqlite_migrations
from tests.helpers import settings_with
from tests.pg import fresh_schema, require_pg, with_schema


@pytest.fixture
def pg_url():
    with fresh_schema() as url:
        yield url


def test_both_backends_number_their_schema_steps_alike() -> None:
    assert pg_migrations.SCHEMA_VERSION == sqlite_migrations.SCHEMA_VERSION == len(pg_migrations.MIGRATIONS)


def test_a_new_schema_is_migrated_and_reopened_without_migrating_again(tmp_path: Path, pg_url: str) -> None:
    with StateStore(tmp_path / "state.sqlite", url=pg_url) as store:
        assert store.schema_version == pg_migrations.SCHEMA_VERSION
        store.append(Event("host-started", "first"))
    with StateStore(tmp_path / "state.sqlite", url=pg_url) as again:
        assert [e.message for e in again.journal()] == ["first"]
        assert again.where == "postgresql://127.0.0.1:5432/test" or again.where.startswith("postgresql://")
    assert not (tmp_path / "state.sqlite").exists()  # nothing of the store is in the state directory


def test_a_newer_schema_is_refused_with_the_url_in_the_sentence(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    StateStore(tmp_path / "s", url=pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE oneiric_schema SET version = version + 5")
    with pytest.raises(StoreError, match="upgrade the program") as info:
        StateStore(tmp_path / "s", url=pg_url)
    assert "postgresql://" in str(info.value) and "\n" not in str(info.value)


def test_stores_in_two_schemas_of_one_database_are_apart(tmp_path: Path) -> None:
    with fresh_schema() as first, fresh_schema() as second:
        a, b = StateStore(tmp_path / "a", url=first), StateStore(tmp_path / "b", url=second)
        try:
            a.append(Event("host-started", "in a"))
            assert b.journal() == [] and [e.message for e in a.journal()] == ["in a"]
        finally:
            a.close()
            b.close()


def test_an_unreachable_server_is_one_sentence_without_the_password(tmp_path: Path) -> None:
    require_pg()  # psycopg is there
    with pytest.raises(StoreError) as info:
        StateStore(tmp_path / "s", url="postgresql://ops:s3cret@127.0.0.1:1/test?connect_timeout=2")
    msg = str(info.value)
    assert msg.startswith("cannot open the state store postgresql://ops@127.0.0.1:1/test: ")
    assert "s3cret" not in msg and "\n" not in msg


def test_a_search_path_without_a_schema_is_refused(tmp_path: Path) -> None:
    url = with_schema(require_pg(), "no_such_schema_here")
    with pytest.raises(StoreError, match="search_path names no schema"):
        StateStore(tmp_path / "s", url=url)


def test_a_url_that_is_not_postgresql_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"'mysql://' is not a store URL"):
        StateStore(tmp_path / "s", url="mysql://root@127.0.0.1/test")


def test_a_failed_batch_leaves_nothing_behind_and_the_store_usable(tmp_path: Path, pg_url: str) -> None:
    with StateStore(tmp_path / "s", url=pg_url) as store:
        store.append(Event("host-started", "before"))
        with pytest.raises(RuntimeError), store.batch():
            store.append(Event("swap-started", "inside"))
            assert [e.message for e in store.journal()] == ["before", "inside"]  # the batch reads its own rows
            raise RuntimeError("the swap failed half way")
        assert [e.message for e in store.journal()] == ["before"]
        assert store.append(Event("host-started", "after")).id == 2  # the chain goes on from its real end
        assert verify(store).intact


def test_appends_from_two_stores_chain_on_one_journal(tmp_path: Path, pg_url: str) -> None:
    """Each store caches its chain tip; the other's appends make it stale, and the conflict on
    the next id is resolved inside the transaction (a savepoint on PostgreSQL)."""
    a, b = StateStore(tmp_path / "a", url=pg_url), StateStore(tmp_path / "b", url=pg_url)
    try:
        for i in range(20):
            (a if i % 3 else b).append(Event("host-started", f"row {i}"))
        assert [e.id for e in a.journal(limit=100)] == list(range(1, 21))
        verdict = verify(b)
        assert verdict.intact and verdict.events == 20, verdict.sentence()
    finally:
        a.close()
        b.close()


def test_a_prune_on_postgresql_keeps_the_chain_whole(tmp_path: Path, pg_url: str) -> None:
    with StateStore(tmp_path / "s", url=pg_url) as store:
        store.append_many([Event("health-changed", f"old {i}", domain=Domain.ADAPTER, key="storage",
                                 ts=time.time() - 9000 + i) for i in range(3000)])
        report = retention.prune(store, RetentionPolicy(max_age_s=None, max_rows=100), target_s=1e-6, pause_s=0)
        assert report.pruned == 2900 and store.count_journal() == 100
        assert report.not_reclaimed is None and report.pages_reclaimed == 0  # the server vacuums by itself
        verdict = verify(store)
        assert verdict.intact and verdict.anchor.id == 2900, verdict.sentence()


def test_store_url_in_app_yml_must_be_postgresql(tmp_path: Path, run_cli) -> None:
    settings = settings_with(tmp_path / "pg", "store:\n  url: mysql://root@db/test\n")
    res = run_cli("config", "validate", settings=settings)
    assert res.returncode != 0, str(res)
    assert "is not a postgresql:// URL" in res.stdout + res.stderr, str(res)


def test_an_engine_and_the_cli_share_a_store_on_postgresql(tmp_path: Path, pg_url: str, run_cli) -> None:
    """A host engine on PostgreSQL swaps a provider; a CLI process with another state
    directory but the same store URL reads its journal, and `journal verify` holds."""
    settings = settings_with(tmp_path / "pg", f"store:\n  url: \"{pg_url}\"\n")

    async def host() -> None:
        engine = Engine(settings, state_dir=tmp_path / "host-state", actor="tester")
        await engine.start()
        try:
            _record, result = await engine.request_swap("adapter", "cache", "sqlite", approve=True)
            assert result is not None and result.ok, result
        finally:
            await engine.stop()
            engine.close()

    asyncio.run(host())
    assert not (tmp_path / "host-state" / "state.sqlite").exists()
    res = run_cli("activity", "--json", settings=settings, state_dir=tmp_path / "cli-state")
    assert res.returncode == 0, str(res)
    journal = run_cli("journal", "--json", "--limit", "200", settings=settings, state_dir=tmp_path / "cli-state")
    assert journal.returncode == 0, str(journal)
    kinds = {row["kind"] for row in journal.json()["events"]}
    assert {"host-started", "swap-complete", "host-stopped"} <= kinds, kinds
    verified = run_cli("journal", "verify", settings=settings, state_dir=tmp_path / "cli-state")
    assert verified.returncode == 0 and verified.stdout.startswith("journal intact"), str(verified)
