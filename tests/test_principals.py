"""Verified principals: the rules compare who the kernel says is asking, never a claimed name.

A real `oneiric run` host (as root) serves a state directory owned by root and a team group;
real OS users created for the test run the real CLI (tests/os_users.py). What is asserted is
what an operator sees: exit codes, the one sentence, the journal, what serves.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oneiric_core.errors import UsageError
from oneiric_core.principal import Principal, check_display
from oneiric_core.store import StateStore
from tests.helpers import FAST_APP, REPO, demo_copy, wait_until
from tests.os_users import os_users  # noqa: F401,F811  (the fixture)
from tests.test_change_control import Host, hosts, ok, one_sentence_error  # noqa: F401  (hosts: a fixture)

CACHE = ("--domain", "adapter", "--key", "cache")


def _settings(base: Path, extra: str = "") -> Path:
    settings = demo_copy(base)
    (settings / "app.yml").write_text(FAST_APP + extra)
    return settings


def _journal(state: Path, **filters):
    with StateStore(state / "state.sqlite") as store:
        return store.journal(limit=1000, **filters)


def _serving(state: Path, key: str = "cache") -> str | None:
    with StateStore(state / "state.sqlite") as store:
        snap = store.get_lifecycle("adapter", key)
        return snap.provider if snap else None


def _cli_as_root(settings: Path, state: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings),
                           "--state-dir", str(state), *args], capture_output=True, text=True, cwd=REPO, timeout=60)


# -- display names ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, why", [
    ("аlice", "looks like a Latin letter"),  # Cyrillic а
    ("alice\u202eecila", "invisible or control character U+202E"),
    ("al\x1bice", "invisible or control character U+001B"),
    ("aliceΩ", "mixes scripts"),
])
def test_a_display_name_that_could_pass_for_someone_else_is_refused(name, why):
    with pytest.raises(UsageError, match=re.escape(why)):
        check_display(name)


def test_names_compare_after_normalisation_and_case_folding():
    assert Principal("os-user", "Alice").id == Principal("os-user", "ａｌｉｃｅ").id == "os-user:alice"
    assert Principal("os-user", "alice", display="bob").id == "os-user:alice"
    assert Principal("os-user", "alice", display="ops shared").label == "alice (ops shared)"


# -- two OS users ------------------------------------------------------------------------------------

@pytest.fixture
def team(os_users, hosts):  # noqa: F811
    """alice and bob in the team group, eve outside it; a host (root) on a setgid state dir."""
    alice, bob, eve = os_users.add("alice"), os_users.add("bob"), os_users.add("eve", in_group=False)
    state = os_users.state_dir()
    settings = _settings(os_users.base, "approvals:\n  mode: manual\n  two_person: true\n")
    host = hosts(settings, state, os_users.base)
    host.expect("READY=1")
    return os_users, settings, state, alice, bob, eve


def test_two_person_rule_holds_across_os_users_whatever_they_call_themselves(team):
    users, settings, state, alice, bob, _ = team
    common = ("--settings", settings, "--state-dir", state)
    ok(users.run_as(alice, *common, "swap", *CACHE, "--provider", "sqlite", "--reason", "warm cache"))

    # alice calling herself bob is still alice: the two-person rule refuses her.
    res = users.run_as(alice, *common, "approve", "1", env={"ONEIRIC_OPERATOR": "bob"})
    one_sentence_error(res, 5, "two-person rule", f"os-user:{alice.name}")
    assert _serving(state) == "memory"

    res = ok(users.run_as(bob, *common, "approve", "1", "--comment", "looks right"))
    assert f"approved by {bob.name}" in res.stdout and "Swapped adapter/cache memory -> sqlite" in res.stdout
    assert _serving(state) == "sqlite"
    requested = _journal(state, kinds=["swap-requested"])[-1]
    approved = _journal(state, kinds=["swap-approved"])[-1]
    assert requested.actor == alice.name and requested.data["requested_by_id"] == f"os-user:{alice.name}"
    assert approved.actor == bob.name and approved.data["decided_by_id"] == f"os-user:{bob.name}"
    assert approved.data["via"] == "peer credentials"


def test_a_display_name_is_shown_next_to_the_principal_and_a_confusable_one_is_refused(team):
    users, settings, state, alice, _, _ = team
    common = ("--settings", settings, "--state-dir", state)
    res = ok(users.run_as(alice, *common, "pause", *CACHE, env={"ONEIRIC_OPERATOR": "ops shared"}))
    assert f"Paused adapter/cache (by {alice.name} (ops shared))" in res.stdout
    ok(users.run_as(alice, *common, "resume", *CACHE))

    res = users.run_as(alice, *common, "pause", *CACHE, env={"ONEIRIC_OPERATOR": "аlice"})
    one_sentence_error(res, 2, "looks like a Latin letter")
    assert [e.actor for e in _journal(state, kinds=["activity-changed"])] == [
        f"{alice.name} (ops shared)", alice.name]


def test_rights_are_checked_on_the_principal_and_a_refusal_names_the_missing_right(os_users, hosts):  # noqa: F811
    alice, bob = os_users.add("alice"), os_users.add("bob")
    state = os_users.state_dir()
    settings = _settings(os_users.base, f"access:\n  approve:\n    users: [{bob.name}]\n")
    hosts(settings, state, os_users.base).expect("READY=1")
    common = ("--settings", settings, "--state-dir", state)
    ok(users_swap := os_users.run_as(alice, *common, "swap", *CACHE, "--provider", "sqlite"))
    assert "waits for approval" in users_swap.stdout
    res = os_users.run_as(alice, *common, "approve", "1")
    one_sentence_error(res, 1, f"{alice.name} may not approve a proposal", "'approve' right", "access.approve")
    denied = _journal(state, kinds=["access-denied"])
    assert denied and denied[-1].actor == alice.name and denied[-1].data["kind"] == "approve"
    assert _serving(state) == "memory"
    ok(os_users.run_as(bob, *common, "approve", "1"))
    assert _serving(state) == "sqlite"


def test_someone_outside_the_group_cannot_reach_the_host(team):
    users, settings, state, _, _, eve = team
    res = users.run_as(eve, "--settings", settings, "--state-dir", state, "pause", *CACHE)
    assert res.returncode != 0 and "Traceback" not in res.stderr, str(res)
    assert _journal(state, kinds=["activity-changed"]) == []


def test_with_no_host_a_principal_who_cannot_write_the_state_dir_is_told_what_to_start(os_users):  # noqa: F811
    alice = os_users.add("alice")
    state = os_users.state_dir()
    settings = _settings(os_users.base)
    assert _cli_as_root(settings, state, "status").returncode == 0  # the store exists, no host runs
    res = os_users.run_as(alice, "--settings", settings, "--state-dir", state, "pause", *CACHE)
    one_sentence_error(res, 1, "No host runs for", f"{alice.name} cannot write it", "start a host as its owner (root)")
    with StateStore(state / "state.sqlite") as store:
        assert store.all_activity() == []


# -- rows the host did not write -----------------------------------------------------------------------

def test_a_forged_command_row_is_never_executed_and_is_journaled(tmp_path, hosts):  # noqa: F811
    settings = _settings(tmp_path)
    state = tmp_path / "state"
    hosts(settings, state, tmp_path).expect("READY=1")
    with sqlite3.connect(state / "state.sqlite") as db:  # what the old command queue would have run
        db.execute("INSERT INTO commands (kind, args, requested_by, created_at, status) "
                   "VALUES ('pause', '{\"domain\": \"adapter\", \"key\": \"cache\"}', 'mallory', ?, 'pending')",
                   (time.time(),))
    tampered = wait_until(lambda: _journal(state, kinds=["store-tampered"]), "a store-tampered event")
    assert "was not written by the host; it is never executed" in tampered[-1].message
    with StateStore(state / "state.sqlite") as store:
        assert store.all_activity() == []
        assert store.commands_after(0)[-1].status == "refused"


def test_a_revived_proposal_is_refused_and_journaled(tmp_path, hosts, run_cli, demo_settings):  # noqa: F811
    settings = demo_settings
    (settings / "app.yml").write_text(FAST_APP + "approvals:\n  mode: manual\n  expire_after_s: 0.5\n")
    state = tmp_path / "state"
    hosts(settings, state, tmp_path).expect("READY=1")
    ok(run_cli("swap", *CACHE, "--provider", "sqlite", settings=settings))
    time.sleep(0.6)  # let the proposal's own expiry pass (an outcome of the clock, not a wait for work)
    one_sentence_error(run_cli("approve", "1", settings=settings), 5, "is expired")
    with sqlite3.connect(state / "state.sqlite") as db:
        db.execute("UPDATE proposals SET status = 'pending', expires_at = ? WHERE id = 1", (time.time() + 3600,))
    res = run_cli("approve", "1", settings=settings)
    one_sentence_error(res, 5, "changed outside the host")
    assert _journal(state, kinds=["store-tampered"])[-1].data == {"table": "proposals", "id": 1}
    assert _serving(state) == "memory"
    assert _journal(state, kinds=["swap-approved"]) == []


# -- the Python API --------------------------------------------------------------------------------

def test_the_engine_api_has_no_swap_that_skips_the_proposal_path():
    from oneiric_core.engine import Engine

    assert not hasattr(Engine, "swap")
    assert hasattr(Engine, "request_swap") and hasattr(Engine, "approve")


def test_the_python_api_example_runs_as_written_and_goes_through_a_proposal(tmp_path):
    readme = (REPO / "docs" / "python-api.md").read_text()
    section = readme[readme.index("# Using the engine from Python"):]
    code = section[section.index("```python\n") + len("```python\n"):section.index("\n```", section.index("```python"))]
    (tmp_path / "example.py").write_text(code)
    demo_copy(tmp_path, fast=False)
    proc = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["pending None", "complete sqlite", "memory"]
    with StateStore(tmp_path / ".oneiric-example" / "state.sqlite") as store:
        kinds = [e.kind for e in store.journal(limit=1000, key="cache")
                 if e.kind.startswith("swap-")]
    requested = kinds.index("swap-requested")
    assert kinds[requested:requested + 4] == ["swap-requested", "swap-approved", "swap-started", "swap-complete"]


# -- a shared account: operators are told apart by their SSH keys --------------------------------------

def _ssh_key(directory: Path, name: str):
    from tests.test_sshsig import Key

    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    public = (directory / f"{name}.pub").read_text().strip()
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", str(path)], capture_output=True, text=True,
                                 check=True).stdout.split()[1]
    return Key(path, public, fingerprint)


def test_on_a_shared_account_ssh_signatures_name_the_requester_and_the_approver(
        tmp_path, hosts, run_cli, demo_settings):  # noqa: F811
    import shutil

    if shutil.which("ssh-keygen") is None or shutil.which("ssh-agent") is None:
        pytest.skip("OpenSSH's ssh-keygen and ssh-agent are needed to sign")
    from tests.helpers import LOGIN
    from tests.test_sshsig import Agent

    keys = tmp_path / "keys"
    keys.mkdir()
    alice, bob, mallory = (_ssh_key(keys, n) for n in ("alice", "bob", "mallory"))
    (demo_settings / "allowed_signers").write_text(
        f"alice@example.com {alice.public_line}\nbob@example.com {bob.public_line}\n")
    (demo_settings / "app.yml").write_text(
        FAST_APP + "approvals:\n  mode: manual\n  two_person: true\n"
        f"access:\n  allowed_signers: allowed_signers\n  shared_accounts: [{LOGIN}]\n")
    state = tmp_path / "state"
    hosts(demo_settings, state, tmp_path).expect("READY=1")
    agents = {name: Agent() for name in ("alice", "bob", "mallory")}
    try:
        for name, key in (("alice", alice), ("bob", bob), ("mallory", mallory)):
            agents[name].add(key)
        as_ = {name: {"SSH_AUTH_SOCK": a.socket} for name, a in agents.items()}

        one_sentence_error(run_cli("swap", *CACHE, "--provider", "sqlite"), 1, "shared account", "--sign")
        ok(run_cli("swap", *CACHE, "--provider", "sqlite", "--reason", "warm", "--sign", env=as_["alice"]))
        [pending] = ok(run_cli("approvals", "--json")).json()["pending"]
        requested = (pending["requested_by"], pending["requested_by_id"])
        assert requested == ("alice@example.com", "ssh-key:alice@example.com")

        one_sentence_error(run_cli("approve", "1"), 1, "shared account", "--sign")
        one_sentence_error(run_cli("approve", "1", "--sign", env=as_["mallory"]), 1, "does not hold")
        one_sentence_error(run_cli("approve", "1", "--sign", env=as_["alice"]), 5, "two-person rule")
        assert _serving(state) == "memory"

        res = ok(run_cli("approve", "1", "--sign", env=as_["bob"]))
        assert "approved by bob@example.com" in res.stdout
        assert _serving(state) == "sqlite"
        approved = _journal(state, kinds=["swap-approved"])[-1]
        assert approved.data["decided_by_id"] == "ssh-key:bob@example.com"
        assert bob.fingerprint in approved.data["via"] and LOGIN in approved.data["via"]
    finally:
        for running in agents.values():
            running.stop()


def test_an_activity_row_changed_behind_the_hosts_back_is_put_back_and_journaled(tmp_path, hosts, run_cli,  # noqa: F811
                                                                                  demo_settings):  # noqa: F811
    (demo_settings / "app.yml").write_text(FAST_APP)
    state = tmp_path / "state"
    hosts(demo_settings, state, tmp_path).expect("READY=1")
    with sqlite3.connect(state / "state.sqlite") as db:  # a pause nobody asked the host for
        db.execute("INSERT OR REPLACE INTO activity (domain, key, state, note, actor, updated_at) "
                   "VALUES ('adapter', 'cache', 'paused', 'sneaky', 'mallory', ?)", (time.time(),))
    tampered = wait_until(lambda: _journal(state, kinds=["store-tampered"]), "a store-tampered event")
    assert tampered[-1].data == {"table": "activity", "found": "paused", "kept": "active"}
    assert wait_until(lambda: ok(run_cli("activity", "--json")).json()["activity"] == [], "the row put back")
    res = ok(run_cli("pause", *CACHE, "--note", "asked properly"))  # through the host: accepted
    assert "the running host" in res.stdout
    [paused] = ok(run_cli("activity", "--json")).json()["activity"]
    assert paused["note"] == "asked properly"
