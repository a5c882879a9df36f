"""The remote commands through the real `oneiric` CLI, in subprocesses: keygen -> pack -> sign ->
verify, remote-sync and remote-status with and without a running host, exit codes."""

from __future__ import annotations

import json
import stat
import textwrap
from pathlib import Path

from tests.helpers import start_host_process

ENTRIES = textwrap.dedent("""\
    - domain: adapter
      key: cache
      provider: acme-memory
      factory: oneiric_core.providers.cache_memory:create
      settings: {max_entries: 64}
    - domain: action
      key: compress
      provider: acme-zlib
      factory: oneiric_core.providers.compress:create_zlib
    """)


def no_traceback(result) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, str(result)


def test_keygen_pack_sign_verify_round_trip(run_cli, tmp_path):
    key = tmp_path / "ops.pem"
    made = run_cli("manifest", "keygen", "--out", key, "--key-id", "ops-1", "--json")
    assert made.returncode == 0, str(made)
    info = made.json()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pub = json.loads((tmp_path / "ops.pem.pub").read_text())
    assert pub == {"id": "ops-1", "public_key": info["public_key"]}
    again = run_cli("manifest", "keygen", "--out", key)
    assert again.returncode == 1 and "already exists" in again.stderr and key.read_bytes(), str(again)

    (tmp_path / "entries.yml").write_text(ENTRIES)
    packed = run_cli("manifest", "pack", "entries.yml", "--name", "acme", "--version", "7", "--out", "m.json")
    assert packed.returncode == 0, str(packed)
    unsigned = run_cli("manifest", "verify", "m.json", "--public-key", "ops.pem.pub")
    assert unsigned.returncode == 6 and "not signed" in unsigned.stderr, str(unsigned)
    never = run_cli("manifest", "sign", "m.json", "--key", key)
    assert never.returncode == 1 and "m.json has no expires_at; give --expires-in" in never.stderr, str(never)
    signed = run_cli("manifest", "sign", "m.json", "--key", key, "--expires-in", "30d")
    assert signed.returncode == 0 and "ops-1" in signed.stdout and "acme v7, expires 20" in signed.stdout, str(signed)
    checked = run_cli("manifest", "verify", "m.json", "--public-key", "ops.pem.pub", "--json")
    assert checked.returncode == 0, str(checked)
    report = checked.json()
    assert report["ok"] and report["signature"]["key_ids"] == ["ops-1"] and report["accepted"] == 2

    # a second key: threshold 2 needs both; one key signing twice does not count twice
    run_cli("manifest", "keygen", "--out", "ops2.pem", "--key-id", "ops-2")
    both = ["--public-key", "ops.pem.pub", "--public-key", "ops2.pem.pub", "--threshold", "2"]
    assert run_cli("manifest", "sign", "m.json", "--key", key).returncode == 0  # replaces, never duplicates
    assert len(json.loads((tmp_path / "m.json").read_text())["signatures"]) == 1
    short = run_cli("manifest", "verify", "m.json", *both)
    assert short.returncode == 6 and "1 of the 2" in short.stderr, str(short)
    assert run_cli("manifest", "sign", "m.json", "--key", "ops2.pem").returncode == 0
    assert run_cli("manifest", "verify", "m.json", *both).returncode == 0

    other_public = json.loads((tmp_path / 'ops2.pem.pub').read_text())['public_key']
    wrong = run_cli("manifest", "verify", "m.json", "--public-key", f"ops-1={other_public}")
    assert wrong.returncode == 6 and "did not match: ops-1" in wrong.stderr, str(wrong)
    data = json.loads((tmp_path / "m.json").read_text())
    data["entries"][0]["settings"]["max_entries"] = 10**9
    (tmp_path / "tampered.json").write_text(json.dumps(data))
    tampered = run_cli("manifest", "verify", "tampered.json", "--public-key", "ops.pem.pub")
    assert tampered.returncode == 6 and tampered.stderr.count("\n") == 1, str(tampered)
    for result in (again, unsigned, never, short, wrong, tampered):
        no_traceback(result)

    (tmp_path / "bad.yml").write_text(ENTRIES.replace("oneiric_core.providers.compress", "evil.module"))
    refused = run_cli("manifest", "pack", "bad.yml", "--name", "x", "--version", "1")
    assert refused.returncode == 1 and "factory_allowlist" in refused.stderr, str(refused)
    no_traceback(refused)


def test_remote_sync_and_status_without_and_with_a_host(run_cli, demo_settings, tmp_path):
    status = run_cli("remote-status", "--json")
    assert status.returncode == 0, str(status)
    source = status.json()["sources"][0]
    assert (source["name"], source["state"], source["manifest"]) == ("demo", "pending", None)

    dry = run_cli("remote-sync", "--dry-run")
    assert dry.returncode == 0 and "would apply oneiric-demo v2 (2 added" in dry.stdout, str(dry)
    assert "+ adapter/cache memory-remote" in dry.stdout
    assert run_cli("remote-status", "--json").json()["sources"][0]["state"] == "pending", "a dry run changes nothing"

    synced = run_cli("remote-sync", "--json")
    assert synced.returncode == 0, str(synced)
    assert synced.json()["results"][0]["counts"]["added"] == 2
    shown = run_cli("remote-status", "--json").json()["sources"][0]
    assert shown["state"] == "ok" and shown["signature"]["key_ids"] == ["oneiric-demo-2026"]
    assert shown["entries"] == {"adapter": 1, "action": 1} and shown["breaker"]["state"] == "closed"
    listed = run_cli("list", "--json", "--key", "cache").json()["candidates"]
    assert ("memory-remote", "remote:demo") in {(c["provider"], c["source"]) for c in listed}

    host = start_host_process(demo_settings, tmp_path / "state")
    try:
        via_host = run_cli("remote-sync", "--json")
        assert via_host.returncode == 0, str(via_host)
        assert "on the running host (pid" in via_host.json()["message"]
        text = run_cli("remote-status")
        assert text.returncode == 0 and f"reported by pid {host.pid}" in text.stdout, str(text)
        assert "signature: verified (keys: oneiric-demo-2026" in text.stdout
        unknown = run_cli("remote-sync", "--source", "nope")
        assert unknown.returncode == 3 and "No remote source is named 'nope'" in unknown.stderr, str(unknown)
    finally:
        host.kill()
        host.wait()


def test_a_failing_source_exits_6_with_one_sentence(run_cli, demo_settings):
    manifest = demo_settings / "manifests" / "demo.json"
    data = json.loads(manifest.read_text())
    data["entries"][0]["priority"] = 999  # changed after signing
    manifest.write_text(json.dumps(data))
    failed = run_cli("remote-sync")
    assert failed.returncode == 6, str(failed)
    assert "signature" in failed.stderr and "stays in force" in failed.stderr
    no_traceback(failed)
    status = run_cli("remote-status", "--json")
    assert status.returncode == 6
    source = status.json()["sources"][0]
    assert (source["state"], source["last_error_kind"], source["consecutive_failures"]) == ("failing", "signature", 1)
    assert Path(manifest).exists()


def test_version_and_expiry_through_the_cli(run_cli, tmp_path):
    """pack takes an integer version and --expires-in; sign sets the expiry (and version) and drops
    the signatures that no longer match; verify reports both and says when it has expired; a bad
    duration or version is one sentence."""
    run_cli("manifest", "keygen", "--out", "a.pem", "--key-id", "a")
    run_cli("manifest", "keygen", "--out", "b.pem", "--key-id", "b")
    (tmp_path / "entries.yml").write_text(ENTRIES)
    bad_version = run_cli("manifest", "pack", "entries.yml", "--name", "acme", "--version", "1.5")
    assert bad_version.returncode == 2 and "the version must be an integer of at least 1, not '1.5'" in \
        bad_version.stderr, str(bad_version)
    packed = run_cli("manifest", "pack", "entries.yml", "--name", "acme", "--version", "3", "--expires-in", "12h",
                     "--out", "m.json")
    assert packed.returncode == 0 and "acme v3 with 2 entries, expires 20" in packed.stdout, str(packed)
    bad_duration = run_cli("manifest", "sign", "m.json", "--key", "a.pem", "--expires-in", "30 days")
    assert bad_duration.returncode == 2 and bad_duration.stderr.count("\n") == 1, str(bad_duration)
    assert "'30 days' is not a duration: give a number and a unit (s, m, h, d or w), such as 30d, 12h or 90m" in \
        bad_duration.stderr
    assert run_cli("manifest", "sign", "m.json", "--key", "a.pem").returncode == 0  # keeps pack's expiry
    assert run_cli("manifest", "sign", "m.json", "--key", "b.pem").returncode == 0
    both = ["--public-key", "a.pem.pub", "--public-key", "b.pem.pub", "--threshold", "2"]
    checked = run_cli("manifest", "verify", "m.json", *both)
    assert checked.returncode == 0 and "acme v3 verifies" in checked.stdout, str(checked)
    assert "\nexpires: 20" in checked.stdout and "Z (in 1" in checked.stdout  # 12.0h, or 11.9h on a slow day

    resigned = run_cli("manifest", "sign", "m.json", "--key", "a.pem", "--expires-in", "90m", "--version", "4")
    assert resigned.returncode == 0, str(resigned)
    assert "acme v4, expires" in resigned.stdout and "Dropped the signature(s) of b" in resigned.stdout
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["version"] == 4 and [s["key_id"] for s in data["signatures"]] == ["a"]
    report = run_cli("manifest", "verify", "m.json", "--public-key", "a.pem.pub", "--json").json()
    assert report["ok"] and report["manifest"]["version"] == 4 and report["expiry"]["state"] == "valid"
    assert 0 < report["expiry"]["seconds_left"] <= 5400

    from oneiric_core.remote import signing

    data["expires_at"] = "2026-01-01T00:00:00Z"  # signed by our API, which does not judge freshness
    key = signing.load_private_key((tmp_path / "a.pem").read_bytes())
    (tmp_path / "old.json").write_text(json.dumps(signing.sign_manifest(data, key, "a")))
    expired = run_cli("manifest", "verify", "old.json", "--public-key", "a.pem.pub")
    assert expired.returncode == 6 and expired.stderr.count("\n") == 1, str(expired)
    assert "old.json (acme v4) is signed but expired at 2026-01-01T00:00:00Z (" in expired.stderr
    refused = run_cli("manifest", "sign", "old.json", "--key", "a.pem")
    assert refused.returncode == 1 and "old.json expired at 2026-01-01T00:00:00Z" in refused.stderr, str(refused)
    for result in (bad_version, bad_duration, expired, refused):
        no_traceback(result)


def test_syncs_run_from_the_cli_with_no_host_keep_the_counters_a_host_would(run_cli, tmp_path):
    """Each CLI sync is its own process: every one takes up the status the last one recorded
    (four failures then a success read 4 failures, 1 sync and a last success, not zeros)."""
    from tests.remote_helpers import Key, Route, entry, manifest, remote_settings, signed, start_server

    key = Key.new("acme-1")
    server = start_server()
    try:
        (tmp_path / "acme").mkdir()
        settings = remote_settings(tmp_path / "acme", [{"name": "acme", "uri": server.url("/m.json"),
                                                        "interval_s": 3600,
                                               "timeout": 2.0, "retries": 0, "backoff_s": 0.01}], [key])
        server.set("/m.json", Route(b"down for maintenance", status=503))
        for attempt in range(1, 5):
            failed = run_cli("remote-sync", settings=settings)
            assert failed.returncode == 6, str(failed)
            no_traceback(failed)
            [shown] = run_cli("remote-status", "--json", settings=settings).json()["sources"]
            assert (shown["consecutive_failures"], shown["total_failures"]) == (attempt, attempt)
        assert shown["last_success_at"] is None and shown["breaker"]["failures"] == 4

        server.serve("/m.json", signed(manifest([entry()]), key))
        good = run_cli("remote-sync", settings=settings)
        assert good.returncode == 0, str(good)
        [shown] = run_cli("remote-status", "--json", settings=settings).json()["sources"]
        assert (shown["state"], shown["consecutive_failures"], shown["total_failures"], shown["total_syncs"]) == (
            "ok", 0, 4, 1)
        assert shown["last_success_at"] is not None and shown["last_error_kind"] == "http-status"
        text = run_cli("remote-status", settings=settings).stdout
        assert "failures: 0 consecutive, 4 total" in text and "last success never" not in text, text

        again = run_cli("remote-sync", settings=settings)  # unchanged (304 or the same manifest)
        assert again.returncode == 0, str(again)
        [shown] = run_cli("remote-status", "--json", settings=settings).json()["sources"]
        assert (shown["total_failures"], shown["total_syncs"]) == (4, 2)
    finally:
        server.close()
