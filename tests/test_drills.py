"""Drills: every shipped tree walked against the fault it claims to handle, on a real host in a
temporary directory; the facts those drills found confirming what they never checked; the
drill declarations refused when they name what does not exist."""

from __future__ import annotations

import pytest

from oneiric_core.runbooks.actions import ACTIONS
from oneiric_core.runbooks.drills import run_drill
from oneiric_core.runbooks.facts import FACTS, FactContext, evaluate
from oneiric_core.runbooks.faults import FAULTS, FaultContext, inject
from oneiric_core.runbooks.loader import load_catalog, load_file
from oneiric_core.runbooks.model import TreeError, check_structure
from oneiric_core.runbooks.walker import Walker
from tests.helpers import DEMO

ROLES = ["on_call_engineer", "engineering_lead", "product_owner", "support"]
CATALOG = load_catalog(DEMO, roles=ROLES)
SCENARIOS = [(tree.id, drill.id)
             for tree in sorted(CATALOG.trees.values(), key=lambda t: t.id) for drill in tree.drills]
REMEDIATIONS = {"resume", "swap", "force-swap", "clear-artifact", "sync", "pause", "drain", "reload-config"}


@pytest.mark.parametrize("tree_id,drill_id", SCENARIOS, ids=[f"{t}/{d}" for t, d in SCENARIOS])
async def test_drill(tree_id, drill_id):
    result = await run_drill(DEMO, tree_id, drill_id)
    path = " > ".join(f"{s.tree}:{s.node}={s.value}" for s in result.path)
    assert result.error is None, f"{result.error}\ninjected: {result.injected}\npath: {path}"
    assert (result.reached, result.status) == (result.expected, "finished"), f"{result.why()}\npath: {path}"


def test_every_tree_has_a_drill_and_the_drills_reach_every_remediation_kind_they_can():
    assert CATALOG.errors == []
    assert all(tree.drills for tree in CATALOG.trees.values()), [t.id for t in CATALOG.trees.values() if not t.drills]
    assert len(SCENARIOS) >= 2 * len(CATALOG.trees)


async def test_drills_perform_remediations_not_only_escalations():
    """At least the resume, swap, artifact-clearing and sync remediations are walked to their end."""
    performed: set[str] = set()
    for tree_id, drill_id in [("component-not-found", "paused-key-resumed"), ("hot-swap-failed", "backend-brought-up"),
                              ("digest-corruption", "one-corrupt-artifact")]:
        result = await run_drill(DEMO, tree_id, drill_id)
        assert result.passed, result.why()
        for step in result.path:
            node = CATALOG.trees[step.tree].nodes[step.node]
            if step.kind == "action" and node.action in REMEDIATIONS and step.value in ("done", "applied"):
                performed.add(node.action)
    assert {"resume", "swap", "clear-artifact", "sync"} <= performed


async def test_a_drill_whose_tree_misses_its_exit_fails_and_says_where_it_ended(tmp_path):
    import shutil

    settings = tmp_path / "settings"
    shutil.copytree(DEMO, settings)
    tree = settings / "runbooks" / "component-not-found.yml"
    tree.write_text(tree.read_text().replace("branches: {active: candidates, not-found: candidates}",
                                             "branches: {active: candidates}"))  # the old tree
    result = await run_drill(settings, "component-not-found", "missing-key")
    assert not result.passed
    assert "the drill needs answers: intentional=CHOICE" in result.error  # it asked whether the pause was meant
    assert result.reached == "component-not-found:intentional"


GOOD = """\
id: t
title: T
reviewed: 2026-01-01
next_review: 2027-01-01
params: [domain, key]
nodes:
  - {id: a, kind: check, fact: key.activity, branches: {paused: b}, default: c}
  - {id: b, kind: question, text: q, choices: {go: c}}
  - {id: c, kind: done}
drills:
  - {id: d, faults: [pause: {domain: adapter, key: cache}], answers: {b: go}, expect: c}
"""


@pytest.mark.parametrize("old,new,words", [
    ("expect: c}", "expect: nowhere}", ["drill 'd'", "expects the unknown node 'nowhere'"]),
    ("faults: [pause:", "faults: [explode:", ["drill 'd'", "unknown fault 'explode'", "known: "]),
    ("answers: {b: go}", "answers: {zz: go}", ["drill 'd'", "answers the unknown node 'zz'"]),
    ("answers: {b: go}", "answers: {other-tree:x: go}", ["unknown runbook 'other-tree'"]),
    ("expect: c}", "}", ["drill 'd' names no expect"]),
])
def test_malformed_drills_are_refused_naming_the_drill(tmp_path, old, new, words):
    assert old in GOOD
    path = tmp_path / "t.yml"
    path.write_text(GOOD.replace(old, new))
    with pytest.raises(TreeError) as caught:
        check_structure(load_file(path), facts=FACTS, actions=ACTIONS, trees=["t"], roles=ROLES, faults=FAULTS)
    for word in words:
        assert word in str(caught.value), caught.value


# -- the false confirmations the drills found -------------------------------------------------------
def _walk(engine, tree, **params):
    return Walker(CATALOG, tree, engine, params=params, actor="alice")


async def test_component_not_found_on_a_missing_key_never_calls_it_blocked(engine):
    """It once asked "adapter/ghost is blocked (see who and why above). Was that intentional?"."""
    walker = _walk(engine, "component-not-found", domain="adapter", key="ghost")
    await walker.advance()
    assert [(s.node, s.value) for s in walker.history][:2] == [("blocked", "not-found"), ("candidates", "none")]
    assert "intentional" not in walker.breadcrumb()


async def test_proc_config_update_never_says_in_force_after_an_edit_never_made(engine):
    """The operator confirms the edit step without editing: the walk once ended at 'The change is
    in force with no restart'; now the host's journal is asked whether the file changed."""
    walker = _walk(engine, "proc-config-update", domain="adapter", key="cache")
    await walker.advance()
    walker.answer("by hand in the file")
    assert walker.node.id == "edit"
    await walker.perform()  # "done", says the operator
    await walker.advance()
    step = walker.history[-1]
    assert (step.node, step.value) == ("edited", "unchanged")
    assert "since the walk started at" in step.evidence[0] and "adapters.yml" in step.evidence[0]
    assert walker.node.id == "not-edited" and "The change is in force" not in walker.view()["text"]


async def test_config_edited_sees_a_change_made_after_the_walk_started_only(engine, settings_dir):
    from oneiric_core.settings_edit import set_selection

    set_selection(settings_dir, "adapter", "cache", "memory-large")  # before the walk: not this walk's edit
    engine.settings_file_changed(settings_dir / "adapters.yml")
    import time

    ctx = FactContext(engine, {"domain": "adapter"}, started_at=time.time())
    assert (await evaluate("config.edited", ctx)).value == "unchanged"
    set_selection(settings_dir, "adapter", "cache", "memory")
    engine.settings_file_changed(settings_dir / "adapters.yml")
    found = await evaluate("config.edited", ctx)
    assert found.value == "changed" and "config-changed" in found.evidence[0]


async def test_shadowed_increasing_measures_an_increase_not_a_total(tmp_path):
    """Many shadowed candidates that were there when the host started are no increase (the fact
    once answered 'many' from the total); 25 added while it runs are."""
    from oneiric_core.engine import Engine
    from tests.helpers import demo_copy

    settings = demo_copy(tmp_path)
    ctx = FaultContext(settings, tmp_path / "state")
    await inject(ctx, "many-candidates", {"domain": "adapter", "key": "cache", "count": 25})
    engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    await engine.start()
    try:
        ctx.engine = engine
        args = {"threshold": 20, "window_s": 3600}
        steady = await evaluate("registry.shadowed", FactContext(engine, {}, args))
        assert steady.value == "steady", steady.evidence
        assert steady.evidence[0].endswith("(host-started, the oldest census in the journal, inside the last "
                                           "60 min): +0 (threshold 20).")
        await inject(ctx, "add-candidates", {"domain": "adapter", "key": "storage", "count": 25})
        grown = await evaluate("registry.shadowed", FactContext(engine, {}, args))
        assert grown.value == "increasing" and "+25 (threshold 20)" in grown.evidence[0], grown.evidence
    finally:
        await engine.stop()
        engine.close()


async def test_last_swap_after_a_refused_swap_is_refused_not_the_start_up_activation(engine):
    engine.pause("adapter", "cache", note="maintenance", actor="carol")
    record, _ = await engine.request_swap("adapter", "cache", "memory-large", actor="alice")
    _, result = await engine.approve(record.id, actor="bob")
    assert result is not None and result.outcome.value == "refused"
    found = await evaluate("key.last_swap", FactContext(engine, {"domain": "adapter", "key": "cache"}))
    assert found.value == "refused", found.evidence
    assert found.evidence[0].startswith("journal swap-failed at ") and "refused" in found.evidence[0]
    assert found.sets == {"target": "memory-large"}


async def test_an_expired_manifest_is_the_publishers_not_infrastructure(tmp_path):
    result = await run_drill(DEMO, "remote-sync", "expired-manifest")
    classify = [s for s in result.path if s.node == "classify"]
    assert classify and classify[0].value == "expired", [(s.node, s.value) for s in result.path]
    assert result.reached == "remote-sync:publisher"


async def test_host_restarted_is_the_journals_word_not_the_operators(engine):
    """proc-rolling-update once went from 'install and restart' (confirmed, never done) to
    'Every host runs the new version'; a restart is a host-started event since the walk began."""
    import time

    ctx = FactContext(engine, {}, started_at=time.time())
    found = await evaluate("host.restarted", ctx)
    assert found.value == "not-restarted", found.evidence
    assert found.evidence[0].startswith("no host-started event since the walk started at ")
    assert f"pid {engine.host()[0].pid}" in found.evidence[0]
    before = FactContext(engine, {}, started_at=time.time() - 3600)  # a walk begun before this host started
    assert (await evaluate("host.restarted", before)).value == "restarted"
