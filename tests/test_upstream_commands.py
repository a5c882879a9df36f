"""The command forms upstream Oneiric's CLI and runbooks print work here (issue 16 point 3):
the key as a word after the command, `pause KEY --resume`, `drain KEY --clear` and `--resume`,
`list --all` and `--show-shadowed`, the "Overall: N/M healthy" line, `version`, `doctor`,
`supervisor-info`. Where we differ on purpose (a swap waits for approval), the answer says how
to go on. Every command is a real subprocess against a copy of the demo.
"""

from __future__ import annotations

import re

from oneiric_core.errors import ExitCode


def test_explain_takes_the_key_as_a_word(run_cli):
    worded = run_cli("explain", "cache", "--domain", "adapter", "--json")
    flagged = run_cli("explain", "--domain", "adapter", "--key", "cache", "--json")
    assert worded.returncode == flagged.returncode == 0, worded.stderr
    assert worded.json() == flagged.json()
    assert worded.json()["winner"] == "memory"


def test_a_key_given_twice_or_not_at_all_is_one_sentence(run_cli):
    twice = run_cli("explain", "cache", "--key", "storage")
    assert twice.returncode == ExitCode.USAGE and twice.stderr.count("\n") == 1
    assert "given twice, as 'cache' and as --key 'storage'" in twice.stderr
    none = run_cli("pause")
    assert none.returncode == ExitCode.USAGE and "pause needs a key: 'oneiric pause KEY' or --key KEY" in none.stderr


def test_pause_resume_and_drain_clear_spellings(run_cli):
    assert run_cli("pause", "cache", "--note", "redis maintenance").returncode == 0
    assert run_cli("activity", "--json").json()["totals"]["paused"] == 1
    resumed = run_cli("pause", "cache", "--resume")
    assert resumed.returncode == 0 and resumed.stdout.startswith("Resumed adapter/cache")
    assert run_cli("activity", "--json").json()["activity"] == []
    for spelling in ("--clear", "--resume"):
        assert run_cli("drain", "cache", "--timeout", "1").returncode == 0
        assert run_cli("activity", "--json").json()["totals"]["drained"] == 1
        cleared = run_cli("drain", "cache", spelling)
        assert cleared.returncode == 0 and cleared.stdout.startswith("Resumed adapter/cache"), cleared.stderr
        assert run_cli("activity", "--json").json()["activity"] == []
    journal = run_cli("journal", "--json", "--kind", "activity-changed").json()["events"]
    said = [e["message"].split(" by ")[0] for e in journal if " by " in e["message"]]
    assert said.count("adapter/cache resumed") == 3 and said[0] == "adapter/cache paused", said


def test_swap_with_the_key_as_a_word_says_how_to_approve(run_cli):
    res = run_cli("swap", "cache", "--provider", "sqlite")
    assert res.returncode == 0, res.stderr
    assert "waits for approval ('oneiric approve 1')" in res.stdout
    assert run_cli("approvals", "--json").json()["pending"][0]["to_provider"] == "sqlite"


def test_list_all_and_show_shadowed(run_cli):
    everything = run_cli("list", "--all", "--json").json()["candidates"]
    assert everything == run_cli("list", "--json").json()["candidates"]
    shadowed = run_cli("list", "--show-shadowed", "--json").json()["candidates"]
    assert shadowed and not any(c["winner"] for c in shadowed)
    assert shadowed == run_cli("list", "--shadowed", "--json").json()["candidates"]


def test_health_ends_with_the_overall_line(run_cli):
    last = run_cli("health")
    assert last.stdout.rstrip().splitlines()[-1] == "Overall: 0/8 healthy"  # nothing probed yet
    probed = run_cli("health", "--probe")
    lines = probed.stdout.rstrip().splitlines()
    assert lines[-1].startswith("Overall: ") and lines[-1].endswith(" healthy")
    healthy, total = lines[-1].removeprefix("Overall: ").removesuffix(" healthy").split("/")
    table = [ln for ln in lines if re.match(r"(adapter|service|task|event|workflow|action)/", ln)]
    assert int(total) == len(table) == 8 and int(healthy) == sum(1 for ln in table if " OK " in f" {ln} ")
    assert probed.returncode == (ExitCode.UNHEALTHY if any(" FAILED " in f" {ln} " for ln in table) else 0)


def test_version_doctor_and_supervisor_info(run_cli):
    assert run_cli("version").stdout.startswith("oneiric ")
    doctor = run_cli("doctor", "--json")
    assert doctor.returncode == 0, doctor.stdout
    areas = {c["area"] for c in doctor.json()["checks"]}
    assert {"python", "settings", "journal", "runbooks"} <= areas
    info = run_cli("supervisor-info", "--json").json()
    assert info["host"] is None and info["supervision"] is None
    assert info["watcher"]["state"] == "down" and info["remote"][0]["name"] == "demo"
    text = run_cli("supervisor-info")
    assert "supervisor: unknown (no host has started here yet)" in text.stdout


def test_doctor_fails_on_a_broken_settings_file(run_cli, demo_settings):
    (demo_settings / "adapters.yml").write_text("selections: [\n")
    res = run_cli("doctor")
    assert res.returncode == ExitCode.ERROR
    assert any(ln.startswith("FAIL settings") and "adapters.yml" in ln for ln in res.stdout.splitlines())


def test_manifest_pack_sign_and_export_with_upstreams_flags(run_cli, demo_settings, tmp_path):
    entries = demo_settings / "manifests" / "demo-entries.yml"
    out = tmp_path / "packed.json"
    packed = run_cli("manifest", "pack", "--input", entries, "--output", out, "--name", "acme", "--version", "3")
    assert packed.returncode == 0, packed.stderr
    assert run_cli("manifest", "keygen", "--out", tmp_path / "k" / "acme.pem").returncode == 0
    signed = run_cli("manifest", "sign", "--input", out, "--private-key", tmp_path / "k" / "acme.pem",
                     "--output", tmp_path / "signed.json", "--expires-at", "2099-01-01T00:00:00", "--append")
    assert signed.returncode == 0, signed.stderr
    data = (tmp_path / "signed.json").read_text()
    assert '"expires_at": "2099-01-01T00:00:00Z"' in data
    assert run_cli("manifest", "verify", tmp_path / "signed.json", "--public-key",
                   tmp_path / "k" / "acme.pem.pub").returncode == 0
    unnamed = run_cli("manifest", "pack", "--input", entries)
    assert unnamed.returncode == ExitCode.USAGE and "add --name NAME --version N" in unnamed.stderr
    compact = run_cli("manifest", "pack", entries, "--name", "acme", "--version", "1", "--compact")
    assert compact.stdout.count("\n") == 1 and '"name":"acme"' in compact.stdout
    exported = run_cli("manifest", "export", "--name", "local", "--version", "2", "--output", tmp_path / "e.json")
    assert exported.returncode == 0, exported.stderr
    manifest = __import__("json").loads((tmp_path / "e.json").read_text())
    assert {(e["key"], e["provider"]) for e in manifest["entries"]} == {("cache", "memory-large"),
                                                                      ("storage", "scratch")}


def test_remote_sync_manifest_once_into_a_running_host(run_cli, demo_settings, tmp_path, cli_env):
    import subprocess
    import sys
    import time

    state = tmp_path / "state"
    host = subprocess.Popen([sys.executable, "-m", "oneiric_core.cli", "--settings", str(demo_settings),
                             "--state-dir", str(state), "run"], cwd=tmp_path, env=cli_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not ((run_cli("status", "--json").json().get("host") or {}).get("alive")):
            assert time.monotonic() < deadline and host.poll() is None, "the host did not start"
            time.sleep(0.2)
        res = run_cli("remote-sync", "--manifest", "file:manifests/demo.json")
        assert res.returncode == 0, res.stdout + res.stderr
        assert "remote:manifest: oneiric-demo v2" in res.stdout
        assert "note: its entries stay registered until the host stops" in res.stdout
        listed = run_cli("list", "--json").json()["candidates"]
        assert any(c["source"] == "remote:manifest" and c["provider"] == "memory-remote" for c in listed)
        both = run_cli("remote-sync", "--manifest", "file:manifests/demo.json", "--source", "demo")
        assert both.returncode == ExitCode.USAGE and "not both" in both.stderr
        unsigned = tmp_path / "unsigned.json"
        unsigned.write_text('{"source": "x", "entries": []}')
        plain = run_cli("remote-sync", "--manifest", "https://127.0.0.1:1/none.json")
        assert plain.returncode == ExitCode.REMOTE and "sync failed" in plain.stderr
    finally:
        host.terminate()
        host.wait(30)
