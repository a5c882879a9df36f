"""Remote manifests end to end: a real HTTP server on 127.0.0.1, real keys, real files, a real
SQLite store, a real Engine. Nothing of ours is mocked; no timing is asserted."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from oneiric_core.domains import ComponentRef, Domain
from oneiric_core.engine import Engine
from oneiric_core.events import KINDS
from oneiric_core.remote.manifest import canonical_bytes, parse_manifest
from oneiric_core.remote.status import meta_key
from tests.remote_helpers import (  # noqa: F401  (engines, key, server: fixtures)
    FAR_FUTURE,
    Key,
    Route,
    body,
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
CACHE = ComponentRef(Domain.ADAPTER, "cache")
STORAGE = ComponentRef(Domain.ADAPTER, "storage")


def remote_cands(engine: Engine, name: str = "acme") -> list[tuple[str, str, str]]:
    return sorted((c.domain.value, c.key, c.provider) for c in engine.registry.all() if c.source == f"remote:{name}")


def kinds(engine: Engine) -> list[str]:
    return [e.kind for e in engine.journal(limit=1000)]


def one(outcomes):
    assert len(outcomes) == 1
    return outcomes[0]


# -- the happy path, 304, replace --------------------------------------------------------------------

async def test_sign_serve_sync_registered_then_304(tmp_path, server, key, engines):
    server.serve("/m.json", signed(manifest([entry(), entry("compress", "gzip-9", domain="action",
                                                             factory="oneiric_core.providers.compress:create_gzip",
                                                             settings={"level": 9})]), key))
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key])
    engine = engines(settings)
    out = one(await engine.remote.sync_now())
    assert out.ok and out.counts["added"] == 2, out.message()
    assert remote_cands(engine) == [("action", "compress", "gzip-9"), ("adapter", "cache", "remote-memory")]
    status = engine.store.get_meta(meta_key("acme"))
    assert status["state"] == "ok" and status["signature"]["status"] == "verified"
    assert status["signature"]["key_ids"] == ["acme-1"] and status["entries"] == {"adapter": 1, "action": 1}
    assert status["manifest"]["name"] == "acme" and len(status["manifest"]["digest"]) == 64
    assert "remote-sync-complete" in kinds(engine)
    assert {"remote-sync-complete", "signature-verification-failed", "digest-check-failed", "circuit-open",
            "circuit-closed"} <= KINDS
    seq = {c.ident: c.seq for c in engine.registry.all()}

    again = one(await engine.remote.sync_now())
    assert again.ok and again.not_modified
    assert server.requests[-1].get("if-none-match"), "the second request must carry If-None-Match"
    assert {c.ident: c.seq for c in engine.registry.all()} == seq
    assert engine.store.get_meta(meta_key("acme"))["total_syncs"] == 2


async def test_refresh_replaces_and_never_duplicates(tmp_path, server, key, engines):
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key])
    engine = engines(settings)
    before = len(engine.registry)
    server.serve("/m.json", signed(manifest([entry(provider="a"), entry(provider="b")]), key))
    await engine.remote.sync_now()
    server.serve("/m.json", signed(manifest([entry(provider="b", priority=3), entry(provider="c")], version=2), key))
    out = one(await engine.remote.sync_now())
    assert (out.added, out.replaced, out.removed) == (["adapter/cache c"], ["adapter/cache b"], ["adapter/cache a"])
    for _ in range(3):
        await engine.remote.sync_now()
    assert remote_cands(engine) == [("adapter", "cache", "b"), ("adapter", "cache", "c")]
    assert len(engine.registry) == before + 2
    assert [c.priority for c in engine.registry.all() if c.provider == "b"] == [3]


async def test_dry_run_shows_the_diff_and_changes_nothing(tmp_path, server, key, engines):
    server.serve("/m.json", signed(manifest([entry()]), key))
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key])
    engine = engines(settings)
    out = one(await engine.remote.sync_now(dry_run=True))
    assert out.ok and out.dry_run and out.added == ["adapter/cache remote-memory"]
    assert "would apply" in out.message()
    assert remote_cands(engine) == []
    assert engine.store.get_meta(meta_key("acme")) is None
    assert not (tmp_path / "state" / "remote" / "acme" / "manifest.raw").exists()


# -- what must fail, and change nothing ------------------------------------------------------------------

async def _good_then(engine, server, key, bad: bytes | Route):
    server.serve("/m.json", signed(manifest([entry()]), key))
    assert one(await engine.remote.sync_now()).ok
    server.set("/m.json", bad if isinstance(bad, Route) else Route(bad))
    out = one(await engine.remote.sync_now())
    assert not out.ok
    assert remote_cands(engine) == [("adapter", "cache", "remote-memory")], "the last good set stays"
    status = engine.store.get_meta(meta_key("acme"))
    assert status["state"] == "stale" and status["consecutive_failures"] == 1
    return out


async def test_tampered_body_is_refused(tmp_path, server, key, engines):
    engine = engines(remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key]))
    tampered = signed(manifest([entry(provider="remote-memory", settings={"max_entries": 5})], version=2), key)
    tampered["entries"][0]["settings"]["max_entries"] = 5_000_000
    out = await _good_then(engine, server, key, body(tampered))
    assert out.error_kind == "signature" and "acme-1" in out.error
    event = engine.journal(kinds=["signature-verification-failed"])[-1]
    assert event.data["signature"]["invalid"] == ["acme-1"]


async def test_wrong_key_and_missing_signature_are_refused(tmp_path, server, key, engines):
    engine = engines(remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key]))
    stranger = Key.new("stranger")
    out = await _good_then(engine, server, key, body(signed(manifest([entry()], version=2), stranger)))
    assert out.error_kind == "signature" and "not trusted here: stranger" in out.error
    # a key claiming a trusted id does not verify either
    impostor = Key("acme-1", stranger.private, stranger.public)
    server.serve("/m.json", signed(manifest([entry()], version=3), impostor))
    out = one(await engine.remote.sync_now())
    assert not out.ok and out.signature["invalid"] == ["acme-1"]
    server.serve("/m.json", manifest([entry()], version=4))
    out = one(await engine.remote.sync_now())
    assert not out.ok and out.error_kind == "signature" and "not signed" in out.error
    assert len(engine.journal(kinds=["signature-verification-failed"])) == 3


async def test_one_key_signing_twice_does_not_meet_threshold_two(tmp_path, server, engines):
    k1, k2 = Key.new("k1"), Key.new("k2")
    engine = engines(remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [k1, k2], threshold=2))
    data = signed(manifest([entry()]), k1)
    data["signatures"].append(dict(data["signatures"][0]))  # the same signature listed twice
    server.serve("/m.json", data)
    out = one(await engine.remote.sync_now())
    assert not out.ok and out.signature["key_ids"] == ["k1"] and out.signature["duplicates"] == ["k1"]
    # a second id configured with the same public key is still one key
    settings = remote_settings(tmp_path / "b", [source("acme", server.url("/m.json"))],
                               [k1, Key("k1-alias", k1.private, k1.public)], threshold=2)
    alias = engines(settings, "state-b")
    server.serve("/m.json", signed(manifest([entry()]), k1, Key("k1-alias", k1.private, k1.public)))
    assert not one(await alias.remote.sync_now()).ok
    server.serve("/m.json", signed(manifest([entry()]), k1, k2))
    out = one(await engine.remote.sync_now())
    assert out.ok and sorted(out.signature["key_ids"]) == ["k1", "k2"]


async def test_oversize_manifest_is_refused_while_streaming(tmp_path, server, key, engines):
    big = signed(manifest([entry(provider=f"p{i}") for i in range(400)]), key)
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"), max_bytes=4096)], [key])
    engine = engines(settings)
    server.serve("/m.json", big)
    out = one(await engine.remote.sync_now())
    assert not out.ok and out.error_kind == "too-large" and "more than" in out.error
    server.serve("/m.json", big, content_length=False)  # no Content-Length: stopped while streaming
    out = one(await engine.remote.sync_now())
    assert not out.ok and out.error_kind == "too-large" and "was stopped" in out.error
    assert remote_cands(engine) == []


async def test_slow_server_times_out(tmp_path, server, key, engines):
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"), timeout=0.3)], [key])
    engine = engines(settings)
    server.serve("/m.json", signed(manifest([entry()]), key), delay=1.5)
    out = one(await engine.remote.sync_now())
    assert not out.ok and out.error_kind == "timeout" and "0.3 s" in out.error


async def test_retries_with_backoff_inside_one_sync(tmp_path, server, key, engines):
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"), retries=2)], [key])
    engine = engines(settings)
    good = Route(body(signed(manifest([entry()]), key)))
    server.sequence("/m.json", [Route(b"down", status=503), Route(b"down", status=502), good])
    out = one(await engine.remote.sync_now())
    assert out.ok and server.hits["/m.json"] == 3
    server.serve("/m.json", b"", status=404)  # a 404 is not retried
    out = one(await engine.remote.sync_now())
    assert not out.ok and out.error_kind == "http-status" and server.hits["/m.json"] == 4


# -- entries ------------------------------------------------------------------------------------------

async def test_bad_entries_are_rejected_and_good_ones_register(tmp_path, server, key, engines):
    entries = [
        entry(provider="good-1"),
        entry(domain="gizmo", provider="x"),
        entry(provider="bad-settings", settings=["not", "a", "mapping"]),
        "not an entry",
        entry(provider="evil", factory="evil_remote_module.payload:create"),
        entry(provider="good-2", domain="task", key="runner", factory="oneiric_core.providers.task_inline:create"),
        entry(provider="good-1", priority=9),
        entry(provider="typo", priorty=3),
    ]
    server.serve("/m.json", signed(manifest(entries), key))
    engine = engines(remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key]))
    out = one(await engine.remote.sync_now())
    assert out.ok, out.message()
    assert remote_cands(engine) == [("adapter", "cache", "good-1"), ("task", "runner", "good-2")]
    reasons = {r["index"]: r["reason"] for r in out.rejected}
    assert set(reasons) == {1, 2, 3, 4, 6, 7}
    assert "Unknown domain 'gizmo'" in reasons[1]
    assert "settings" in reasons[2] and "dictionary" in reasons[2]
    assert "must be a mapping" in reasons[3]
    assert "'evil_remote_module.payload' is not in app.yml factory_allowlist" in reasons[4]
    assert "duplicate of entry #0" in reasons[6]
    assert "priorty: unknown field" in reasons[7]
    assert "evil_remote_module" not in sys.modules, "a refused factory is never imported"
    status = engine.store.get_meta(meta_key("acme"))
    assert [r["index"] for r in status["rejected"]] == [1, 2, 3, 4, 6, 7]
    assert engine.journal(kinds=["remote-sync-complete"])[-1].severity.value == "warning"


async def test_path_traversal_in_artifact_uris_is_refused(tmp_path, server, key, engines):
    sha = hashlib.sha256(b"x").hexdigest()
    bad_uris = ["../secret.bin", "blobs/../../etc/passwd", "%2e%2e/secret.bin", "blobs/%252e%252e/x",
                "/etc/passwd", "file:///etc/passwd", "..\\secret.bin", "//evil.example/x"]
    entries = [entry(provider=f"p{i}", artifact={"uri": uri, "sha256": sha}) for i, uri in enumerate(bad_uris)]
    entries.append(entry(provider="bad-name", artifact={"uri": "blobs/x", "sha256": "../../" + sha[:58]}))
    entries.append(entry(provider="plain"))
    server.serve("/m/m.json", signed(manifest(entries), key))
    engine = engines(remote_settings(tmp_path, [source("acme", server.url("/m/m.json"))], [key]))
    out = one(await engine.remote.sync_now())
    assert out.ok and remote_cands(engine) == [("adapter", "cache", "plain")]
    assert len(out.rejected) == len(bad_uris) + 1
    assert all(r["reason"].startswith("artifact refused") for r in out.rejected[:-1])
    assert "artifact.sha256" in out.rejected[-1]["reason"]  # the cache file name is the digest, checked
    assert not any(path.startswith("/etc") for path in (r["path"] for r in server.requests))
    assert not (tmp_path / "state" / "remote" / "artifacts").exists()


async def test_artifacts_are_content_addressed_and_a_corrupt_copy_is_quarantined(tmp_path, server, key, engines):
    blob = b"model weights v1\n" * 100
    sha = hashlib.sha256(blob).hexdigest()
    server.serve("/m/blobs/w.bin", blob, etag=False)
    server.serve("/m/m.json", signed(manifest([entry(artifact={"uri": "blobs/w.bin", "sha256": sha})]), key))
    engine = engines(remote_settings(tmp_path, [source("acme", server.url("/m/m.json"))], [key]))
    assert one(await engine.remote.sync_now()).ok
    stored = tmp_path / "state" / "remote" / "artifacts" / sha
    assert stored.read_bytes() == blob
    cand = next(c for c in engine.registry.all() if c.source == "remote:acme")
    assert cand.metadata["artifact"] == {"uri": "blobs/w.bin", "sha256": sha, "path": str(stored)}
    assert sorted(p.name for p in stored.parent.iterdir()) == [sha]

    stored.write_bytes(b"bit rot")
    server.serve("/m/m.json", signed(manifest([entry(artifact={"uri": "blobs/w.bin", "sha256": sha})],
                                              version=2), key))
    out = one(await engine.remote.sync_now())
    assert out.ok, out.message()
    assert stored.read_bytes() == blob, "downloaded again"
    quarantined = list((tmp_path / "state" / "remote" / "quarantine").iterdir())
    assert len(quarantined) == 1 and quarantined[0].read_bytes() == b"bit rot"
    assert "quarantine" in engine.journal(kinds=["digest-check-failed"])[-1].message

    # a server that sends other bytes than the manifest promises: refused, nothing changes
    server.serve("/m/blobs/w2.bin", b"something else", etag=False)
    server.serve("/m/m.json", signed(manifest([entry(provider="other", artifact={
        "uri": "blobs/w2.bin", "sha256": hashlib.sha256(b"expected").hexdigest()})], version=3), key))
    out = one(await engine.remote.sync_now())
    assert not out.ok and out.error_kind == "digest"
    assert remote_cands(engine) == [("adapter", "cache", "remote-memory")]
    assert engine.journal(kinds=["digest-check-failed"])[-1].severity.value == "error"
    assert sorted(p.name for p in stored.parent.iterdir()) == [sha]
    assert list((tmp_path / "state" / "remote" / "tmp").iterdir()) == []


async def test_yaml_manifest_verifies_the_same_and_tags_construct_nothing(tmp_path, key, engines):
    data = signed(manifest([entry(settings={"max_entries": 7})]), key)
    lines = ["signatures:"]
    for sig in data["signatures"]:
        lines += [f"  - key_id: {sig['key_id']}", f"    algorithm: {sig['algorithm']}",
                  f"    signature: \"{sig['signature']}\""]
    yaml_text = "\n".join([
        "# the same manifest in YAML, other key order", *lines,
        "generated_at: '2025-01-01T00:00:00Z'", "name: acme", "version: 1", f"expires_at: {FAR_FUTURE}",
        "entries:",
        "  - {provider: remote-memory, key: cache, domain: adapter,",
        "     factory: 'oneiric_core.providers.cache_memory:create', settings: {max_entries: 7}}", "",
    ])
    assert canonical_bytes(parse_manifest(yaml_text.encode()).data) == canonical_bytes(data)
    path = tmp_path / "m.yml"
    path.write_text(yaml_text)
    engine = engines(remote_settings(tmp_path, [source("acme", str(path), signature_required=True)], [key]))
    assert one(await engine.remote.sync_now()).ok
    assert remote_cands(engine) == [("adapter", "cache", "remote-memory")]

    path.write_text("name: !!python/object/apply:os.system ['touch pwned']\n" + yaml_text.split("\n", 1)[1])
    out = one(await engine.remote.sync_now())
    assert not out.ok and out.error_kind in ("parse", "schema")
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


# -- breaker, loop, start-up -----------------------------------------------------------------------

async def test_500s_open_the_breaker_and_a_good_trial_closes_it(tmp_path, server, key, engines):
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"), interval_s=0.05)], [key],
                               failures=3, reset_s=0.3)
    server.serve("/m.json", b"boom", status=500)
    engine = engines(settings)
    await engine.start()
    try:
        await until(lambda: engine.journal(kinds=["circuit-open"]))
        status = engine.remote.statuses()[0]
        assert status["breaker"]["state"] in ("open", "half-open") and status["breaker"]["retry_at"]
        assert status["consecutive_failures"] >= 3 and status["state"] == "failing"
        hits = server.hits["/m.json"]
        server.serve("/m.json", signed(manifest([entry()]), key))
        await until(lambda: engine.journal(kinds=["circuit-closed"]))
        assert server.hits["/m.json"] <= hits + 2, "no sync while the circuit was open"
        await until(lambda: remote_cands(engine))
        status = engine.remote.statuses()[0]
        assert status["breaker"]["state"] == "closed" and status["consecutive_failures"] == 0
        assert status["total_failures"] >= 3 and status["state"] == "ok"
    finally:
        await engine.stop()


async def test_the_loop_survives_every_kind_of_error(tmp_path, server, key, engines):
    good = signed(manifest([entry()]), key)
    tampered = json.loads(json.dumps(good))
    tampered["name"] = "changed"
    bad = [
        Route(b"boom", status=500), Route(b"{not json"), Route(body(tampered)), Route(body(manifest([entry()]))),
        Route(b"[1, 2]"), Route(b"x" * 5000), Route(body(good), delay=0.6), Route(b"", status=404),
        Route(b"\xff\xfe garbage"), Route(body({"version": 1, "name": "x"})),
    ]
    server.sequence("/m.json", [*bad, Route(body(good))])
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"), interval_s=0.02, timeout=0.3,
                                                 max_bytes=4000)], [key], failures=1000)
    engine = engines(settings)
    await engine.start()
    try:
        await until(lambda: remote_cands(engine), timeout=20)
        assert engine.remote.loop_alive("acme")
        status = engine.remote.statuses()[0]
        assert status["total_failures"] == len(bad) and status["consecutive_failures"] == 0
        seen = set(kinds(engine))
        assert {"remote-sync-error", "signature-verification-failed", "remote-sync-complete"} <= seen
        rounds = engine.remote.iterations["acme"]
        engine.remote.trigger("acme")
        await until(lambda: engine.remote.iterations["acme"] > rounds)
    finally:
        await engine.stop()
    assert not engine.remote.loop_alive("acme")


async def test_unreachable_on_start_uses_the_last_good_manifest_marked_stale(tmp_path, server, key, engines):
    server.serve("/m.json", signed(manifest([entry()]), key))
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key])
    first = engines(settings)
    assert one(await first.remote.sync_now()).ok
    first.close()
    server.close()

    engine = engines(settings)
    assert remote_cands(engine) == [("adapter", "cache", "remote-memory")], "in force from the cache at once"
    await engine.start()
    try:
        status = engine.remote.statuses()[0]
        assert status["state"] == "stale" and status["in_force"] == "cache" and status["stale"] is True
        assert status["last_error_kind"] == "unreachable"
        assert remote_cands(engine) == [("adapter", "cache", "remote-memory")]
        assert engine.resolver.explain("adapter", "cache").winner.provider == "memory"
    finally:
        await engine.stop()
    # a client process sees what the host recorded
    client = engines(settings)
    assert client.remote.statuses()[0]["state"] == "stale"


async def test_a_dropped_entry_keeps_serving_and_becomes_a_proposal(tmp_path, server, key, engines):
    lifted = entry("storage", "remote-local", factory="oneiric_core.providers.storage_local:create",
                   stack_level=50, settings={"root": "remote-storage"})
    server.serve("/m.json", signed(manifest([lifted]), key))
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key])
    engine = engines(settings)
    await engine.start()
    try:
        slot = engine.lifecycle.slot(STORAGE)
        assert slot.current.candidate.ident == (Domain.ADAPTER, "storage", "remote-local", "remote:acme")
        server.serve("/m.json", signed(manifest([], version=2), key))
        out = one(await engine.remote.sync_now())
        assert out.removed == ["adapter/storage remote-local"] and len(out.proposals) == 1
        assert slot.current.candidate.provider == "remote-local", "not yanked"
        with engine.use("adapter", "storage") as storage:
            assert storage is not None
        proposal = engine.approvals.get(out.proposals[0])
        assert (proposal.source, proposal.from_provider, proposal.to_provider, proposal.status) == \
            ("remote-sync", "remote-local", "scratch", "pending")
        assert "no longer lists remote-local" in proposal.reason
        again = one(await engine.remote.sync_now())  # unchanged: no second proposal
        assert again.proposals == [] and len(engine.approvals.pending()) == 1
        await engine.approve(proposal.id, actor="operator")
        assert slot.current.candidate.provider == "scratch"
    finally:
        await engine.stop()


async def test_the_demo_file_source_is_healthy_and_changes_no_winner(tmp_path, demo_settings, server):
    engine = Engine(demo_settings, state_dir=tmp_path / "state", actor="tester")
    before = {ref: engine.resolver.winner(ref).ident for ref in engine.resolver.refs()}
    try:
        await engine.start()
        status = engine.remote.statuses()[0]
        assert (status["name"], status["state"], status["signature"]["status"]) == ("demo", "ok", "verified")
        assert status["signature"]["key_ids"] == ["oneiric-demo-2026"] and status["rejected"] == []
        assert remote_cands(engine, "demo") == [("action", "compress", "gzip-fast"),
                                                ("adapter", "cache", "memory-remote")]
        assert {ref: engine.resolver.winner(ref).ident for ref in engine.resolver.refs()} == before
    finally:
        await engine.stop()
        engine.close()
    # the same manifest over HTTP verifies against the same key
    server.serve("/demo.json", (REPO / "settings" / "manifests" / "demo.json").read_bytes())
    app = (demo_settings / "app.yml").read_text().replace("file:manifests/demo.json", server.url("/demo.json"))
    (demo_settings / "app.yml").write_text(app)
    http = Engine(demo_settings, state_dir=tmp_path / "state2", actor="tester")
    try:
        out = one(await http.remote.sync_now())
        assert out.ok and out.signature["key_ids"] == ["oneiric-demo-2026"], out.message()
    finally:
        http.close()


def test_app_yml_remote_section_is_validated(tmp_path):
    from oneiric_core.settings import SettingsLoader

    settings = remote_settings(tmp_path, [source("acme", "https://example.invalid/m.json")], [])
    problems = SettingsLoader(settings).load().problems
    assert len(problems) == 1 and "requires signatures" in problems[0].reason
    settings = remote_settings(tmp_path / "b", [source("acme", "ftp://example.invalid/m.json",
                                                       signature_required=False)], [])
    assert "unsupported scheme 'ftp'" in SettingsLoader(settings).load().problems[0].reason
    settings = remote_settings(tmp_path / "c", [source("../../etc", "m.json")], [])
    assert "'../../etc' is not a valid" in SettingsLoader(settings).load().problems[0].reason


async def test_app_yml_edits_apply_live_and_a_revoked_key_withdraws_its_entries(tmp_path, server, key, engines):
    server.serve("/m.json", signed(manifest([entry()]), key))
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key])
    engine = engines(settings)
    await engine.start()
    try:
        assert remote_cands(engine) == [("adapter", "cache", "remote-memory")]
        rotated = Key.new("acme-2")
        app = settings / "app.yml"
        app.write_text(app.read_text().replace(key.public, rotated.public).replace('"acme-1"', '"acme-2"'))
        engine.settings_file_changed(app)
        await until(lambda: remote_cands(engine) == [])
        assert any(e.data.get("kind") == "trust" for e in engine.journal(kinds=["remote-sync-error"]))
        server.serve("/m.json", signed(manifest([entry(provider="rotated")], version=2), rotated))
        engine.remote.trigger("acme")
        await until(lambda: remote_cands(engine) == [("adapter", "cache", "rotated")])
        assert "remote" in engine.journal(kinds=["config-changed"])[-1].data["applied"]
    finally:
        await engine.stop()


async def test_a_new_remote_winner_after_start_is_a_proposal_not_a_swap(tmp_path, server, key, engines):
    server.serve("/m.json", signed(manifest([]), key))
    settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"))], [key])
    engine = engines(settings)
    await engine.start()
    try:
        assert engine.lifecycle.slot(STORAGE).current.candidate.provider == "scratch"
        lifted = entry("storage", "remote-local", factory="oneiric_core.providers.storage_local:create",
                       stack_level=50, settings={"root": "remote-storage"})
        server.serve("/m.json", signed(manifest([lifted], version=2), key))
        out = one(await engine.remote.sync_now())
        assert out.added == ["adapter/storage remote-local"] and len(out.proposals) == 1
        proposal = engine.approvals.get(out.proposals[0])
        assert (proposal.from_provider, proposal.to_provider, proposal.to_source, proposal.requested_by) == \
            ("scratch", "remote-local", "remote:acme", "remote:acme")
        assert engine.lifecycle.slot(STORAGE).current.candidate.provider == "scratch", "nothing swapped by itself"
    finally:
        await engine.stop()
