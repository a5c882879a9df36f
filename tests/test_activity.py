"""Pause, drain and resume with in-flight work, persisted across engine restarts."""

from __future__ import annotations

import asyncio

import pytest

from oneiric_core.engine import Engine
from oneiric_core.errors import ComponentPaused, NotFound, ReadOnlyError
from oneiric_core.lifecycle import SwapOutcome
from tests.helpers import until


async def test_paused_key_raises_component_paused_not_not_found(engine):
    engine.pause("adapter", "cache", note="db maintenance")
    with pytest.raises(ComponentPaused, match=r"adapter/cache is paused by tester \(db maintenance\)"):
        with engine.use("adapter", "cache"):
            pass
    # other keys are untouched
    with engine.use("adapter", "storage") as storage:
        assert storage is not None
    engine.resume("adapter", "cache")
    with engine.use("adapter", "cache") as cache:
        await cache.set("k", "v")


async def test_paused_key_refuses_swaps_unless_forced(engine):
    engine.pause("adapter", "cache")
    refused = await engine._swap_now("adapter", "cache", "sqlite")
    assert refused.outcome == SwapOutcome.REFUSED
    assert refused.blockers == ["adapter/cache is paused by tester"]
    assert engine.journal(limit=1, kinds=["swap-failed"])[0].outcome == "refused"
    forced = await engine._swap_now("adapter", "cache", "sqlite", force=True)
    assert forced.outcome == SwapOutcome.COMPLETE


async def test_drain_waits_for_in_flight_work(engine):
    release = asyncio.Event()
    entered = asyncio.Event()

    async def busy():
        async with engine.use("adapter", "cache"):
            entered.set()
            await release.wait()

    users = [asyncio.create_task(busy()) for _ in range(3)]
    await entered.wait()
    ref = engine.ref("adapter", "cache")
    assert engine.lifecycle.slot(ref).inflight >= 3  # (a health probe may be in flight too)
    drain = asyncio.create_task(engine.drain("adapter", "cache", note="rolling update"))
    await until(lambda: engine.activity.state(ref).value == "draining", "the key to be draining")
    assert not drain.done()  # the three users still hold it: the drain waits for them
    with pytest.raises(ComponentPaused, match="draining"):
        with engine.use("adapter", "cache"):
            pass
    release.set()
    await asyncio.gather(*users)
    record = await asyncio.wait_for(drain, 5)
    assert record.state == "drained"
    assert engine.lifecycle.slot(ref).inflight == 0
    events = engine.journal(kinds=["activity-changed"], key="cache")
    assert [e.outcome for e in events] == ["draining", "drained"]
    assert "3 in flight" in events[0].message
    with pytest.raises(ComponentPaused, match="drained"):
        with engine.use("adapter", "cache"):
            pass


async def test_drain_times_out_while_work_is_still_in_flight(engine):
    release = asyncio.Event()

    entered = asyncio.Event()

    async def busy():
        async with engine.use("adapter", "cache"):
            entered.set()
            await release.wait()

    user = asyncio.create_task(busy())
    await entered.wait()
    record = await engine.drain("adapter", "cache", timeout=0.2)
    assert record.state == "draining"
    release.set()
    await user


async def test_resume_during_drain_ends_the_wait(engine):
    release = asyncio.Event()

    entered = asyncio.Event()

    async def busy():
        async with engine.use("adapter", "cache"):
            entered.set()
            await release.wait()

    user = asyncio.create_task(busy())
    await entered.wait()
    drain = asyncio.create_task(engine.drain("adapter", "cache"))
    ref = engine.ref("adapter", "cache")
    await until(lambda: engine.activity.state(ref).value == "draining", "the key to be draining")
    engine.resume("adapter", "cache")
    record = await asyncio.wait_for(drain, 2)
    assert record.state == "active"
    release.set()
    await user


async def test_activity_and_journal_survive_a_restart(settings_dir, tmp_path):
    state = tmp_path / "state"
    first = Engine(settings_dir, state_dir=state, actor="alice")
    await first.start()
    first.pause("adapter", "cache", note="investigating")
    await first.drain("task", "runner")
    last_id = first.store.last_journal_id()
    await first.stop()
    first.close()

    second = Engine(settings_dir, state_dir=state, actor="bob")
    await second.start()
    try:
        cache = second.activity.get(second.ref("adapter", "cache"))
        assert (cache.state, cache.actor, cache.note) == ("paused", "alice", "investigating")
        assert second.activity.state(second.ref("task", "runner")).value == "drained"
        with pytest.raises(ComponentPaused):
            with second.use("adapter", "cache"):
                pass
        old = second.journal(limit=1000)
        assert any(e.kind == "activity-changed" and e.actor == "alice" for e in old)
        assert max(e.id for e in old) > last_id  # the new host appended after the old history
    finally:
        await second.stop()
        second.close()


async def test_pause_from_another_process_goes_through_the_host_and_a_direct_write_is_undone(
        engine, settings_dir, tmp_path):
    import re

    from oneiric_core.operator_port import connect
    from tests.helpers import shown

    client = Engine(settings_dir, state_dir=tmp_path / "state", actor="cli-user")
    try:
        result = await connect(client).pause("adapter", "cache", note="from the cli")
        assert result.ok, result.message
        with pytest.raises(ComponentPaused, match=re.escape(f"by {shown('cli-user')}")):
            with engine.use("adapter", "cache"):
                pass
        # Writing the store behind the host's back is not a way to act: it is put back.
        client.resume("adapter", "cache")
        await until(lambda: engine.journal(kinds=["store-tampered"]), "a store-tampered event")
        with pytest.raises(ComponentPaused):
            with engine.use("adapter", "cache"):
                pass
    finally:
        client.close()


async def test_unknown_key_and_read_only_are_refused(settings_dir, tmp_path):
    eng = Engine(settings_dir, state_dir=tmp_path / "state", actor="tester", read_only=True)
    try:
        with pytest.raises(NotFound):
            eng.pause("adapter", "nosuch")
        with pytest.raises(ReadOnlyError, match="Read-only"):
            eng.pause("adapter", "cache")
        with pytest.raises(ReadOnlyError):
            await eng._swap_now("adapter", "cache", "sqlite")
        plan = eng.plan_swap("adapter", "cache", "sqlite")
        assert plan.outcome == SwapOutcome.PLANNED
        assert eng.journal() == []
    finally:
        eng.close()
