"""Swaps, rollback, force, dry-run, cleanup and in-flight accounting on a real engine."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from oneiric_core.engine import Engine
from oneiric_core.errors import ComponentUnavailable, NotFound
from oneiric_core.lifecycle import LifecycleState, SwapOutcome
from tests import fixture_providers
from tests.helpers import demo_copy, until, write

PROVIDERS = {
    "good": "healthy", "good2": "healthy", "bad": "unhealthy", "boom": "raising",
    "slowbuild": "hanging_factory", "slowhealth": "hanging_health", "sticky": "failing_stop",
    "sync": "sync_provider", "slowstop": "slow_stop",
}


@pytest.fixture(autouse=True)
def _release_hung_threads():
    fixture_providers.RELEASE.clear()
    yield
    fixture_providers.RELEASE.set()


@pytest.fixture
def settings_dir(tmp_path):
    settings = demo_copy(tmp_path)
    lines = ["selections:", "  cache: memory", "  svc: good", "candidates:"]
    for name, factory in PROVIDERS.items():
        lines += ["  - key: svc", f"    provider: {name}", f"    factory: tests.fixture_providers:{factory}",
                  "    settings:", f"      name: {name}"]
    lines += ["provider_settings:", "  cache:", "    redis:", "      port: 6399", "      timeout_s: 0.5"]
    write(settings / "adapters.yml", "\n".join(lines) + "\n")
    return settings


def serving(engine: Engine, key: str = "svc"):
    with engine.use("adapter", key) as obj:
        return obj


def kinds(engine: Engine, key: str = "svc") -> list[str]:
    return [e.kind for e in engine.journal(limit=100, domain="adapter", key=key)]


async def test_start_activates_every_winner(engine):
    statuses = {str(c.ref): c for c in engine.components()}
    assert statuses["adapter/svc"].serving == "good"
    assert statuses["adapter/cache"].serving == "memory"
    assert all(c.state == "ready" for c in statuses.values())


async def test_swap_success_binds_new_and_stops_old(engine):
    old = serving(engine)
    result = await engine._swap_now("adapter", "svc", "good2")
    assert result.outcome == SwapOutcome.COMPLETE
    new = serving(engine)
    assert new.name == "good2" and old.stopped and not new.stopped
    assert result.activation_ms is not None and result.health_ms is not None and result.cleanup_ms is not None
    assert result.total_ms >= result.activation_ms + result.health_ms
    assert kinds(engine)[-2:] == ["swap-started", "swap-complete"]
    done = engine.journal(limit=1, kinds=["swap-complete"], key="svc")[0]
    assert done.actor == "tester" and done.data["from"] == "good" and done.data["to"] == "good2"
    assert engine.components()[[str(c.ref) for c in engine.components()].index("adapter/svc")].serving == "good2"


@pytest.mark.parametrize(
    ("provider", "reason"),
    [
        ("bad", "health check failed: backend refused the probe"),
        ("boom", "factory raised RuntimeError: cannot connect to the backend"),
        ("slowbuild", "activation timed out after 1s"),
        ("slowhealth", "health check failed: health check timed out after 0.5s"),
    ],
)
async def test_failed_swaps_roll_back_and_the_old_instance_keeps_serving(engine, provider, reason):
    old = serving(engine)
    result = await engine._swap_now("adapter", "svc", provider)
    assert result.outcome == SwapOutcome.ROLLED_BACK
    assert result.reason == reason
    assert serving(engine) is old and not old.stopped
    slot = engine.lifecycle.slot(engine.ref("adapter", "svc"))
    assert slot.state == LifecycleState.READY and slot.last_error == reason
    rollback = engine.journal(limit=1, kinds=["swap-rollback"], key="svc")[0]
    assert reason in rollback.message and "good keeps serving" in rollback.message


async def test_unhealthy_new_instance_is_stopped_on_rollback(engine):
    fixture_providers.STOPPED.clear()
    await engine._swap_now("adapter", "svc", "bad")
    assert "bad" in fixture_providers.STOPPED and "good" not in fixture_providers.STOPPED


async def test_demo_redis_rolls_back_with_a_clear_reason(engine):
    result = await engine._swap_now("adapter", "cache", "redis")
    assert result.outcome == SwapOutcome.ROLLED_BACK
    assert "127.0.0.1:6399" in result.reason
    assert serving(engine, "cache").__class__.__module__.endswith("cache_memory")
    # redis's own error ends with a full stop; the sentence around it must still read as one
    rollback = engine.journal(limit=1, kinds=["swap-rollback"], key="cache")[0]
    assert ".;" not in rollback.message and rollback.message.endswith("; memory keeps serving"), rollback.message


async def test_force_binds_an_unhealthy_provider(engine):
    result = await engine._swap_now("adapter", "svc", "bad", force=True)
    assert result.outcome == SwapOutcome.COMPLETE and result.forced
    assert serving(engine).name == "bad"
    done = engine.journal(limit=1, kinds=["swap-complete"], key="svc")[0]
    assert "forced" in done.message and "unhealthy" in done.message


async def test_force_cannot_bind_a_factory_that_raises(engine):
    result = await engine._swap_now("adapter", "svc", "boom", force=True)
    assert result.outcome == SwapOutcome.ROLLED_BACK
    assert serving(engine).name == "good"


async def test_dry_run_changes_nothing(engine):
    before_journal = engine.store.last_journal_id()
    old = serving(engine)
    plan = engine.plan_swap("adapter", "svc", "bad")
    assert plan.outcome == SwapOutcome.PLANNED
    assert (plan.from_provider, plan.to_provider, plan.blockers) == ("good", "bad", [])
    # the plan says where the target stands: chosen by hand against the ranking, or its winner
    ranked = [r.candidate.provider for r in engine.explain("adapter", "svc").ranked]
    assert f"good -> bad: overrides the ranking: bad ranks #{ranked.index('bad') + 1} (" in plan.reason
    assert serving(engine) is old
    assert engine.store.last_journal_id() == before_journal
    assert (await engine._swap_now("adapter", "svc", "good2")).outcome == SwapOutcome.COMPLETE
    back = engine.plan_swap("adapter", "svc", ranked[0])
    assert f"good2 -> {ranked[0]}: {ranked[0]} is the ranking's winner (" in back.reason
    engine.pause("adapter", "svc")
    plan = engine.plan_swap("adapter", "svc", "good2")
    assert plan.blockers == ["adapter/svc is paused by tester"]


async def test_cleanup_failure_keeps_the_new_instance_bound(engine):
    await engine._swap_now("adapter", "svc", "sticky")
    result = await engine._swap_now("adapter", "svc", "good2")
    assert result.outcome == SwapOutcome.COMPLETE
    assert serving(engine).name == "good2"
    failed = engine.journal(limit=1, kinds=["cleanup-failed"], key="svc")[0]
    assert "OSError: socket already closed" in failed.message


async def test_swap_to_the_serving_candidate_is_a_noop(engine):
    old = serving(engine)
    result = await engine._swap_now("adapter", "svc", "good")
    assert result.outcome == SwapOutcome.NOOP and serving(engine) is old


async def test_swap_without_provider_goes_to_the_resolver_winner(engine):
    await engine._swap_now("adapter", "svc", "good2")
    result = await engine._swap_now("adapter", "svc")
    assert result.to_provider == "good" and serving(engine).name == "good"


async def test_unknown_provider_or_key_is_not_found(engine):
    with pytest.raises(NotFound, match="Provider 'nosuch' is not registered for adapter/svc"):
        await engine._swap_now("adapter", "svc", "nosuch")
    with pytest.raises(NotFound):
        await engine._swap_now("adapter", "nokey", "good")


async def test_sync_factory_and_health_run_in_worker_threads(engine):
    result = await engine._swap_now("adapter", "svc", "sync")
    assert result.outcome == SwapOutcome.COMPLETE
    obj = serving(engine)
    assert obj.thread_names and all(n.startswith("oneiric-provider") for n in obj.thread_names)
    assert threading.main_thread().name not in obj.thread_names


async def test_a_hung_factory_does_not_freeze_the_loop(engine):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    task = asyncio.create_task(ticker())
    await engine._swap_now("adapter", "svc", "slowbuild")
    task.cancel()
    assert ticks >= 10  # the loop kept running during the 1 s activation timeout


async def test_swaps_on_one_key_are_serialized(engine):
    mark = engine.store.last_journal_id()
    results = await asyncio.gather(
        engine._swap_now("adapter", "svc", "good2"), engine._swap_now("adapter", "svc", "slowstop"),
        engine._swap_now("adapter", "svc", "good"),
    )
    assert [r.outcome for r in results] == [SwapOutcome.COMPLETE] * 3
    seq = [e.kind for e in engine.journal(after_id=mark, kinds=["swap-started", "swap-complete"])]
    assert seq == ["swap-started", "swap-complete"] * 3  # never two swaps of one key interleaved


async def test_thousand_uses_during_a_hundred_swaps(engine):
    errors: list[BaseException] = []
    stopped_seen = 0
    handed_out = set()

    done = asyncio.Event()
    uses = 0

    async def worker(i: int):
        nonlocal stopped_seen, uses
        while not done.is_set():
            uses += 1
            try:
                async with engine.use("adapter", "svc") as obj:
                    handed_out.add(obj.name)
                    if obj.stopped:
                        stopped_seen += 1
                    await asyncio.sleep(0.001 * (i % 5))
                    if obj.stopped:
                        stopped_seen += 1
            except BaseException as exc:  # noqa: BLE001 - the test counts every error
                errors.append(exc)

    async def swapper():
        outcomes = []
        for i in range(100):
            outcomes.append((await engine._swap_now("adapter", "svc", "good2" if i % 2 == 0 else "good")).outcome)
        return outcomes

    users = [asyncio.create_task(worker(i)) for i in range(1000)]
    await until(lambda: uses >= len(users), "every user to be using the key")  # the swaps run under load
    outcomes = await swapper()
    done.set()
    await asyncio.gather(*users)
    assert uses > 5000
    assert errors == []
    assert stopped_seen == 0
    assert outcomes == [SwapOutcome.COMPLETE] * 100
    assert handed_out == {"good", "good2"}


async def test_uses_from_threads_never_get_a_stopped_instance(settings_dir, tmp_path):
    # A generous cleanup_timeout: the guarantee is "never stopped while in use, unless the use
    # outlives cleanup_timeout", and a loaded CI machine can stall a thread for a second.
    app = settings_dir / "app.yml"
    app.write_text(app.read_text().replace("cleanup_timeout: 1.0", "cleanup_timeout: 30"))
    engine = Engine(settings_dir, state_dir=tmp_path / "state-threads", actor="tester")
    await engine.start()
    problems: list[str] = []
    stop = threading.Event()

    def user():
        while not stop.is_set():
            with engine.use("adapter", "svc") as obj:
                if obj.stopped:
                    problems.append(obj.name)

    threads = [threading.Thread(target=user) for _ in range(4)]
    # Switch threads often: the race this guards against (a release resolving the wait of a
    # retire that began after it, while another use was in flight) needs a thread switch
    # between two statements of Instance.release.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    for t in threads:
        t.start()
    try:
        for i in range(30):
            await engine._swap_now("adapter", "svc", "good2" if i % 2 == 0 else "good")
    finally:
        stop.set()
        for t in threads:
            t.join()
        sys.setswitchinterval(switch)
        await engine.stop()
        engine.close()
    assert problems == []


async def test_first_activation_failure_leaves_the_key_failed(settings_dir, tmp_path):
    adapters = settings_dir / "adapters.yml"
    adapters.write_text(adapters.read_text().replace("svc: good", "svc: boom"))
    eng = Engine(settings_dir, state_dir=tmp_path / "state2", actor="tester")
    await eng.start()
    try:
        slot = eng.lifecycle.slot(eng.ref("adapter", "svc"))
        assert slot.state == LifecycleState.FAILED
        with pytest.raises(ComponentUnavailable, match="state failed: factory raised RuntimeError"):
            with eng.use("adapter", "svc"):
                pass
        assert eng.journal(limit=1, kinds=["swap-failed"], key="svc")[0].outcome == "failed"
        result = await eng._swap_now("adapter", "svc", "good")
        assert result.outcome == SwapOutcome.COMPLETE and serving(eng).name == "good"
    finally:
        await eng.stop()
        eng.close()


async def test_stop_waits_for_in_flight_work_then_stops_everything(settings_dir, tmp_path):
    eng = Engine(settings_dir, state_dir=tmp_path / "state3", actor="tester")
    await eng.start()
    obj_holder = []
    entered = asyncio.Event()

    async def long_use():
        async with eng.use("adapter", "svc") as obj:
            obj_holder.append(obj)
            entered.set()
            await asyncio.sleep(0.3)  # paces the scenario: work still in flight when stop() begins
            return obj.stopped

    task = asyncio.create_task(long_use())
    await entered.wait()
    await eng.stop()
    assert await task is False  # it was not stopped under the user
    assert obj_holder[0].stopped
    assert eng.journal(limit=1)[-1].kind == "host-stopped"
    eng.close()
