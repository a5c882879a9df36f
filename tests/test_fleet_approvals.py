"""Deciding another node's proposal, and reading another node (issue 18 point 5): proposal ids
are one sequence in a fleet store and a proposal carries its node, so `oneiric approve N` from
anywhere sends the decision to that node's host through the store, which decides it with its
own rules (the two-person rule between database roles) and journals it on its node; a node
whose host is not running is one sentence. `oneiric status web-2:cache` (and explain, health)
show what web-2 serves, from the store. Real hosts (`oneiric run --node`), a real PostgreSQL,
real database roles."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_until
from tests.pg import demo_on_store, fresh_schema, require_pg
from tests.test_nodes import nodes, start_node


@dataclass
class Fleet:
    settings: Path
    url: str
    hosts: dict[str, subprocess.Popen[bytes]]
    other_role: str  # a second operator: a LOGIN role, member of oneiric_operator
    keys: dict[str, Any]  # ssh keys: bob's is in the fleet's allowed_signers, mallory's is not

    def as_other(self) -> dict[str, str]:
        """The environment of a CLI that connects as the other operator's role."""
        return {"ONEIRIC_STORE_URL": self.url.replace("postgresql://", f"postgresql://{self.other_role}@", 1)}


def _stop(host: subprocess.Popen[bytes]) -> None:
    if host.poll() is None:
        host.send_signal(signal.SIGTERM)
        try:
            host.wait(30)
        except subprocess.TimeoutExpired:
            host.kill()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Hosts web-1 and web-2 on one fresh schema, the two-person rule on, SSH-signed decisions
    accepted from bob's key (when OpenSSH is here), and a second operator role beside root (who
    the tests' own connections are)."""
    import psycopg

    base = require_pg()
    role = f"oneiric_test_alice_{uuid.uuid4().hex[:8]}"
    with fresh_schema() as url, psycopg.connect(base, autocommit=True) as admin:
        settings = demo_on_store(tmp_path / "fleet-settings", url)
        app = settings / "app.yml"
        app.write_text(app.read_text().replace("two_person: false", "two_person: true"))
        keys: dict[str, Any] = {}
        if shutil.which("ssh-keygen") is not None:
            from tests.test_principals import _ssh_key

            (tmp_path / "keys").mkdir()
            keys = {n: _ssh_key(tmp_path / "keys", n) for n in ("bob", "mallory")}
            (settings / "allowed_signers").write_text(f"bob@example.com {keys['bob'].public_line}\n")
            with app.open("a") as text:
                text.write("access:\n  allowed_signers: allowed_signers\n")
        hosts = {n: start_node(settings, tmp_path / f"state-{n}", n, tmp_path / f"{n}.log") for n in ("web-1", "web-2")}
        try:
            wait_until(what="both hosts to be ready", timeout=60, poll=0.2, predicate=lambda: (
                (found := nodes(settings, tmp_path / "cli")) and len(found) == 2
                and all(n.get("reported_at") for n in found.values())))
            admin.execute(f"CREATE ROLE {role} LOGIN")
            admin.execute(f"GRANT oneiric_operator TO {role}")
            yield Fleet(settings, url, hosts, role, keys)
        finally:
            for host in hosts.values():
                _stop(host)
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def _propose(run_cli, fleet: Fleet, ref: str, provider: str) -> int:
    res = run_cli("--node", "ops", "swap", ref, "--provider", provider, "--json", settings=fleet.settings)
    assert res.returncode == 0, str(res)
    return int(json.loads(res.stdout)["proposal"]["id"])


def _serving(run_cli, fleet: Fleet, node: str) -> str | None:
    res = run_cli("status", f"{node}:cache", "--json", settings=fleet.settings)
    assert res.returncode == 0, str(res)
    (cache,) = json.loads(res.stdout)["components"]
    return cache["serving"]


def test_another_nodes_proposal_is_decided_by_that_nodes_host_with_its_rules(run_cli, fleet: Fleet) -> None:
    proposal = _propose(run_cli, fleet, "web-2:cache", "sqlite")  # asked by db-role:root, on web-2

    # the same role as the requester: web-2's host refuses it by the two-person rule
    res = run_cli("--node", "web-1", "approve", str(proposal), settings=fleet.settings)
    assert res.returncode == 5, str(res)
    assert res.stdout == ""
    assert f"Proposal #{proposal} was requested by" in res.stderr and "the two-person rule needs another " \
        "operator to approve it (you are db-role:root)" in res.stderr, str(res)

    # another operator's role, from a CLI of a node that is neither
    res = run_cli("--node", "laptop-7", "approve", str(proposal), "--comment", "checked", settings=fleet.settings,
                  env=fleet.as_other())
    assert res.returncode == 0, str(res)
    assert res.stdout.startswith("Swapped adapter/cache memory -> sqlite"), str(res)
    assert f"approved by {fleet.other_role}" in res.stdout, str(res)

    wait_until(what="web-2 to report sqlite", timeout=20, poll=0.2,
               predicate=lambda: _serving(run_cli, fleet, "web-2") == "sqlite")
    assert _serving(run_cli, fleet, "web-1") == "memory"  # only web-2 swapped
    events = json.loads(run_cli("journal", "--json", "--kind", "swap-approved", "--kind", "swap-complete",
                                settings=fleet.settings).stdout)["events"]
    swapped = [(e["kind"], e["node"]) for e in events if e["provider"] == "sqlite"]
    assert swapped == [("swap-approved", "web-2"), ("swap-complete", "web-2")], events
    (approved,) = [e for e in events if e["kind"] == "swap-approved"]
    assert approved["data"]["decided_by_id"] == f"db-role:{fleet.other_role}", approved
    every = json.loads(run_cli("approvals", "--fleet", "--json", settings=fleet.settings).stdout)
    (decided,) = [p for p in every["recent"] if p["id"] == proposal]
    assert (decided["node"], decided["status"], decided["comment"]) == ("web-2", "applied", "checked")

    # a rejection goes the same way (the two-person rule is for approving)
    second = _propose(run_cli, fleet, "web-1:cache", "sqlite")
    res = run_cli("--node", "web-2", "reject", str(second), settings=fleet.settings)
    assert res.returncode == 0 and res.stdout.startswith(f"Rejected proposal #{second}"), str(res)
    (rejected,) = json.loads(run_cli("journal", "--json", "--kind", "swap-rejected",
                                     settings=fleet.settings).stdout)["events"]
    assert rejected["node"] == "web-1"


def test_a_signed_approval_of_another_nodes_proposal_is_checked_by_that_nodes_host(run_cli, fleet: Fleet) -> None:
    if not fleet.keys or shutil.which("ssh-agent") is None:
        pytest.skip("OpenSSH's ssh-keygen and ssh-agent are needed to sign")
    from tests.test_sshsig import Agent

    proposal = _propose(run_cli, fleet, "web-2:cache", "sqlite")
    agents = {name: Agent() for name in fleet.keys}
    try:
        for name, key in fleet.keys.items():
            agents[name].add(key)
        res = run_cli("--node", "web-1", "approve", str(proposal), "--sign", settings=fleet.settings,
                      env={"SSH_AUTH_SOCK": agents["mallory"].socket})
        assert res.returncode == 1 and res.stdout == "", str(res)
        assert f"The signature on this approve of proposal #{proposal} does not hold" in res.stderr, str(res)

        res = run_cli("--node", "web-1", "approve", str(proposal), "--sign", settings=fleet.settings,
                      env={"SSH_AUTH_SOCK": agents["bob"].socket})
        assert res.returncode == 0, str(res)
        assert "approved by bob@example.com" in res.stdout, str(res)
    finally:
        for running in agents.values():
            running.stop()
    (approved,) = json.loads(run_cli("journal", "--json", "--kind", "swap-approved",
                                     settings=fleet.settings).stdout)["events"]
    assert (approved["node"], approved["data"]["decided_by_id"]) == ("web-2", "ssh-key:bob@example.com")


def test_a_proposal_of_a_node_whose_host_is_not_running_is_one_sentence(run_cli, fleet: Fleet) -> None:
    proposal = _propose(run_cli, fleet, "web-2:cache", "sqlite")
    _stop(fleet.hosts["web-2"])
    res = run_cli("--node", "web-1", "approve", str(proposal), "--wait", "5", settings=fleet.settings,
                  env=fleet.as_other())
    assert res.returncode == 1, str(res)
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"oneiric: Proposal #{proposal} is node web-2's, and no host of web-2 is running (its host stopped "), str(res)
    assert lines[0].endswith("only that node's host can decide it, so nothing was decided; start it and try again.")
    every = json.loads(run_cli("approvals", "--fleet", "--json", settings=fleet.settings).stdout)
    assert [p["id"] for p in every["pending"]] == [proposal]  # still pending: nothing was sent
    requests = json.loads(run_cli("journal", "--json", "--kind", "swap-approved", settings=fleet.settings).stdout)
    assert requests["events"] == []


def test_status_explain_and_health_of_another_node_read_that_nodes_view(run_cli, fleet: Fleet) -> None:
    res = run_cli("pause", "web-2:cache", settings=fleet.settings, env=fleet.as_other())
    assert res.returncode == 0, str(res)
    res = run_cli("status", "web-2:cache", settings=fleet.settings)
    assert res.returncode == 0, str(res)
    assert "node: web-2 (read from the store" in res.stdout, res.stdout
    row = next(line for line in res.stdout.splitlines() if line.startswith("adapter/cache"))
    assert row.split()[:6] == ["adapter/cache", "memory", "(builtin)", "memory", "ready", "paused"], row
    mine = run_cli("--node", "web-1", "status", "--key", "cache", "--json", settings=fleet.settings)
    assert [c["activity"] for c in json.loads(mine.stdout)["components"]] == ["active"]

    res = run_cli("explain", "web-2:cache", settings=fleet.settings)
    assert res.returncode == 0, str(res)
    line = res.stdout.splitlines()[1]
    assert line.startswith("node web-2: serving memory (ready, paused), health ok") and "; host: pid " in line, line
    data = json.loads(run_cli("explain", "web-2:cache", "--json", settings=fleet.settings).stdout)
    assert (data["node"]["node"], data["node"]["serving"], data["node"]["activity"]) == ("web-2", "memory", "paused")
    assert "node" not in json.loads(run_cli("explain", "cache", "--json", settings=fleet.settings).stdout)

    res = run_cli("health", "web-2:cache", "--json", settings=fleet.settings)
    assert res.returncode == 0, str(res)
    (result,) = json.loads(res.stdout)["results"]
    assert (result["key"], result["provider"], result["status"]) == ("cache", "memory", "ok")


def test_another_node_of_a_sqlite_store_is_one_sentence_for_reads_too(run_cli) -> None:
    for command in ("status", "explain", "health"):
        res = run_cli(command, "web-2:cache")
        assert res.returncode == 2, str(res)
        assert res.stderr.startswith("oneiric: The store ") and "is one node's (a SQLite file): there is no node " \
            "web-2 to show" in res.stderr, str(res)
    res = run_cli("list", "--key", "web-2:cache")
    assert res.returncode == 2, str(res)
    assert res.stderr.strip() == ("oneiric: list takes no NODE: before the key yet; drain, explain, health, pause, "
                                  "resume, status, swap do (docs/fleet.md).")
