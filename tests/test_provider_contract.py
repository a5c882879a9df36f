"""The provider contract (issue 12, point 1): what a provider returns and raises is its own
failure, never the host's, and nothing it gets wrong passes the health gate.

Every provider here is a real one, built through a real factory string from
tests/fixture_providers.py (on the allow-list, see tests/helpers.py FAST_APP), on a started
Engine with a real SQLite journal; one test runs a real `oneiric run` host and real CLI
processes and checks the host is still alive and answering after its provider raised
SystemExit. The assertions read what an operator reads: the swap's outcome and reason, what
`use()` hands out, the journal, the CLI's exit code and sentence.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess

import pytest

from oneiric_core.engine import Engine
from oneiric_core.errors import ComponentUnavailable
from oneiric_core.lifecycle import LifecycleState, SwapOutcome
from tests import fixture_providers
from tests.helpers import FAST_APP, REPO, demo_copy, until, write

PHASES = ("factory", "start", "health", "stop")
ERRORS = ("SystemExit", "KeyboardInterrupt", "GeneratorExit")


def misbehaving_name(phase: str, error: str, sync: bool) -> str:
    return f"{phase}-{error.lower()}-{'thread' if sync else 'loop'}"


def adapters_yml(selected: str = "good", extra: str = "") -> str:
    """adapter/svc with well-behaved providers, every contract breaker, and every
    (phase, error, sync or async) Misbehaving variant; `selected` wins."""
    lines = ["selections:", "  cache: memory", f"  svc: {selected}", "candidates:"]

    def candidate(name: str, factory: str, **settings: object) -> None:
        lines.extend(["  - key: svc", f"    provider: {name}", f"    factory: tests.fixture_providers:{factory}",
                      "    settings:", f"      name: {name}"])
        lines.extend(f"      {k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items())

    candidate("good", "healthy")
    candidate("good2", "healthy")
    candidate("says-fine", "says_fine")
    candidate("says-nothing", "says_nothing")
    candidate("says-true", "says_bool", healthy=True)
    candidate("says-false", "says_bool", healthy=False)
    candidate("builds-none", "returns_none")
    candidate("cancels-itself", "misbehaving", phase="health", error="CancelledError")
    candidate("cancels-itself-thread", "misbehaving", phase="health", error="CancelledError", sync=True)
    candidate("slow", "slow_start", start_s=30)
    candidate("child-task-exits", "child_task_exits")
    for phase in PHASES:
        for error in ERRORS:
            for sync in (False, True):
                factory = "misbehaving" if sync else "misbehaving_async"
                candidate(misbehaving_name(phase, error, sync), factory, phase=phase, error=error, sync=sync)
    return "\n".join(lines) + "\n" + extra


@pytest.fixture
def settings_dir(tmp_path):
    settings = demo_copy(tmp_path)
    (settings / "app.yml").write_text(FAST_APP.replace("activation_timeout: 1.0", "activation_timeout: 5.0"))
    write(settings / "adapters.yml", adapters_yml())
    return settings


def serving(engine: Engine, key: str = "svc"):
    with engine.use("adapter", key) as obj:
        return obj


def last(engine: Engine, kind: str):
    found = engine.journal(limit=1, kinds=[kind], domain="adapter", key="svc")
    assert found, f"no {kind} event for adapter/svc"
    return found[0]


async def assert_rolled_back(engine: Engine, provider: str, reason: str, *, force: bool = False) -> None:
    """Swapping svc to `provider` rolls back with `reason`, the old instance keeps serving,
    the journal says so in one sentence, and the engine goes on swapping."""
    old = serving(engine)
    result = await engine._swap_now("adapter", "svc", provider, force=force)
    assert result.outcome == SwapOutcome.ROLLED_BACK, result
    assert result.reason == reason
    assert serving(engine) is old and not old.stopped
    slot = engine.lifecycle.slot(engine.ref("adapter", "svc"))
    assert (slot.state, slot.last_error) == (LifecycleState.READY, reason)
    rollback = last(engine, "swap-rollback")
    assert rollback.message == f"Swap of adapter/svc to {provider} rolled back: {reason}; {old.name} keeps serving"
    assert "\n" not in rollback.message
    other = "good2" if old.name != "good2" else "good"
    after = await engine._swap_now("adapter", "svc", other)
    assert after.outcome == SwapOutcome.COMPLETE and serving(engine).name == other


# -- the health gate takes a HealthResult (or a bool) -------------------------------------------------

async def test_health_returning_a_str_fails_the_gate_naming_the_type(engine):
    await assert_rolled_back(engine, "says-fine",
                             "health check failed: health() returned str 'totally fine', not a HealthResult")


async def test_health_returning_nothing_fails_the_gate(engine):
    await assert_rolled_back(engine, "says-nothing", "health check failed: health() returned None, not a HealthResult")


async def test_the_bool_shorthand_is_the_one_other_form_the_gate_takes(engine):
    await assert_rolled_back(engine, "says-false", "health check failed: health() returned False")
    result = await engine._swap_now("adapter", "svc", "says-true")
    assert result.outcome == SwapOutcome.COMPLETE and result.health.status.value == "ok"
    assert serving(engine).name == "says-true"


async def test_a_periodic_probe_of_a_provider_that_breaks_the_contract_reports_it_failed(engine):
    # force binds it although its gate failed; the monitor's probes then say why it is failed
    result = await engine._swap_now("adapter", "svc", "says-fine", force=True)
    assert result.outcome == SwapOutcome.COMPLETE
    track = await engine.probe("adapter", "svc", journal=True)
    assert track.status.value == "failed"
    assert track.message == "health() returned str 'totally fine', not a HealthResult"
    probed = last(engine, "health-probed")
    assert "failed" in probed.message and "returned str 'totally fine'" in probed.message


async def test_a_health_round_survives_a_provider_whose_health_raises_system_exit(engine):
    assert (await engine._swap_now("adapter", "svc", "health-systemexit-loop", force=True)).outcome == \
        SwapOutcome.COMPLETE
    await engine.health.probe_all()  # one round of the monitor: every probe in its own task
    track = engine.health.track(engine.ref("adapter", "svc"))
    assert (track.provider, track.status.value) == ("health-systemexit-loop", "failed")
    assert track.message == "health check raised SystemExit: 3"
    assert serving(engine, "cache") is not None and engine.started


# -- a factory that returns None has built nothing ----------------------------------------------------

async def test_a_factory_returning_none_fails_the_build(engine):
    reason = "factory tests.fixture_providers:returns_none returned None, not a provider"
    await assert_rolled_back(engine, "builds-none", reason)
    await assert_rolled_back(engine, "builds-none", reason, force=True)  # force skips the gate, not the build


async def test_at_start_a_winner_whose_factory_returns_none_leaves_the_key_failed(settings_dir, tmp_path):
    write(settings_dir / "adapters.yml", adapters_yml(selected="builds-none"))
    async with Engine(settings_dir, state_dir=tmp_path / "state", actor="tester") as engine:
        slot = engine.lifecycle.slot(engine.ref("adapter", "svc"))
        assert slot.state == LifecycleState.FAILED and slot.current is None
        with pytest.raises(ComponentUnavailable, match="returned None, not a provider"):
            serving(engine)
        assert last(engine, "swap-failed").message == (
            "Activation of adapter/svc with builds-none failed: "
            "factory tests.fixture_providers:returns_none returned None, not a provider")
        assert serving(engine, "cache") is not None  # every other key came up
        result = await engine._swap_now("adapter", "svc", "good")
        assert result.outcome == SwapOutcome.COMPLETE and serving(engine).name == "good"


# -- whatever provider code raises is that provider's failure -------------------------------------------

@pytest.mark.parametrize("sync", [False, True], ids=["loop", "thread"])
@pytest.mark.parametrize("error", ERRORS)
@pytest.mark.parametrize("phase", ["factory", "start", "health"])
async def test_base_exceptions_from_provider_code_roll_the_swap_back(engine, phase, error, sync):
    text = {"SystemExit": "SystemExit: 3"}.get(error, error)
    reason = {"factory": f"factory raised {text}", "start": f"start() raised {text}",
              "health": f"health check failed: health check raised {text}"}[phase]
    await assert_rolled_back(engine, misbehaving_name(phase, error, sync), reason)


async def test_a_factory_module_raising_system_exit_on_import_fails_the_build(settings_dir, tmp_path):
    (settings_dir / "app.yml").write_text(FAST_APP + "  - tests.exits_on_import\n")
    extra = ("  - key: svc\n    provider: exits-on-import\n    factory: tests.exits_on_import:create\n")
    write(settings_dir / "adapters.yml", adapters_yml(extra=extra))
    async with Engine(settings_dir, state_dir=tmp_path / "state", actor="tester") as engine:
        await assert_rolled_back(engine, "exits-on-import",
                                 "Factory module 'tests.exits_on_import' raised SystemExit: 3 while being imported")


@pytest.mark.parametrize("sync", [False, True], ids=["loop", "thread"])
@pytest.mark.parametrize("error", ERRORS)
async def test_stop_raising_a_base_exception_is_a_cleanup_failure_and_the_swap_stays_done(engine, error, sync):
    name = misbehaving_name("stop", error, sync)
    assert (await engine._swap_now("adapter", "svc", name)).outcome == SwapOutcome.COMPLETE
    result = await engine._swap_now("adapter", "svc", "good2")
    assert result.outcome == SwapOutcome.COMPLETE and serving(engine).name == "good2"
    text = {"SystemExit": "SystemExit: 3"}.get(error, error)
    assert last(engine, "cleanup-failed").message == f"Cleanup of {name} for adapter/svc failed: stop() raised {text}"


async def test_an_instance_failing_its_gate_by_system_exit_is_stopped(engine):
    fixture_providers.STOPPED.clear()
    await assert_rolled_back(engine, "health-systemexit-loop", "health check failed: health check raised SystemExit: 3")
    assert "health-systemexit-loop" in fixture_providers.STOPPED  # the failed instance was stopped


async def test_the_host_stops_cleanly_with_a_provider_whose_stop_raises_system_exit(settings_dir, tmp_path):
    write(settings_dir / "adapters.yml", adapters_yml(selected="stop-systemexit-loop"))
    engine = Engine(settings_dir, state_dir=tmp_path / "state", actor="tester")
    await engine.start()
    assert serving(engine).name == "stop-systemexit-loop"
    await engine.stop()
    try:
        kinds = [e.kind for e in engine.journal(limit=20)]
        assert kinds[-1] == "host-stopped" and "cleanup-failed" in kinds
    finally:
        engine.close()


# -- cancellation: the provider's own is its failure, ours still cancels ---------------------------------

@pytest.mark.parametrize("provider", ["cancels-itself", "cancels-itself-thread"])
async def test_a_provider_raising_cancelled_error_on_its_own_is_its_failure(engine, provider):
    await assert_rolled_back(engine, provider, "health check failed: health check raised CancelledError")


async def test_cancelling_a_swap_still_cancels_it_and_the_old_instance_keeps_serving(engine):
    fixture_providers.STOPPED.clear()
    old = serving(engine)
    slot = engine.lifecycle.slot(engine.ref("adapter", "svc"))
    task = asyncio.create_task(engine._swap_now("adapter", "svc", "slow"))
    await until(lambda: slot.pending is not None, "the swap to slow to be in flight")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert serving(engine) is old and slot.state == LifecycleState.READY
    assert fixture_providers.STOPPED == ["slow"]  # the half-started instance was stopped, not leaked
    assert (await engine._swap_now("adapter", "svc", "good2")).outcome == SwapOutcome.COMPLETE


async def test_an_activation_timeout_is_still_a_timeout(settings_dir, tmp_path):
    (settings_dir / "app.yml").write_text(FAST_APP.replace("activation_timeout: 1.0", "activation_timeout: 0.2"))
    async with Engine(settings_dir, state_dir=tmp_path / "state", actor="tester") as engine:
        await assert_rolled_back(engine, "slow", "activation timed out after 0.2s")


# -- `health --probe` with no host: the CLI process survives its providers ---------------------------------

def test_health_probe_without_a_host_reports_a_provider_raising_system_exit(run_cli, demo_settings):
    (demo_settings / "app.yml").write_text(FAST_APP)
    write(demo_settings / "adapters.yml", adapters_yml(selected="health-systemexit-thread"))
    res = run_cli("health", "--probe", "--domain", "adapter", "--key", "svc", "--json",
                  env={"PYTHONPATH": str(REPO)})  # the CLI builds the provider itself: tests/ importable
    assert res.returncode == 4, str(res)  # unhealthy, not SystemExit's 3
    [row] = res.json()["results"]
    assert (row["provider"], row["status"]) == ("health-systemexit-thread", "failed")
    assert row["message"] == "health check raised SystemExit: 3"
    assert "Traceback" not in res.stderr


# -- a real host survives a provider raising SystemExit in its health gate -------------------------------

def test_a_real_host_survives_a_swap_to_a_provider_raising_system_exit_and_keeps_answering(
        run_cli, demo_settings, tmp_path):
    from tests.test_change_control import Host

    (demo_settings / "app.yml").write_text(FAST_APP + "approvals:\n  mode: auto\n")
    write(demo_settings / "adapters.yml", adapters_yml())
    host = Host(demo_settings, tmp_path / "state", tmp_path)
    try:
        host.expect("READY=1")
        for provider in ("health-systemexit-loop", "health-keyboardinterrupt-thread", "start-systemexit-loop",
                         "child-task-exits"):
            res = run_cli("swap", "--domain", "adapter", "--key", "svc", "--provider", provider)
            assert res.returncode == 5, str(res)
            error = res.stderr.strip()
            assert error.startswith(f"oneiric: Swap of adapter/svc to {provider} rolled back: ") and \
                "good keeps serving" in error and "\n" not in error, str(res)
            assert host.proc.poll() is None, host.stderr_path.read_text()
        [svc] = run_cli("status", "--json", "--domain", "adapter", "--key", "svc").json()["components"]
        assert (svc["serving"], svc["state"]) == ("good", "ready")
        assert "SystemExit: 3" in svc["last_error"]
        res = run_cli("swap", "--domain", "adapter", "--key", "svc", "--provider", "good2")
        assert res.returncode == 0 and "Swapped adapter/svc good -> good2" in res.stdout, str(res)
        rollbacks = [e for e in host.events() if e["kind"] == "swap-rollback"]
        assert [e["provider"] for e in rollbacks] == ["health-systemexit-loop", "health-keyboardinterrupt-thread",
                                                     "start-systemexit-loop", "child-task-exits"]
        assert host.proc.poll() is None
    finally:
        if host.proc.poll() is None:
            host.proc.send_signal(signal.SIGTERM)
            try:
                host.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        host.close()
    assert host.proc.returncode == 0, host.stderr_path.read_text()
    assert host.events()[-1]["kind"] == "host-stopped"
