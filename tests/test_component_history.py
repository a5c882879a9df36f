"""A component's history and its candidates' record, from the journal and the stored health,
on a real engine: the same in the host and in another process reading its store."""

from __future__ import annotations

import time

from oneiric_core.candidate_record import last_known_health, records
from oneiric_core.engine import Engine
from oneiric_core.lifecycle import SwapOutcome


async def _roll_back_redis(engine: Engine, times: int) -> None:
    for _ in range(times):  # the demo's redis points at a port nothing listens on
        result = await engine._swap_now("adapter", "cache", "redis")
        assert result.outcome == SwapOutcome.ROLLED_BACK


async def test_three_rollbacks_are_the_candidates_last_gate_and_a_window_sentence(engine, tmp_path):
    await _roll_back_redis(engine, 3)
    rollback = engine.journal(limit=1, kinds=["swap-rollback"], key="cache")[0]
    assert rollback.data["gate"]["status"] == "failed"  # the gate's answer is journaled with the outcome

    record = engine.candidate_records("adapter", "cache")["redis"]
    assert record.last_gate is not None and record.last_gate.status == "failed"
    assert "127.0.0.1:6399" in record.last_gate.message
    assert (record.rollbacks, record.sentence()) == (3, "rolled back 3x in 15 min")

    # another process (a client console) reads the same record from the store
    client = Engine(engine.settings_dir, state_dir=tmp_path / "state", actor="client")
    try:
        assert not client.is_host
        seen = client.candidate_records("adapter", "cache")["redis"]
        assert seen.sentence() == "rolled back 3x in 15 min" and seen.last_gate == record.last_gate
    finally:
        client.close()

    # past the window the failures no longer count, but the last gate is still what is known
    events = engine.journal(kinds=["swap-complete", "swap-rollback", "swap-failed"], key="cache")
    later = records(events, now=time.time() + 16 * 60)["redis"]
    assert later.sentence() == "" and later.last_gate == record.last_gate


async def test_a_completed_swap_records_a_passed_gate(engine):
    result = await engine._swap_now("adapter", "cache", "sqlite")
    assert result.outcome == SwapOutcome.COMPLETE
    record = engine.candidate_records("adapter", "cache")["sqlite"]
    assert record.last_gate is not None and record.last_gate.status == "ok" and record.sentence() == ""


async def test_history_marks_swaps_rollbacks_and_health_changes_over_the_samples(engine):
    await engine.probe("adapter", "cache")
    await engine._swap_now("adapter", "cache", "sqlite")
    await engine.probe("adapter", "cache")
    await _roll_back_redis(engine, 1)
    forced = await engine._swap_now("adapter", "cache", "redis", force=True)  # bound although unhealthy
    assert forced.outcome == SwapOutcome.COMPLETE

    history = engine.component_history("adapter", "cache")
    labels = [m.label for m in history.markers]
    assert "swap memory -> sqlite" in labels and "rollback redis" in labels and "swap sqlite -> redis" in labels
    assert "health unknown -> failed" in labels  # the forced redis's first health
    assert "activate memory" in labels  # the host's start
    assert history.counts() == {"swap": 3, "rollback": 1, "health": 1}
    assert history.provider == "redis" and history.status == "failed" and history.exact_times
    times, latencies = history.points()
    assert len(times) == len(latencies) and all(m.ts >= min(s.ts for s in history.samples) - 3600
                                                for m in history.markers)


async def test_a_client_rebuilds_trend_and_changed_from_the_hosts_snapshot(engine, tmp_path):
    await engine._swap_now("adapter", "cache", "sqlite")
    for _ in range(3):
        await engine.probe("adapter", "cache")
    engine.flush_snapshots()
    host_track = engine.health.track(engine.ref("adapter", "cache"))
    assert host_track is not None

    client = Engine(engine.settings_dir, state_dir=tmp_path / "state", actor="client")
    try:
        ref = client.ref("adapter", "cache")
        assert client.health.track(ref) is None  # nothing probed in this process
        client.components([ref])
        track = client.health_track(ref)
        assert track is not None
        assert track.samples.latencies() == host_track.samples.latencies()
        assert track.changed_at == host_track.changed_at and track.provider == "sqlite"
        assert track.samples[-1].ts == host_track.checked_at

        history = client.component_history("adapter", "cache")
        assert not history.exact_times and "swap memory -> sqlite" in [m.label for m in history.markers]
        assert len(history.samples) == len(host_track.samples)
    finally:
        client.close()


async def test_last_known_health_is_live_when_serving_else_the_last_gate(engine):
    await _roll_back_redis(engine, 1)
    recs = engine.candidate_records("adapter", "cache")
    redis = last_known_health(serving=None, record=recs.get("redis"), seen=None)
    assert redis[0] == "failed" and "127.0.0.1:6399" in redis[1]
    # the journal's gate wins over an older health this process remembers of it
    assert last_known_health(serving=None, record=recs.get("redis"), seen=("ok", "")) == redis
    assert last_known_health(serving=("ok", "fine"), record=recs.get("redis"), seen=None) == ("ok", "fine")
    assert last_known_health(serving=None, record=recs.get("memory-large"), seen=None) == ("unknown", "")
