"""TUF's rollback and freeze rules for remote manifests: a replayed older version, the same
version with other content and an expired manifest are refused, nothing of them is registered
and the last good set keeps serving; the highest accepted version lives in the store, so a
restart still refuses; an expired manifest in force is withdrawn without yanking what serves.
A real HTTP server on 127.0.0.1, real keys, a real SQLite store, real Engines, a CLI subprocess."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from oneiric_core.domains import ComponentRef, Domain
from oneiric_core.engine import Engine
from oneiric_core.events import KINDS
from oneiric_core.remote.freshness import format_utc, parse_utc
from oneiric_core.remote.status import meta_key
from tests.remote_helpers import (  # noqa: F401  (engines, key, server: fixtures)
    Key,
    engines,
    entry,
    key,
    manifest,
    remote_settings,
    server,
    signed,
    source,
    until,
)

REPO = Path(__file__).resolve().parent.parent
STORAGE = ComponentRef(Domain.ADAPTER, "storage")
LIFTED = {"key": "storage", "factory": "oneiric_core.providers.storage_local:create", "stack_level": 50,
          "settings": {"root": "remote-storage"}}  # wins adapter/storage over the demo's scratch


def remote_cands(engine: Engine) -> list[str]:
    return sorted(c.provider for c in engine.registry.all() if c.source == "remote:acme")


def publish(server, key: Key, version: int, *providers: str, **fields) -> dict:
    data = signed(manifest([entry(provider=p) for p in providers], version=version, **fields), key)
    server.serve("/m.json", data)
    return data


async def sync(engine: Engine):
    outcomes = await engine.remote.sync_now()
    assert len(outcomes) == 1
    return outcomes[0]


def assert_refused(engine: Engine, out, kind: str, event: str, serving: list[str]) -> None:
    """Refused, journaled as `event` (error), the sync counted as failed, the last good set in force."""
    assert not out.ok and out.error_kind == kind, out.message()
    assert "the last good manifest stays in force" in out.message()
    assert remote_cands(engine) == serving, "nothing of the refused manifest is registered"
    journaled = engine.journal(kinds=[event])
    assert journaled and journaled[-1].severity.value == "error" and journaled[-1].outcome == "failed"
    status = engine.store.get_meta(meta_key("acme"))
    assert status["state"] == "stale" and status["consecutive_failures"] == 1 and status["last_error_kind"] == kind


def test_the_event_kinds_are_known():
    assert {"manifest-rollback-refused", "manifest-expired"} <= KINDS


async def test_replay_of_an_older_signed_manifest_is_refused_while_the_newer_one_serves(tmp_path, server, key,
                                                                                      engines):
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key])
    engine = engines(settings)
    old = signed(manifest([entry(provider="v1-only"), entry(provider="remote-local", **LIFTED)], version=1), key)
    server.serve("/m.json", old)
    await engine.start()
    try:
        assert engine.lifecycle.slot(STORAGE).current.candidate.provider == "remote-local"
        server.serve("/m.json", signed(manifest([entry(provider="v2-only"),
                                                 entry(provider="remote-local", **{**LIFTED, "priority": 2})],
                                                version=2), key))
        assert (await sync(engine)).ok
        server.serve("/m.json", old)  # the validly signed v1, replayed
        out = await sync(engine)
        assert_refused(engine, out, "rollback", "manifest-rollback-refused", ["remote-local", "v2-only"])
        assert "the manifest is version 1, older than version 2 (accepted 20" in out.error
        assert "refused as a rollback" in out.error
        assert engine.lifecycle.slot(STORAGE).current.candidate.provider == "remote-local", "it keeps serving"
        assert [c.priority for c in engine.registry.all() if c.provider == "remote-local"] == [2], "v2's, not v1's"
        assert engine.store.get_meta("remote_accepted:acme")["version"] == 2
    finally:
        await engine.stop()


async def test_the_same_version_with_other_content_is_refused_and_an_unchanged_one_is_fine(tmp_path, server, key,
                                                                                       engines):
    engine = engines(remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key]))
    good = publish(server, key, 4, "four")
    assert (await sync(engine)).ok
    publish(server, key, 4, "four", "sneaked-in")
    out = await sync(engine)
    assert_refused(engine, out, "rollback", "manifest-rollback-refused", ["four"])
    assert "version 4 again" in out.error and "signs other content" in out.error
    # the same signed content, formatted otherwise and with one more signature (a key rotation): fine
    rotated = Key.new("acme-2")
    again = signed(good, rotated)
    server.serve("/m.json", json.dumps(again, indent=7, sort_keys=True).encode())
    out = await sync(engine)
    assert out.ok and not out.changed and remote_cands(engine) == ["four"], out.message()


async def test_an_expired_manifest_is_refused_with_its_expiry_time(tmp_path, server, key, engines):
    engine = engines(remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key]))
    publish(server, key, 1, "fresh")
    assert (await sync(engine)).ok
    publish(server, key, 2, "stale-news", expires_at="2026-01-02T03:04:05Z")
    out = await sync(engine)
    assert_refused(engine, out, "expired", "manifest-expired", ["fresh"])
    assert "the manifest (version 2) expired at 2026-01-02T03:04:05Z (" in out.error and "ago)" in out.error
    assert engine.store.get_meta("remote_accepted:acme")["version"] == 1, "an expired manifest is never accepted"
    # rollback is judged first: an old replayed manifest is usually expired too
    publish(server, key, 1, "older", expires_at="2026-01-02T03:04:05Z")
    assert (await sync(engine)).error_kind == "rollback"


async def test_a_signed_source_refuses_a_manifest_that_never_expires(tmp_path, server, key, engines):
    engine = engines(remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key]))
    publish(server, key, 1, "forever", expires_at=None)
    out = await sync(engine)
    assert not out.ok and out.error_kind == "schema" and remote_cands(engine) == []
    assert "the manifest has no expires_at, and this source requires signed manifests, which must expire" in out.error


async def test_an_old_string_version_is_refused_in_one_sentence(tmp_path, server, key, engines):
    engine = engines(remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key]))
    publish(server, key, "1", "string")
    out = await sync(engine)
    assert not out.ok and out.error_kind == "schema"
    assert out.error == ("the manifest's version is the string '1', but it must be an integer of at least 1 "
                         "(versions are compared to refuse rollbacks): pack it again with --version N and sign it")


def test_a_malformed_expiry_or_version_is_one_sentence():
    from oneiric_core.remote.manifest import ManifestError, parse_manifest

    def problem(**fields) -> str:
        data = {"version": 1, "name": "x", "generated_at": "t", "entries": [], **fields}
        try:
            parse_manifest(json.dumps(data).encode())
        except ManifestError as exc:
            return str(exc)
        raise AssertionError("accepted")

    assert problem(expires_at="2030-01-01T00:00:00+02:00") == (
        "the manifest is invalid: expires_at: '2030-01-01T00:00:00+02:00' is not an RFC 3339 UTC time such as "
        "2030-01-31T12:00:00Z")
    assert problem(expires_at="2030-02-30T00:00:00Z").endswith("'2030-02-30T00:00:00Z' is not a valid date and time")
    assert problem(version=0) == "the manifest is invalid: version: Input should be greater than or equal to 1"
    assert problem(version=1.5) == "the manifest is invalid: version: Input should be a valid integer"


async def test_a_restart_still_refuses_the_older_version(tmp_path, server, key, engines):
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key])
    first = engines(settings)
    publish(server, key, 1, "one")
    assert (await sync(first)).ok
    older = server.routes["/m.json"][0]
    publish(server, key, 2, "two")
    assert (await sync(first)).ok
    first.close()

    second = engines(settings)  # the same state dir: v2 from the cache, v2 in the ledger
    assert remote_cands(second) == ["two"]
    server.set("/m.json", older)
    out = await sync(second)
    assert_refused(second, out, "rollback", "manifest-rollback-refused", ["two"])
    second.close()

    # even with the manifest cache gone, the store remembers
    shutil.rmtree(tmp_path / "state" / "remote")
    third = engines(settings)
    assert remote_cands(third) == []
    out = await sync(third)
    assert not out.ok and out.error_kind == "rollback" and remote_cands(third) == []
    assert "older than version 2" in out.error


async def test_a_cached_manifest_older_than_the_ledger_is_not_put_in_force(tmp_path, server, key, engines):
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key])
    first = engines(settings)
    publish(server, key, 1, "one")
    assert (await sync(first)).ok
    cache = tmp_path / "state" / "remote" / "acme"
    shutil.copytree(cache, tmp_path / "v1-cache")
    publish(server, key, 2, "two")
    assert (await sync(first)).ok
    first.close()
    shutil.rmtree(cache)
    shutil.copytree(tmp_path / "v1-cache", cache)  # the state dir restored from an old backup

    host = engines(settings)
    assert remote_cands(host) == [], "the cached v1 is not registered"
    server.set("/m.json", server.routes["/m.json"][0])
    await host.start()
    try:
        refused = host.journal(kinds=["manifest-rollback-refused"])
        assert refused and refused[0].data["cache"] is True and refused[0].severity.value == "error"
        assert "the cached last good manifest is version 1, older than version 2" in refused[0].message
        assert "its entries are not registered until" in refused[0].message
        await until(lambda: remote_cands(host) == ["two"])  # the first sync brings the fresh v2
    finally:
        await host.stop()


async def test_an_expired_manifest_in_force_is_withdrawn_without_yanking_and_not_loaded_again(tmp_path, server,
                                                                                            key, engines):
    """TUF stops trusting an expired manifest. Running: the loop wakes at the expiry time and
    withdraws its entries; the instance they serve keeps serving, with a proposal to swap to
    what wins now. Restarted: the expired cached manifest is not registered, and it is journaled."""
    expires_at = format_utc(time.time() + 3)
    lifted = signed(manifest([entry(provider="remote-local", **LIFTED)], expires_at=expires_at), key)
    server.serve("/m.json", lifted)
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key])
    engine = engines(settings)
    await engine.start()
    try:
        slot = engine.lifecycle.slot(STORAGE)
        assert slot.current.candidate.provider == "remote-local"
        expired = await until(lambda: engine.journal(kinds=["manifest-expired"]), timeout=15)
        assert time.time() >= parse_utc(expires_at)
        assert expired[0].severity.value == "error" and expired[0].data["expires_at"] == expires_at
        assert f"expired at {expires_at}" in expired[0].message and "withdrawn" in expired[0].message
        assert remote_cands(engine) == []
        assert slot.current.candidate.provider == "remote-local", "what serves is not yanked"
        proposal = engine.approvals.get(expired[0].data["proposals"][0])
        assert (proposal.from_provider, proposal.to_provider, proposal.status) == ("remote-local", "scratch",
                                                                                   "pending")
        out = await sync(engine)  # the source still serves the expired manifest
        assert not out.ok and out.error_kind == "expired" and remote_cands(engine) == []
    finally:
        await engine.stop()
        engine.close()

    restarted = engines(settings)
    assert remote_cands(restarted) == [], "an expired cached manifest is not put in force"
    assert restarted.resolver.winner(STORAGE).provider == "scratch"
    await restarted.start()
    try:
        refused = [e for e in restarted.journal(kinds=["manifest-expired"]) if e.data.get("cache")]
        assert refused and "the cached last good manifest (version 1) expired at" in refused[0].message
        status = restarted.remote.statuses()[0]
        assert status["accepted"]["version"] == 1 and status["last_error_kind"] == "expired"
    finally:
        await restarted.stop()


async def test_an_unsigned_file_source_follows_the_same_rules_when_the_fields_are_there(tmp_path, engines):
    path = tmp_path / "m.json"
    settings = remote_settings(tmp_path, [source("acme", str(path))])  # a file: signatures not required
    engine = engines(settings)
    path.write_text(json.dumps(manifest([entry(provider="three")], version=3, expires_at=None)))
    out = await sync(engine)
    assert out.ok and out.signature["status"] == "unsigned", "no expires_at is fine without signatures"
    path.write_text(json.dumps(manifest([entry(provider="two")], version=2, expires_at=None)))
    assert_refused(engine, await sync(engine), "rollback", "manifest-rollback-refused", ["three"])
    path.write_text(json.dumps(manifest([entry(provider="four")], version=4, expires_at="2001-01-01T00:00:00Z")))
    out = await sync(engine)
    assert not out.ok and out.error_kind == "expired" and remote_cands(engine) == ["three"]


def test_the_cli_refuses_a_replay_and_remote_status_shows_the_accepted_version(run_cli, tmp_path, server, key):
    settings = remote_settings(tmp_path / "cli", [source("acme", server.url("/m.json"))], [key])
    v1 = publish(server, key, 1, "one")
    publish(server, key, 2, "two")
    first = run_cli("remote-sync", "--source", "acme", settings=settings)
    assert first.returncode == 0 and "acme v2 (1 added" in first.stdout, str(first)
    server.serve("/m.json", v1)
    replay = run_cli("remote-sync", "--source", "acme", settings=settings)
    assert replay.returncode == 6, str(replay)
    assert replay.stderr.count("\n") == 1 and "Traceback" not in replay.stderr
    assert ("remote:acme: sync failed (rollback): the manifest is version 1, older than version 2" in replay.stderr
            and "the last good manifest stays in force" in replay.stderr)
    listed = run_cli("list", "--json", "--key", "cache", settings=settings).json()["candidates"]
    assert [c["provider"] for c in listed if c["source"] == "remote:acme"] == ["two"]
    shown = run_cli("remote-status", "--json", settings=settings).json()["sources"]
    acme = next(s for s in shown if s["name"] == "acme")
    assert acme["accepted"]["version"] == 2 and acme["manifest"]["version"] == 2
    assert acme["manifest"]["expires_at"] == acme["accepted"]["expires_at"] == "2099-01-01T00:00:00Z"
    text = run_cli("remote-status", settings=settings)
    assert "  expires: 2099-01-01T00:00:00Z (in " in text.stdout, str(text)
    assert "  accepted: v2 is the highest version ever accepted" in text.stdout


def test_the_demo_manifest_does_not_expire_within_a_year():
    from oneiric_core.remote.manifest import parse_manifest

    parsed = parse_manifest((REPO / "settings" / "manifests" / "demo.json").read_bytes())
    assert parsed.model.expires_at is not None
    left_days = (parse_utc(parsed.model.expires_at) - time.time()) / 86400
    assert left_days > 365, (f"settings/manifests/demo.json expires at {parsed.model.expires_at}: re-sign it with "
                             "a higher --version and --expires-in 3650d (settings/manifests/demo-entries.yml says how)")
    assert isinstance(parsed.model.version, int) and parsed.model.version >= 2
