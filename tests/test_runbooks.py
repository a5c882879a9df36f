"""Runbook trees: the shipped ones load; malformed ones are refused naming the node; walks on a real engine."""

from __future__ import annotations

import pytest

from oneiric_core.runbooks.actions import ACTIONS
from oneiric_core.runbooks.facts import FACTS
from oneiric_core.runbooks.loader import load_catalog, load_file
from oneiric_core.runbooks.model import TreeError, check_structure
from oneiric_core.runbooks.walker import Walker
from tests.helpers import DEMO, demo_with_redis_port, pong_server

ROLES = ["on_call_engineer", "engineering_lead", "product_owner", "support"]
SHIPPED = {"quick-reference", "component-not-found", "hot-swap-failed", "remote-sync", "digest-corruption",
           "config-not-applying", "stuck-activating", "high-rollback-rate", "shadowed-increasing", "slow-resolution",
           "pause-drain-resume", "incident-response", "proc-config-update", "proc-hot-swap", "proc-health-checks",
           "proc-rolling-update", "proc-maintenance-pause"}


def test_every_shipped_tree_loads_clean():
    catalog = load_catalog(DEMO, roles=ROLES)
    assert catalog.errors == []
    assert SHIPPED <= set(catalog.trees)
    for tree in catalog.trees.values():
        assert tree.reviewed and tree.next_review and not tree.overdue()


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
"""


@pytest.mark.parametrize("old,new,words", [
    ("default: c}", "default: nowhere}", ["node 'a'", "dangling", "nowhere"]),
    ("fact: key.activity", "fact: key.nonsense", ["node 'a'", "unknown fact"]),
    ("  - {id: c, kind: done}", "  - {id: c, kind: action, action: explode, next: d}\n  - {id: d, kind: done}",
     ["node 'c'", "unknown action"]),
    ("  - {id: c, kind: done}", "  - {id: c, kind: done}\n  - {id: z, kind: done}", ["node 'z'", "unreachable"]),
    ("choices: {go: c}", "choices: {go: b2}}\n  - {id: b2, kind: question, text: r, choices: {back: b}",
     ["loop with no exit"]),
    ("  - {id: c, kind: done}", "  - {id: c, kind: escalate, role: nobody}", ["node 'c'", "unknown role"]),
])
def test_malformed_trees_are_refused_naming_the_node(tmp_path, old, new, words):
    assert old in GOOD
    path = tmp_path / "t.yml"
    path.write_text(GOOD.replace(old, new))
    with pytest.raises(TreeError) as caught:
        check_structure(load_file(path), facts=FACTS, actions=ACTIONS, trees=["t"], roles=ROLES)
    message = str(caught.value)
    assert str(path) in message
    for word in words:
        assert word in message, message


def test_a_tree_offering_a_change_before_the_safe_choice_does_not_load(tmp_path):
    """remote-sync once offered "yes - update trusted_keys" first, hot-swap-failed "force the
    swap" before "no": the loader refuses such a tree in one sentence, and loads the fixed order."""
    import shutil

    settings = tmp_path / "settings"
    shutil.copytree(DEMO, settings)
    for name, safe, change in [("remote-sync.yml", '"no - treat it as tampering": security',
                                '"yes - add the announced key to trusted_keys": rotate'),
                               ("hot-swap-failed.yml", "no: lead", "force the swap: force")]:
        path = settings / "runbooks" / name
        text = path.read_text()
        assert f"{{{safe}, {change}}}" in text  # shipped: the safe choice first
        path.write_text(text.replace(f"{{{safe}, {change}}}", f"{{{change}, {safe}}}"))
    catalog = load_catalog(settings, roles=ROLES)
    from oneiric_core.package_data import default_runbook_dir

    # the copies are refused; the shipped trees of those ids serve instead
    assert catalog.trees["remote-sync"].file == default_runbook_dir() / "remote-sync.yml"
    assert catalog.trees["hot-swap-failed"].file == default_runbook_dir() / "hot-swap-failed.yml"
    [remote] = [e for e in catalog.errors if e.startswith(str(settings / "runbooks" / "remote-sync.yml"))]
    assert ("node 'rotation' offers 'yes - add the announced key to trusted_keys' first, but its safe choice is "
            "'no - treat it as tampering'; put the safe choice first.") in remote, remote
    [swap] = [e for e in catalog.errors if e.startswith(str(settings / "runbooks" / "hot-swap-failed.yml"))]
    assert "node 'force-ask' offers 'force the swap'" in swap and "\n" not in swap


def test_a_declared_safe_choice_must_be_offered_first(tmp_path):
    path = tmp_path / "t.yml"
    path.write_text(GOOD.replace("choices: {go: c}", "choices: {go: c, wait: c}, safe: wait"))
    with pytest.raises(TreeError) as caught:
        check_structure(load_file(path), facts=FACTS, actions=ACTIONS, trees=["t"], roles=ROLES)
    assert str(caught.value) == f"{path}: node 'b' offers 'go' first, but its safe choice is 'wait'; put the safe " \
                                "choice first."
    path.write_text(GOOD.replace("choices: {go: c}", "choices: {go: c}, safe: stay"))
    with pytest.raises(TreeError, match="names 'stay' its safe choice, but has no such choice"):
        load_file(path)


def test_every_shipped_question_offers_a_choice_that_changes_nothing_first_when_it_has_one():
    catalog = load_catalog(DEMO, roles=ROLES)
    changing = {name for name, spec in ACTIONS.items() if spec.mutates}
    for tree in catalog.trees.values():
        for node in tree.nodes.values():
            if node.kind != "question" or node.sets:
                continue
            targets = [tree.nodes.get(t) for t in node.choices.values()]
            acts = [t is not None and t.kind == "action" and t.action in changing for t in targets]
            assert not acts[0] or all(acts), (tree.id, node.id, list(node.choices))
    assert catalog.trees["remote-sync"].nodes["rotation"].safe == "no - treat it as tampering"


def test_unsafe_yaml_tags_are_refused(tmp_path):
    path = tmp_path / "t.yml"
    path.write_text(GOOD.replace("title: T", "title: !!python/object/apply:os.system ['touch pwned']"))
    with pytest.raises(TreeError):
        load_file(path)
    assert not (tmp_path / "pwned").exists()


def test_loader_reports_broken_file_and_keeps_the_rest(tmp_path):
    rb = tmp_path / "runbooks"
    rb.mkdir()
    (rb / "good.yml").write_text(GOOD)
    (rb / "bad.yml").write_text("id: bad\ntitle: [unclosed\n")
    catalog = load_catalog(tmp_path, roles=ROLES)
    assert catalog.trees["t"].file == rb / "good.yml"
    assert set(catalog.trees) - {"t"} == {p.stem for p in (DEMO / "runbooks").glob("*.yml")}  # the defaults
    assert len(catalog.errors) == 1 and "bad.yml:" in catalog.errors[0]


def _catalog():
    return load_catalog(DEMO, roles=ROLES)


@pytest.fixture
def settings_dir(tmp_path):
    return demo_with_redis_port(tmp_path)


async def test_hot_swap_failed_walk_reaches_remediation_applies_and_verifies(engine, settings_dir):
    port = int((settings_dir / "redis.port").read_text())
    _, result = await engine.request_swap("adapter", "cache", "redis", actor="alice", approve=True)
    assert result is not None and result.outcome.value == "rolled-back"

    steps_seen = []
    walker = Walker(_catalog(), "hot-swap-failed", engine, params={"domain": "adapter", "key": "cache"},
                    actor="alice", recorder=steps_seen.append)
    await walker.advance()
    # last swap rolled back -> health error -> settings present -> backend unreachable: asks the operator
    assert [s.node for s in walker.history] == ["last-swap", "why", "settings", "reachable"]
    assert walker.params["target"] == "redis" and walker.node.id == "backend-down"
    assert any("rolled-back" in line or "rolled back" in line for line in walker.history[0].evidence)
    server = await pong_server(port)  # the operator brings the backend up
    try:
        walker.answer("up now - re-check")
        await walker.advance()
        assert walker.node.id == "retry" and walker.view()["action"]["via_proposal"]
        outcome = await walker.perform()
        assert outcome.pending and walker.status == "waiting"
        await engine.approve(outcome.proposal_id, actor="bob")
        settled = await walker.wait(timeout=10)
        assert settled is not None and settled.outcome == "applied" and settled.approved_by == "bob"
        await walker.advance()
        assert walker.node.kind == "done", walker.breadcrumb()
        assert [s.node for s in walker.history][-2:] == ["verify", "probe"]
        assert walker.history[-2].value == "yes" and walker.history[-1].value == "ok"
        assert engine.components([engine.ref("adapter", "cache")])[0].serving == "redis"
    finally:
        server.close()
        await server.wait_closed()
        # stop the redis client before the server disappears
        await engine._swap_now("adapter", "cache", "memory")
    assert len(steps_seen) == len(walker.history)


async def test_back_and_rerun(engine):
    walker = Walker(_catalog(), "component-not-found", engine, params={"domain": "adapter", "key": "cache"})
    await walker.run_check()
    assert walker.node.id == "candidates"
    assert walker.back() and walker.node.id == "blocked" and walker.history == []
    step = await walker.rerun()
    assert step.node == "blocked" and walker.node.id == "candidates"


async def test_component_not_found_on_paused_key_finds_pause_and_resumes(engine):
    engine.pause("adapter", "cache", note="maintenance by carol", actor="carol")
    walker = Walker(_catalog(), "component-not-found", engine, params={"domain": "adapter", "key": "cache"})
    await walker.advance()
    assert walker.history[0].value == "paused"
    assert any("carol" in line for line in walker.history[0].evidence)
    assert walker.node.id == "intentional"
    walker.answer("no - resume it")
    assert walker.node.id == "resume" and walker.view()["action"]["name"] == "resume"
    outcome = await walker.perform()
    assert outcome.outcome == "done"
    assert engine.activity.get(engine.ref("adapter", "cache")).state == "active"
    await walker.advance()
    assert walker.node.kind == "done"


async def test_config_not_applying_shows_line_and_column(engine, settings_dir):
    (settings_dir / "adapters.yml").write_text("selections:\n  cache: memory\n  bad: [unclosed\n")
    walker = Walker(_catalog(), "config-not-applying", engine, params={"domain": "adapter", "key": "cache"})
    await walker.advance()
    step = walker.history[0]
    assert step.value == "invalid"
    assert any("adapters.yml:" in line and ":3:" in line or "line 3" in line for line in step.evidence), step.evidence
    assert walker.node.id == "fix"
    assert walker.params["line"] is not None and walker.params["column"] is not None
    assert f"line {walker.params['line']}, column {walker.params['column']}" in walker.view()["text"]


async def test_mitigate_loop_is_guarded(engine):
    engine.pause("adapter", "cache", note="stays broken", actor="carol")  # the engine is never clear
    walker = Walker(_catalog(), "incident-response", engine)
    walker.answer("P2")
    await walker.perform()  # ticket (manual)
    await walker.perform()  # acknowledge (manual)
    await walker.advance()
    rounds = 0
    while walker.node.id != "escalate":
        rounds += 1
        assert rounds <= 5, walker.breadcrumb()
        assert walker.node.id == "mitigate"
        walker.answer("mitigation applied")
        await walker.advance()
        if walker.node.id == "again":
            walker.answer("try again")
    assert rounds == 3 and walker.history[-1].node == "guard" and walker.history[-1].value == "exceeded"


async def test_remote_sync_with_breaker_open_reaches_the_server_branch(tmp_path):
    from oneiric_core.engine import Engine
    from tests.remote_helpers import Key, remote_settings, source, start_server, until

    server = start_server()
    try:
        key = Key.new("k1")
        settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"), interval_s=0.05)], [key],
                                   failures=2, reset_s=60)
        server.serve("/m.json", b"boom", status=500)
        engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
        await engine.start()
        try:
            await until(lambda: engine.journal(kinds=["circuit-open"]))
            walker = Walker(_catalog(), "remote-sync", engine)
            await walker.advance()
            values = [(s.node, s.value) for s in walker.history]
            assert values[:4] == [("configured", "yes"), ("health", "failing"), ("breaker", "open"),
                                  ("cause", "http")], values
            assert walker.node.id == "server-side"
            assert walker.params["source"] == "acme"
        finally:
            await engine.stop()
            engine.close()
    finally:
        server.close()


async def test_evidence_is_the_step_that_led_here_and_a_finished_path_ends_once(engine):
    """A question reached by a check shows that check's evidence; the node an answer leads to
    shows none (never the check before it); a finished walk's path names its last node once."""
    walker = Walker(_catalog(), "quick-reference", engine)
    await walker.advance()
    view = walker.view()
    assert view["node"] == "symptom" and view["evidence_from"] == "check"
    assert any(line.startswith("suggests: ") for line in view["evidence"])
    walker.answer("logs or metrics missing")
    assert walker.view()["evidence"] == [] and walker.view()["evidence_from"] == "question"
    walker.acknowledge()
    assert walker.finished
    assert walker.breadcrumb() == ["quick-reference:triage", "quick-reference:symptom", "quick-reference:observability"]


async def test_severity_answer_and_return_from_a_runbook_opened_by_the_workflow(engine):
    """incident-response: the severity answer classifies the incident; a runbook picked at
    'mitigate' hands the walk back to the workflow when it ends, and back() undoes the jump."""
    from oneiric_core.runbooks.incidents import Incidents

    incidents = Incidents(engine)
    inc = incidents.open("cache trouble", "P3")
    walker = Walker(_catalog(), "incident-response", engine, params={"domain": "adapter", "key": "cache"},
                    severity="P3")
    incidents.attach_walk(inc.id, walker)
    walker.answer("P1")
    assert walker.severity == "P1" and incidents.get(inc.id).severity == "P1"
    assert any("severity P3 -> P1" in e.text for e in incidents.entries(inc.id) if e.kind == "status")
    walker.acknowledge()  # page
    await walker.perform()  # acknowledge (manual)
    await walker.advance()
    assert walker.node.id == "mitigate"
    walker.answer("components not resolving")
    assert walker.tree.id == "component-not-found" and walker.returns_to.id == "incident-response"
    walker.back()
    assert (walker.tree.id, walker.node.id, walker.returns) == ("incident-response", "mitigate", [])
    walker.answer("components not resolving")
    await walker.advance()  # the cache is active with candidates and serves: the runbook ends at done
    assert (walker.tree.id, walker.node.kind) == ("component-not-found", "done"), walker.breadcrumb()
    walker.acknowledge()
    assert not walker.finished and walker.tree.id == "incident-response" and walker.node.id == "resolved"
    await walker.advance()  # the engine is clear: verify, then the close step
    assert walker.node.id == "close", walker.breadcrumb()


def _host_with_cache_paused_before_start(tmp_path):
    from tests.helpers import demo_copy, host_with_cache_paused_before_start

    return host_with_cache_paused_before_start(demo_copy(tmp_path), tmp_path / "state")


async def test_resume_of_a_key_paused_before_start_verifies_it_serving(tmp_path):
    """A key paused before the host started is activated on resume in the background: the
    resume step waits for that, so the check after it finds the key serving, not 'unknown'."""
    async with _host_with_cache_paused_before_start(tmp_path) as engine:
        walker = Walker(_catalog(), "component-not-found", engine, params={"domain": "adapter", "key": "cache"})
        await walker.advance()
        assert walker.node.id == "intentional"
        walker.answer("no - resume it")
        outcome = await walker.perform()
        assert outcome.outcome == "done" and "serving memory" in outcome.message
        await walker.advance()
        assert walker.node.id == "done", walker.breadcrumb()
        assert [s.value for s in walker.history if s.node == "verify"] == ["ok"]


async def test_facts_signature_and_health_say_what_is_true(tmp_path):
    """remote.signature reads the verification's status (the demo manifest is signed and
    verified); health.slow with nothing serving is 'unknown', not a vacuous 'ok'."""
    from oneiric_core.engine import Engine
    from oneiric_core.runbooks.facts import FactContext, evaluate
    from tests.helpers import demo_copy

    settings = demo_copy(tmp_path, fast=False)  # the demo's own app.yml: its signed remote manifest
    idle = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    try:
        nothing = await evaluate("health.slow", FactContext(idle, {}))
        assert nothing.value == "unknown" and "nothing serves" in nothing.evidence[0]
    finally:
        idle.close()
    engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    await engine.start()
    try:
        await engine.remote.sync_now(None)
        result = await evaluate("remote.signature", FactContext(engine, {}))
        assert result.value == "verified" and "signature verified" in result.evidence[0], result.evidence
        assert (await evaluate("health.slow", FactContext(engine, {}))).value == "ok"
    finally:
        await engine.stop()
        engine.close()


def test_question_sets_and_then_are_checked(tmp_path):
    bad_sets = GOOD.replace("choices: {go: c}", "sets: severity, choices: {go: c}")
    path = tmp_path / "t.yml"
    path.write_text(bad_sets)
    with pytest.raises(TreeError, match="choice 'go' is not one of P0"):
        load_file(path)
    path.write_text(GOOD.replace("choices: {go: c}", "then: c, choices: {go: c}"))
    with pytest.raises(TreeError, match="none of its choices opens another runbook"):
        load_file(path)


async def test_remote_signature_reports_an_unsigned_manifest(tmp_path):
    """An unsigned manifest accepted because its source does not require a signature is
    'unsigned', not 'verified' (the fact reads the verification's status)."""
    from oneiric_core.engine import Engine
    from oneiric_core.runbooks.facts import FactContext, evaluate
    from tests.remote_helpers import body, entry, manifest, remote_settings, source, start_server

    server = start_server()
    try:
        settings = remote_settings(tmp_path, [source("acme", server.url("/m.json"), signature_required=False)])
        server.serve("/m.json", body(manifest([entry()])))
        engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
        await engine.start()
        try:
            await engine.remote.sync_now("acme")
            result = await evaluate("remote.signature", FactContext(engine, {}))
            assert result.value == "unsigned", result.evidence
            assert result.evidence[0].startswith("acme: signature unsigned")
        finally:
            await engine.stop()
            engine.close()
    finally:
        server.close()


async def test_stuck_activating_on_a_key_that_never_started_leads_to_component_not_found(tmp_path):
    """A key paused before the host started is inactive, not activating: the tree says so and
    offers the walk that finds why (the pause), instead of ending at 'no longer activating'."""
    async with _host_with_cache_paused_before_start(tmp_path) as engine:
        walker = Walker(_catalog(), "stuck-activating", engine, params={"domain": "adapter", "key": "cache"})
        await walker.advance()
        assert [(s.node, s.value) for s in walker.history] == [("age", "not-activating"), ("state", "inactive")]
        assert walker.node.id == "inactive"
        walker.answer("find out")
        await walker.advance()
        assert walker.tree.id == "component-not-found" and walker.node.id == "intentional", walker.breadcrumb()


async def test_rolling_update_stops_at_a_failing_remote_source(tmp_path):
    """The pre-update remote check no longer continues whatever it finds."""
    from oneiric_core.engine import Engine
    from tests.helpers import demo_copy

    settings = demo_copy(tmp_path, fast=False)  # the demo's app.yml, with its remote source
    (settings / "manifests" / "demo.json").write_text("{ not json")
    engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    await engine.start()
    try:
        walker = Walker(_catalog(), "proc-rolling-update", engine)
        await walker.advance()
        if walker.node.id == "not-clear":
            walker.answer("continue")
            await walker.advance()
        assert walker.node.id == "remote-not-clear", walker.breadcrumb()
        assert walker.history[-1].node == "remote" and walker.history[-1].value != "ok"
    finally:
        await engine.stop()
        engine.close()


async def test_config_not_applying_with_no_host_says_to_start_one(settings_dir, tmp_path):
    """Walked from the CLI with no host running: the watcher is not 'down', there is simply no
    host; the step says a host reads the settings as they are when it starts."""
    from oneiric_core.engine import Engine

    engine = Engine(settings_dir, state_dir=tmp_path / "state", actor="tester")
    try:
        walker = Walker(_catalog(), "config-not-applying", engine, params={"domain": "adapter", "key": "cache"})
        await walker.advance()
        assert [(s.node, s.value) for s in walker.history][-1] == ("watcher", "no-host"), walker.breadcrumb()
        assert walker.node.id == "no-host" and "Start one" in walker.view()["text"]
    finally:
        engine.close()


async def test_a_walk_saved_as_json_resumes_in_another_engine_where_it_was(settings_dir, tmp_path):
    """to_state/from_state: the walk outlives its process (a procedure may restart the host).
    The resumed walk is at the same node with the same history, can go back, and walks on."""
    import json

    from oneiric_core.engine import Engine

    engine = Engine(settings_dir, state_dir=tmp_path / "state", actor="alice")
    engine.pause("adapter", "cache", note="maintenance")
    walker = Walker(_catalog(), "component-not-found", engine, params={"domain": "adapter", "key": "cache"})
    await walker.advance()
    assert walker.node.id == "intentional"
    saved = json.loads(json.dumps(walker.to_state()))  # what the store keeps
    engine.close()

    engine = Engine(settings_dir, state_dir=tmp_path / "state", actor="bob")
    await engine.start()
    try:
        resumed = Walker.from_state(_catalog(), engine, saved)
        assert (resumed.tree.id, resumed.node_id) == ("component-not-found", "intentional")
        assert [(s.node, s.value) for s in resumed.history] == [(s.node, s.value) for s in walker.history]
        assert resumed.params["domain"] == "adapter" and resumed.breadcrumb() == walker.breadcrumb()
        assert resumed.back() and resumed.node_id == walker.history[-1].node  # its frames came along
        await resumed.advance()
        assert resumed.node_id == "intentional"
        resumed.answer("no - resume it")
        outcome = await resumed.perform()
        assert outcome.outcome == "done"
        await resumed.advance()
        assert resumed.node.kind == "done", resumed.breadcrumb()
    finally:
        await engine.stop()
        engine.close()


def test_a_saved_walk_on_a_runbook_that_is_gone_is_refused_in_one_sentence(tmp_path):
    from oneiric_core.errors import UsageError

    state = {"version": 1, "tree": "no-such-runbook", "node": "x", "params": {}, "actor": "a", "status": "at-node",
             "started_at": 0.0}
    with pytest.raises(UsageError, match="no-such-runbook.*no longer in .*settings/runbooks"):
        Walker.from_state(_catalog(), object(), state)


async def test_the_sync_action_says_what_the_sync_did(tmp_path):
    """It once showed `<bound method SyncOutcome.message of ...>`: the outcome's own sentence."""
    from oneiric_core.engine import Engine
    from oneiric_core.runbooks.actions import perform
    from oneiric_core.runbooks.facts import FactContext
    from tests.helpers import demo_copy

    engine = Engine(demo_copy(tmp_path, fast=False), state_dir=tmp_path / "state", actor="alice")  # its remote: demo
    try:
        outcome = await perform("sync", FactContext(engine, params={}), "alice")
        assert outcome.outcome == "done", outcome.message
        assert outcome.message.startswith("remote:demo: ") and "bound method" not in outcome.message
        assert "oneiric-demo v2" in outcome.message
        again = await perform("sync", FactContext(engine, params={}), "alice")
        assert again.message == "remote:demo: oneiric-demo v2 is unchanged; nothing to do."
    finally:
        engine.close()


async def test_triage_after_a_rollback_blames_the_provider_that_failed_not_the_one_serving(engine):
    _, result = await engine.request_swap("adapter", "cache", "redis", actor="alice", approve=True)
    assert result is not None and result.outcome.value == "rolled-back"
    from oneiric_core.runbooks.facts import FactContext, evaluate

    found = await evaluate("engine.overview", FactContext(engine, params={}))
    assert found.value == "failing"
    [line] = [e for e in found.evidence if "adapter/cache" in e]
    assert line.startswith("swap rolled back: adapter/cache to redis: health check failed")
    assert line.endswith("; memory serves it, health ok"), line
    assert "failing: adapter/cache (memory)" not in " ".join(found.evidence)


async def test_is_it_clear_now_counts_only_what_happened_since_the_walk_began(engine):
    """incident-response's `resolved` check once kept answering "not resolved yet" over the
    rollback that had started the incident, while `verify` said nothing was failing."""
    from oneiric_core.runbooks.facts import FactContext, evaluate

    _, result = await engine.request_swap("adapter", "cache", "redis", actor="alice", approve=True)
    assert result is not None and result.outcome.value == "rolled-back"
    walk = FactContext(engine, params={}, args={"since": "walk"})  # a walk that began after it
    assert (await evaluate("engine.overview", walk)).value == "clear"
    assert (await evaluate("engine.overview", FactContext(engine, params={}))).value == "failing"  # triage sees it
    tree = _catalog().trees["incident-response"]
    assert tree.nodes["resolved"].args == {"since": "walk"}


async def test_stuck_activating_on_a_key_that_serves_never_says_it_was_stuck(engine):
    walker = Walker(_catalog(), "stuck-activating", engine, params={"domain": "adapter", "key": "cache"})
    await walker.advance()
    assert walker.node.kind == "done" and walker.node.id == "serving", walker.breadcrumb()
    text = walker.view()["text"]
    assert "no longer stuck" not in text and "is not activating now: it is ready and serves" in text


async def test_a_walk_going_round_stops_after_max_rounds_and_escalates(engine, settings_dir):
    """config-not-applying's fix loop was walked five times round; every loop now ends."""
    (settings_dir / "adapters.yml").write_text("selections: [\n")  # stays broken whatever is 'fixed'
    engine.reload_settings()
    walker = Walker(_catalog(), "config-not-applying", engine, params={"domain": "adapter", "key": "cache"})
    rounds = 0
    await walker.advance()
    while walker.node.id == "fix":
        await walker.perform()  # "fixed it" (a manual step), yet the file is still broken
        await walker.advance()
        rounds += 1
        assert rounds < 10, walker.breadcrumb()
    assert walker.node.id == "round-limit" and walker.node.kind == "escalate", walker.breadcrumb()
    assert rounds == 3
    assert walker.view()["text"].startswith("This walk came back to 'parse' 3 times without getting further")


async def test_hot_swap_failed_up_now_recheck_loop_ends_at_the_escalation_after_max_rounds():
    """hot-swap-failed's "up now - re-check" once went round for as long as the operator said
    so while the backend stayed down; the third visit is the last, then only the escalation."""
    from oneiric_core.runbooks.drills import run_drill

    result = await run_drill(DEMO, "hot-swap-failed", "backend-never-comes-up")
    assert result.error is None, result.error
    asked = [s for s in result.path if s.node == "backend-down"]
    assert [s.value for s in asked] == ["up now - re-check"] * 3
    assert (result.reached, result.status) == ("hot-swap-failed:round-limit", "finished"), result.why()
    assert result.path[-1].kind == "escalate"
    assert result.path[-1].text.startswith("This walk came back to 'reachable' 3 times")


def test_every_loop_of_every_tree_ends_in_an_escalation():
    """Structural: each tree has the round-limit escalation, and its rounds are bounded."""
    for tree in _catalog().trees.values():
        limit = tree.nodes["round-limit"]
        assert limit.kind == "escalate" and limit.terminal, tree.id
        assert 1 <= tree.max_rounds <= 200, tree.id


@pytest.mark.parametrize("params", [{}, {"domain": "adapter", "key": "cache", "source": "demo", "target": "redis"}],
                         ids=["before-params", "after-params"])
def test_no_walk_text_of_any_shipped_tree_shows_an_unfilled_placeholder(engine, params):
    """proc-hot-swap showed a raw `{target}` until it was set; every text the walker renders
    (a node's title, text, where to look, an action's changes and arguments) says it in words."""
    import re

    catalog = _catalog()
    for tree in catalog.trees.values():
        walker = Walker(catalog, tree.id, engine, params=params)
        for node in tree.nodes.values():
            walker.tree, walker.node_id = tree, node.id
            view = walker.view()
            action = view.get("action") or {}
            texts = [view["title"], view["text"], view["where"], action.get("changes", ""),
                     *action.get("args", {}).values()]
            for text in texts:
                assert not re.search(r"\{\w+\}", text), (tree.id, node.id, text)


async def test_an_unset_parameter_reads_as_words_and_the_walk_still_asks_for_it(engine):
    walker = Walker(_catalog(), "proc-hot-swap", engine, params={"domain": "adapter", "key": "cache"})
    await walker.advance()
    assert walker.node.id == "swap" and walker.missing_params() == ["target"]
    view = walker.view()
    assert view["text"].startswith("Swap adapter/cache to the target provider (not chosen yet): a proposal.")
    assert "{target}" not in view["action"]["changes"]
    walker.set_param("target", "redis")
    assert walker.view()["text"].startswith("Swap adapter/cache to redis: a proposal.")


def test_parameters_the_engine_knows_are_choices_and_another_can_be_typed(engine, tmp_path):
    from oneiric_core.engine import Engine
    from oneiric_core.runbooks.param_choices import param_choices
    from tests.helpers import demo_copy

    remote = Engine(demo_copy(tmp_path / "remote", fast=False), state_dir=tmp_path / "remote-state", actor="alice")
    try:  # the demo as shipped has one remote source, "demo"
        assert [c.value for c in param_choices(remote, {}, "source").choices] == ["demo"]
    finally:
        remote.close()
    keys = param_choices(engine, {"domain": "adapter"}, "key")
    assert "cache" in [c.value for c in keys.choices] and keys.other.startswith("Type a key that is not listed")
    assert [c.value for c in param_choices(engine, {}, "domain").choices][:2] == ["adapter", "service"]
    targets = param_choices(engine, {"domain": "adapter", "key": "cache"}, "target")
    assert targets.title == "Provider to swap adapter/cache to (serving now: memory)"
    assert "memory" not in [c.value for c in targets.choices] and "redis" in [c.value for c in targets.choices]
    nowhere = param_choices(engine, {"domain": "adapter", "key": "no-such-key"}, "target")
    assert nowhere.choices == [] and nowhere.other  # a key that does not exist: typing is the way


def test_an_own_copy_refused_by_a_newer_rule_leaves_the_shipped_tree_serving(tmp_path):
    """A settings directory made by an older `oneiric init` keeps its own copy of remote-sync
    with the rotation offered first: the copy is refused, in one sentence, and the shipped
    tree of that id serves instead of none."""
    from oneiric_core.package_data import default_runbook_dir

    shipped = (default_runbook_dir() / "remote-sync.yml").read_text()
    old = shipped.replace(
        '{"no - treat it as tampering": security, "yes - add the announced key to trusted_keys": rotate}',
        '{"yes - add the announced key to trusted_keys": rotate, "no - treat it as tampering": security}')
    assert old != shipped
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "remote-sync.yml").write_text(old)
    catalog = load_catalog(tmp_path)
    assert catalog.trees["remote-sync"].file == default_runbook_dir() / "remote-sync.yml"
    (error,) = [e for e in catalog.errors if "remote-sync.yml" in e]
    assert error.startswith(f"{tmp_path / 'runbooks' / 'remote-sync.yml'}: node ")
    assert error.endswith("The shipped 'remote-sync' runbook serves instead until that file is fixed (or removed).")
