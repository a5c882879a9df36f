"""The engine as a whole: settings reloads, health monitoring, the journal, host and clients."""

from __future__ import annotations

import asyncio
import time

import pytest

from oneiric_core.domains import ComponentRef, Domain
from oneiric_core.engine import Engine, HostBusy
from oneiric_core.events import Event
from tests.helpers import until, write

ADAPTERS_SQLITE = """\
# the cache is on sqlite for this test
selections:
  cache: sqlite
"""

BROKEN_SYNTAX = """\
selections:
  cache: memory
  storage local
"""

BROKEN_SCHEMA = """\
selections:
  cache: memory
candidates:
  - key: cache
    provider: fast
    factory: not a factory
"""


async def test_broken_yaml_keeps_the_last_good_selections_serving(engine, settings_dir):
    adapters = settings_dir / "adapters.yml"
    adapters.write_text(ADAPTERS_SQLITE)
    assert engine.reload_settings() == []
    assert engine.resolve("adapter", "cache").provider == "sqlite"
    changed = engine.journal(kinds=["selection-changed"])[-1]
    assert changed.data == {"from": "memory", "to": "sqlite"}

    adapters.write_text(BROKEN_SYNTAX)
    problems = engine.reload_settings()
    assert len(problems) == 1 and problems[0].line == 4
    assert engine.resolve("adapter", "cache").provider == "sqlite"  # last good still in force
    invalid = engine.journal(kinds=["config-invalid"])[-1]
    assert invalid.severity.value == "error"
    assert "adapters.yml:4:" in invalid.message
    assert "the last good version of that file stays in force" in invalid.message
    assert invalid.data["line"] == 4 and invalid.data["file"].endswith("adapters.yml")

    adapters.write_text(BROKEN_SCHEMA)
    problems = engine.reload_settings()
    assert problems and problems[0].line == 6 and "factory" in problems[0].reason
    assert engine.resolve("adapter", "cache").provider == "sqlite"

    adapters.write_text("selections:\n  cache: memory\n")
    assert engine.reload_settings() == []
    assert engine.resolve("adapter", "cache").provider == "memory"


async def test_invalid_file_at_start_is_journaled_once_and_defaults_serve(settings_dir, tmp_path):
    write(settings_dir / "app.yml", "lifecycle:\n  health_timeout: -1\n")
    eng = Engine(settings_dir, state_dir=tmp_path / "state", actor="tester")
    await eng.start()
    try:
        invalid = eng.journal(kinds=["config-invalid"])
        assert len(invalid) == 1 and "app.yml:2:" in invalid[0].message
        assert eng.lifecycle.options.health_timeout == 5.0  # the default, since there was no good copy
        assert all(c.state == "ready" for c in eng.components())
    finally:
        await eng.stop()
        eng.close()


async def test_provider_settings_reach_the_provider(engine, settings_dir):
    # the demo points redis at 6399 through provider_settings
    cand = engine.explain("adapter", "cache").ranked
    redis = next(r.candidate for r in cand if r.candidate.provider == "redis")
    assert redis.settings["port"] == 6399 and redis.settings["host"] == "127.0.0.1"
    large = next(r.candidate for r in cand if r.candidate.provider == "memory-large")
    assert large.source == "settings" and large.settings["max_entries"] == 100000


async def test_health_changes_are_journaled_on_transitions_only(settings_dir, tmp_path):
    write(settings_dir / "adapters.yml", """\
        selections:
          cache: memory
          flap: flappy
        candidates:
          - key: flap
            provider: flappy
            factory: tests.fixture_providers:flappy
            settings: {name: flappy}
        """)
    state = tmp_path / "state"
    eng = Engine(settings_dir, state_dir=state, actor="tester")
    await eng.start()
    try:
        flag = state / "flappy.down"
        for _ in range(3):
            await eng.probe("adapter", "flap")
        assert eng.journal(kinds=["health-changed"], key="flap") == []  # unknown -> ok is not news
        flag.write_text("backend unreachable")
        for _ in range(4):
            await eng.probe("adapter", "flap")
        flag.unlink()
        for _ in range(2):
            await eng.probe("adapter", "flap")
        changes = eng.journal(kinds=["health-changed"], key="flap")
        assert [(e.data["from"], e.data["to"]) for e in changes] == [("ok", "failed"), ("failed", "ok")]
        assert "backend unreachable" in changes[0].message and changes[0].severity.value == "error"
        track = eng.health.track(ComponentRef(Domain.ADAPTER, "flap"))
        assert track.status.value == "ok" and len(track.samples) >= 9
        eng.flush_snapshots()
        stored = eng.store.get_health("adapter", "flap")
        assert stored.status == "ok" and len(stored.samples) == len(track.samples)
    finally:
        await eng.stop()
        eng.close()


async def test_monitor_probes_periodically_and_keeps_bounded_history(settings_dir, tmp_path):
    write(settings_dir / "app.yml", "health:\n  interval_s: 0.02\n  history: 5\n")
    eng = Engine(settings_dir, state_dir=tmp_path / "state", actor="tester")
    await eng.start()
    try:
        track = eng.health.track(ComponentRef(Domain.ADAPTER, "cache"))
        await until(lambda: len(track.samples) == 5, "five health samples")
        fifth = track.samples[-1].ts
        await until(lambda: track.samples[-1].ts > fifth, "a sixth probe")
        assert len(track.samples) == 5  # capped at history: the sixth pushed the oldest out
        assert all(s.latency_ms is not None for s in track.samples)
    finally:
        await eng.stop()
        eng.close()


async def test_a_second_host_is_refused_and_a_client_sees_the_hosts_state(settings_dir, tmp_path):
    from tests.helpers import start_host_process

    state = tmp_path / "state"
    host = start_host_process(settings_dir, state)
    try:
        other = Engine(settings_dir, state_dir=state, actor="second")
        try:
            with pytest.raises(HostBusy, match=f"pid {host.pid} .*already runs this state directory"):
                await other.start()
            lease, alive = other.host()
            assert alive and lease.pid == host.pid
            status = {str(c.ref): c for c in other.components()}
            assert status["adapter/cache"].serving == "sqlite"
            assert status["adapter/cache"].state == "ready"
            assert status["adapter/cache"].last_swap["to"] == "sqlite"
            assert status["adapter/storage"].serving == "scratch"
        finally:
            other.close()
    finally:
        host.kill()
        host.wait()


async def test_journal_retention_prunes_at_start(settings_dir, tmp_path):
    write(settings_dir / "app.yml", "journal:\n  max_rows: 100\n")
    state = tmp_path / "state"
    eng = Engine(settings_dir, state_dir=state, actor="tester")
    eng.store.append_many(Event("config-changed", f"old {i}", ts=time.time() - 10) for i in range(250))
    await eng.start()
    try:
        pruned = await until(lambda: eng.journal(kinds=["journal-pruned"]), "the prune at start")
        # the 250 old events and whatever the start journaled before the prune read the store
        assert pruned[-1].data["pruned"] >= 150
        assert pruned[-1].message.startswith(f"journal retention pruned {pruned[-1].data['pruned']} events")
        assert not eng.journal(text="old 149") and eng.store.count_journal() <= 100 + 20
    finally:
        await eng.stop()
        eng.close()


async def test_subscribers_get_live_events_and_slow_ones_are_bounded(engine):
    live = engine.subscribe()
    tiny = engine.subscribe(maxsize=2)
    await engine._swap_now("adapter", "cache", "sqlite")
    await engine._swap_now("adapter", "cache", "redis")
    got = [e.kind for e in live.drain()]
    assert got[:1] == ["swap-started"] and "swap-complete" in got
    assert len(tiny.drain()) == 2 and tiny.dropped >= 1
    live.close()
    tiny.close()


async def test_telemetry_counts_swaps_health_and_resolutions(engine):
    await engine._swap_now("adapter", "cache", "sqlite")
    await engine._swap_now("adapter", "cache", "redis")
    for _ in range(7):
        engine.resolve("adapter", "cache")
    metrics = engine.telemetry.metrics()
    outcomes = {attrs["oneiric.swap.outcome"]: value for attrs, value in metrics["oneiric.swaps"]
                if attrs.get("oneiric.key") == "cache" and attrs.get("oneiric.provider") in ("sqlite", "redis")}
    assert outcomes == {"complete": 1, "rolled-back": 1}
    resolutions = {attrs["oneiric.domain"]: value for attrs, value in metrics["oneiric.resolutions"]}
    assert resolutions["adapter"] >= 7
    assert any(attrs.get("oneiric.key") == "cache" for attrs, _ in metrics["oneiric.health.checks"])


async def test_a_key_paused_before_the_host_starts_is_activated_when_resumed(settings_dir, tmp_path):
    """Paused at start means never activated; resuming it (here, or from another process
    through the store) must start its winner, not leave it 'active' with nothing serving."""
    from tests.helpers import host_with_cache_paused_before_start

    async with host_with_cache_paused_before_start(settings_dir, tmp_path / "state") as engine:
        cache = ComponentRef(Domain.ADAPTER, "cache")
        assert next(s for s in engine.components([cache])).serving is None
        engine.resume("adapter", "cache")
        await until(lambda: next(s for s in engine.components([cache])).serving, "the resumed key to start")
        status = engine.components([cache])[0]
        assert status.serving == status.winner and status.state == "ready" and status.activity == "active"
        with engine.use("adapter", "cache") as provider:
            assert provider is not None


async def test_a_health_round_over_many_keys_lets_the_event_loop_run(tmp_path):
    """Built-in health checks finish without awaiting anything: a round over hundreds of keys
    must still hand the loop back between groups of probes (the console runs on that loop)."""
    from oneiric_core.engine import Engine
    from oneiric_core.health import PROBES_PER_TURN
    from tests.helpers import demo_copy, many_candidates

    settings = demo_copy(tmp_path)
    (settings / "services.yml").write_text(many_candidates(300))
    engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    await engine.start()
    try:
        serving = [s for s in engine.components() if s.serving]
        assert len(serving) >= 300
        before = {s.ref: engine.health.track(s.ref).checked_at for s in serving}
        tracks = {ref: engine.health.track(ref) for ref in before}
        most_between_turns = 0
        round_done = False

        def probed() -> int:
            return sum(1 for ref, track in tracks.items() if track.checked_at > before[ref])

        async def ticker() -> None:
            # One step per turn of the loop: how many probes finished since the last turn?
            nonlocal most_between_turns
            seen = probed()
            while not round_done:
                await asyncio.sleep(0)
                now = probed()
                most_between_turns = max(most_between_turns, now - seen)
                seen = now

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        await engine.health.probe_all()
        round_done = True
        await task
        assert probed() == len(tracks)  # every key was probed
        # ... and never more than a couple of groups of probes ran between two turns of the loop
        assert most_between_turns <= 2 * PROBES_PER_TURN, most_between_turns
    finally:
        await engine.stop()
        engine.close()
