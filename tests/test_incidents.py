"""Incidents: store, timeline merging walker steps + approvals + journal events, exports, CLI."""

from __future__ import annotations

from oneiric_core.runbooks.export import handoff, md, postmortem
from oneiric_core.runbooks.incidents import Incidents
from oneiric_core.runbooks.loader import load_catalog
from oneiric_core.runbooks.walker import Walker
from oneiric_core.store import SCHEMA_VERSION
from tests.helpers import DEMO
from tests.helpers import shown as shown_as


async def test_postmortem_has_steps_approver_and_events(engine):
    incidents = Incidents(engine)
    inc = incidents.open("cache blocked", "P1", commander="alice")
    assert inc.status == "open" and inc.commander == "alice"
    engine.pause("adapter", "cache", note="oops", actor="carol")
    engine.settings.app.approvals  # noqa: B018 - the engine's policy is the demo's (manual)
    walker = Walker(load_catalog(DEMO), "proc-hot-swap", engine, params={"domain": "adapter", "key": "cache",
                                                                           "target": "sqlite"}, actor="alice")
    incidents.attach_walk(inc.id, walker)
    await walker.advance()
    # a paused key would refuse the swap: the procedure finds the pause and offers to resume first
    assert walker.node.id == "blocked-ask"
    walker.answer("resume it")
    assert (await walker.perform()).outcome == "done"
    assert walker.node.id == "swap"
    outcome = await walker.perform()
    assert outcome.pending
    await engine.approve(outcome.proposal_id, actor="bob")
    assert (await walker.wait(timeout=10)).outcome == "applied"
    await walker.advance()
    assert walker.node.id == "persist"
    walker.answer("write it into settings")  # the walk writes the selection itself
    assert (await walker.perform()).message == "wrote the selection cache: sqlite to adapters.yml"
    await walker.advance()  # the settings select what serves now
    assert walker.node.id == "done", walker.breadcrumb()
    incidents.note(inc.id, "sqlite is serving", actor="alice")
    incidents.close(inc.id, "swapped cache to sqlite", actor="alice", root_cause="redis down",
                    follow_ups=["alert on rollbacks"])

    timeline = incidents.timeline(inc.id)
    kinds = {e.kind for e in timeline}
    assert {"status", "step", "answer", "action", "note", "event"} <= kinds
    journal_kinds = {e.data.get("kind") for e in timeline if e.kind == "event"}
    assert {"activity-changed", "swap-requested", "swap-approved", "swap-complete"} <= journal_kinds
    actions = incidents.approvals(inc.id)
    swap = next(a for a in actions if a["proposal"])
    assert swap["approved_by"] == "bob" and swap["outcome"] == "applied" and swap["requested_by"] == "alice"

    text = postmortem(incidents, inc.id)
    for needle in ("# Post-mortem: incident #", "## Summary", "## Impact", "## Timeline", "## Actions and approvals",
                   "## Root cause", "redis down", "## Follow-ups", "alert on rollbacks", "| bob |",
                   "swap-complete", "activity-changed", "\\[proc-hot-swap\\]", "sqlite is serving"):  # Markdown-escaped
        assert needle in text, needle
    hand = handoff(incidents, inc.id)
    assert "## Diagnostics done" in hand and "## Solutions attempted" in hand and "approved by bob" in hand
    assert "adapter/cache: ready, serving sqlite" in hand


def test_schema_has_incident_tables(tmp_path):
    from oneiric_core.store import StateStore

    with StateStore(tmp_path / "s.sqlite") as store:
        assert store.schema_version == SCHEMA_VERSION >= 4
        assert store._read("SELECT COUNT(*) FROM incidents")[0][0] == 0


def test_cli_runbooks_and_incidents(run_cli, tmp_path):
    listed = run_cli("runbook", "list", "--json")
    assert listed.returncode == 0, listed
    rows = {r["id"]: r for r in listed.json()["runbooks"]}
    assert "hot-swap-failed" in rows and not rows["hot-swap-failed"]["overdue"]
    shown = run_cli("runbook", "show", "component-not-found")
    assert shown.returncode == 0 and "key.activity" in shown.stdout
    missing = run_cli("runbook", "show", "nope")
    assert missing.returncode == 3 and missing.stderr.count("\n") == 1 and "nope" in missing.stderr
    check = run_cli("runbook", "check")
    assert check.returncode == 0 and "config.parse" in check.stdout and "check(s)" in check.stdout
    # with no host running, a missing watcher is not a finding: nothing needs one
    assert "-- watcher.alive: no-host" in check.stdout and "!! watcher.alive" not in check.stdout

    opened = run_cli("incident", "open", "--severity", "P1", "--title", "cache down", "--component", "adapter/cache",
                     "--json")
    assert opened.returncode == 0, opened
    inc_id = opened.json()["id"]
    assert run_cli("incident", "note", inc_id, "looking at redis").returncode == 0
    bad = run_cli("incident", "open", "--severity", "P9", "--title", "x")
    assert bad.returncode == 2 and "P9" in bad.stderr
    assert run_cli("pause", "--domain", "adapter", "--key", "cache", "--note", "test").returncode == 0
    closed = run_cli("incident", "close", inc_id, "--resolution", "restarted redis", "--follow-up", "add alert")
    assert closed.returncode == 0, closed
    out = tmp_path / "pm.md"
    exported = run_cli("incident", "export", inc_id, "--format", "md", "--out", out)
    assert exported.returncode == 0, exported
    text = out.read_text()
    assert "looking at redis" in text and "restarted redis" in text and "activity-changed" in text
    hand = run_cli("incident", "export", inc_id, "--format", "md", "--handoff")
    assert hand.returncode == 0 and "# Escalation hand-off" in hand.stdout
    shown = run_cli("incident", "show", inc_id, "--json")
    assert shown.json()["status"] == "closed" and shown.json()["commander"] == shown_as("tester")
    assert run_cli("incident", "show", 999).returncode == 3


def test_cli_runbook_list_flags_broken_and_overdue(run_cli, demo_settings):
    (demo_settings / "runbooks" / "old.yml").write_text(
        "id: old\ntitle: Old\nreviewed: 2020-01-01\nnext_review: 2020-04-01\nnodes:\n  - {id: a, kind: done}\n")
    (demo_settings / "runbooks" / "broken.yml").write_text(
        "id: broken\ntitle: B\nreviewed: 2020-01-01\nnext_review: 2030-01-01\n"
        "nodes:\n  - {id: a, kind: check, fact: key.activity, default: gone}\n")
    listed = run_cli("runbook", "list")
    assert listed.returncode == 1
    assert "OVERDUE" in next(line for line in listed.stdout.splitlines() if line.startswith("old"))
    assert "broken.yml" in listed.stderr and "node 'a'" in listed.stderr and "gone" in listed.stderr


def test_cli_incident_update_changes_severity_on_the_timeline(run_cli):
    opened = run_cli("incident", "open", "--severity", "P2", "--title", "cache slow", "--component", "adapter/cache",
                     "--json")
    inc_id = opened.json()["id"]
    updated = run_cli("incident", "update", inc_id, "--severity", "p1")
    assert updated.returncode == 0, updated
    assert "severity P2 -> P1" in updated.stdout and "respond within 15 min" in updated.stdout
    shown = run_cli("incident", "show", inc_id, "--json").json()
    assert shown["severity"] == "P1"
    changes = [e for e in shown["timeline"] if e["kind"] == "status" and "P2 -> P1" in e["text"]]
    assert len(changes) == 1 and changes[0]["actor"] == shown_as("tester")
    journaled = run_cli("journal", "--kind", "incident-updated", "--json")
    assert journaled.returncode == 0 and "P2 -> P1" in journaled.stdout
    # usage errors: a bad severity, nothing to change, a closed incident; an unknown one is not found
    assert run_cli("incident", "update", inc_id, "--severity", "P7").returncode == 2
    assert run_cli("incident", "update", inc_id).returncode == 2
    assert run_cli("incident", "update", 999, "--severity", "P0").returncode == 3
    assert run_cli("incident", "close", inc_id, "--resolution", "fixed").returncode == 0
    refused = run_cli("incident", "update", inc_id, "--severity", "P0")
    assert refused.returncode == 2 and "closed" in refused.stderr


async def test_a_walk_is_a_look_until_its_first_change_opens_the_incident(engine):
    """Walking component-not-found on a paused key runs checks and answers a question without
    opening anything; the resume step (a change) needs an incident, which then carries the
    steps walked so far; the probe-only and close steps never ask for one."""
    from oneiric_core.runbooks.walk_incident import incident_of, needs_incident, open_for_walk, severity_for

    incidents = Incidents(engine)
    engine.pause("adapter", "cache", note="maintenance", actor="carol")
    walker = Walker(load_catalog(DEMO), "component-not-found", engine, params={"domain": "adapter", "key": "cache"},
                    actor="alice", severity="P0")
    await walker.advance()
    assert walker.node.id == "intentional" and not needs_incident(walker)
    walker.answer("no - resume it")
    assert walker.node.id == "resume" and needs_incident(walker)
    assert incidents.list() == []  # the walk so far was a look
    assert severity_for(walker) == "P0"
    inc = open_for_walk(incidents, walker, "P2", actor="alice")
    assert (inc.severity, inc.commander, inc.refs, inc.tree) == ("P2", "alice", ["adapter/cache"],
                                                                 "component-not-found")
    assert incident_of(walker) == inc.id and not needs_incident(walker)
    texts = [e.text for e in incidents.entries(inc.id)]
    assert any("-> paused" in t for t in texts) and any("-> no - resume it" in t for t in texts)
    assert (await walker.perform()).outcome == "done"
    assert len(incidents.list()) == 1


async def test_postmortem_and_handoff_carry_evidence_the_events_before_opening_and_the_close(engine):
    """An incident opened some minutes after what started it: the pause from before its opening
    is in the post-mortem and the hand-off (within escalation.lookback_min), every check's
    evidence is there line by line, and the close step's resolution, root cause and follow-ups."""
    from oneiric_core.runbooks.walk_incident import open_for_walk

    incidents = Incidents(engine)
    engine.pause("adapter", "cache", note="disk swap on db-3", actor="carol")
    walker = Walker(load_catalog(DEMO), "component-not-found", engine, params={"domain": "adapter", "key": "cache"},
                    actor="alice")
    await walker.advance()
    walker.answer("no - resume it")
    inc = open_for_walk(incidents, walker, "P1", actor="alice")
    # opened ten minutes after the pause that started it (moved, as a late opening would be)
    engine.store.update_incident(inc.id, {"opened_at": inc.opened_at + 600})
    await walker.perform()
    await walker.advance()
    incidents.close(inc.id, "resumed the cache", actor="alice", root_cause="a pause left after maintenance",
                    follow_ups=["alert on keys paused over an hour"])

    check = next(e for e in incidents.entries(inc.id) if e.data.get("node") == "blocked")
    assert check.data["evidence"]
    text = postmortem(incidents, inc.id)
    before = text.split("## Before it was opened", 1)[1].split("## Timeline", 1)[0]
    assert "30 min before the incident was opened" in before
    assert "activity-changed" in before and "carol" in before and "disk swap on db-3" in before
    found = text.split("## What the checks found", 1)[1].split("## Actions", 1)[0]
    assert "blocked" in found and "paused" in found
    for line in check.data["evidence"]:
        assert f"  - {md(line)}" in found, line
    assert "a pause left after maintenance" in text and "alert on keys paused over an hour" in text
    hand = handoff(incidents, inc.id)
    for needle in ("## Before it was opened", "disk swap on db-3", "## Root cause", "a pause left after maintenance",
                   "## Follow-ups", "alert on keys paused over an hour", f"  - {md(check.data['evidence'][0])}"):
        assert needle in hand, needle
    # with no look-back, the events from before the opening are left out
    engine.settings.app.escalation.lookback_min = 0
    before = postmortem(Incidents(engine), inc.id).split("## Before it was opened", 1)[1].split("## Timeline", 1)[0]
    assert "none." in before and "disk swap on db-3" not in before


async def test_the_close_step_closes_the_walks_incident_with_all_three_fields(engine):
    """incident-response's close step closes the incident it records on (the CLI's fields); a
    walk recording on none (a drill, `runbook walk`) has nothing to close and says so."""
    from oneiric_core.runbooks.actions import perform
    from oneiric_core.runbooks.facts import FactContext

    incidents = Incidents(engine)
    inc = incidents.open("cache down", "P1", commander="alice")
    params = {"incident": inc.id, "resolution": "restarted redis", "root_cause": "disk full",
              "follow_ups": "alert on disk; runbook for redis disks"}
    outcome = await perform("close-incident", FactContext(engine, params), "alice")
    assert outcome.outcome == "done" and f"incident #{inc.id} closed" in outcome.message
    closed = incidents.get(inc.id)
    assert (closed.status, closed.resolution, closed.root_cause) == ("closed", "restarted redis", "disk full")
    assert closed.follow_ups == ["alert on disk", "runbook for redis disks"]
    again = await perform("close-incident", FactContext(engine, params), "alice")
    assert again.outcome == "done" and "already closed" in again.message
    none = await perform("close-incident", FactContext(engine, {}), "alice")
    assert none.outcome == "done" and "no incident" in none.message
    tree = load_catalog(DEMO).get("incident-response")
    assert tree.node("close").action == "close-incident"


async def test_a_walk_claimed_on_another_machine_is_seen_as_walked_while_its_claim_is_renewed(engine):
    """Walk claims carry a heartbeat in the store: a console on another machine (whose pid
    cannot be looked at from here) holds its walk while it renews the claim, and lets it go
    when it stops; on this machine a dead pid lets it go at once."""
    import os
    import socket
    import time

    from oneiric_core.runbooks.incidents import CLAIM_STALE_S

    incidents = Incidents(engine)
    inc = incidents.open("cache rolls back", "P2", commander="ops", refs=["adapter/cache"])
    key = f"incident-walker:{inc.id}"
    engine.store.set_meta(key, {"pid": 4242, "hostname": "web-9", "actor": "alice", "at": time.time()})
    owner = incidents.walk_owner(inc.id)
    assert owner is not None and owner.busy_elsewhere() and owner.describe() == "alice (pid 4242 on web-9)"
    assert not owner.busy_elsewhere(now=time.time() + CLAIM_STALE_S + 1)  # it stopped renewing: free
    assert not incidents.renew_walk(inc.id)  # not this process's claim: it is not renewed from here
    dead = 2 ** 22 + 12345  # no such pid on this machine
    engine.store.set_meta(key, {"pid": dead, "hostname": socket.gethostname(), "actor": "bob", "at": time.time()})
    assert not incidents.walk_owner(inc.id).busy_elsewhere()
    incidents.claim_walk(inc.id, "carol")
    before = incidents.walk_owner(inc.id).at
    time.sleep(0.01)
    assert incidents.renew_walk(inc.id) and incidents.walk_owner(inc.id).at > before
    assert incidents.walk_owner(inc.id).pid == os.getpid() and not incidents.walk_owner(inc.id).busy_elsewhere()
