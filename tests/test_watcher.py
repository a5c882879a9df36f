"""The settings watcher end to end: a real watchdog observer (inotify) on a temp copy of the
demo settings, a real host Engine, real file writes. Outcomes are read where an operator
reads them: the journal, the proposals, components() and `oneiric status`.

Nothing here sleeps a fixed time and then asserts: every wait polls for an outcome with a
deadline, and no speed is asserted (bench/watcher.py measures latency). One bound is a
contract, not a speed: the debounce hands a save over no later than MAX_WAIT_S after it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from oneiric_core.engine import Engine
from tests.helpers import FAST_APP, REPO, settings_with, start_host_process, until


def kinds(engine: Engine, *names: str):
    return engine.journal(kinds=list(names))


def select_cache(settings: Path, provider: str) -> str:
    """adapters.yml of the demo with adapter/cache selecting `provider` (everything else kept)."""
    text = (settings / "adapters.yml").read_text()
    assert "  cache: memory\n" in text
    return text.replace("  cache: memory\n", f"  cache: {provider}\n")


def cache_status(engine: Engine):
    return next(c for c in engine.components() if str(c.ref) == "adapter/cache")


def pending(engine: Engine):
    return engine.approvals.pending()


async def host(settings: Path, tmp_path: Path, **attrs) -> Engine:
    eng = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    for name, value in attrs.items():
        setattr(eng, name, value)
    await eng.start()
    return eng


@pytest.fixture
async def manual(settings_dir: Path, tmp_path: Path):
    eng = await host(settings_dir, tmp_path)
    yield eng
    await eng.stop()
    eng.close()


# -- selections become proposals -----------------------------------------------------------------

async def test_a_selection_edit_becomes_a_pending_proposal_and_nothing_swaps_until_approved(manual, settings_dir):
    (settings_dir / "adapters.yml").write_text(select_cache(settings_dir, "sqlite"))

    [proposal] = await until(lambda: pending(manual), "a pending proposal")
    assert (proposal.domain, proposal.key, proposal.from_provider, proposal.to_provider) == \
        ("adapter", "cache", "memory", "sqlite")
    assert proposal.source == "settings-watcher" and proposal.requested_by == "tester"
    assert "adapters.yml selects sqlite" in proposal.reason

    # While it waits: the resolver follows the file, the old provider keeps serving.
    status = cache_status(manual)
    assert (status.selection, status.winner, status.serving, status.state) == ("sqlite", "sqlite", "memory", "ready")
    assert status.proposal["id"] == proposal.id and status.proposal["to"] == "sqlite"
    with manual.use("adapter", "cache") as cache:
        assert type(cache).__module__.endswith("cache_memory")
    changed = kinds(manual, "selection-changed")[-1]
    assert changed.data["from"] == "memory" and changed.data["to"] == "sqlite"
    assert kinds(manual, "config-changed")[-1].data["file"].endswith("adapters.yml")

    _, result = await manual.approve(proposal.id, actor="approver")
    assert result.outcome.value == "complete"
    status = cache_status(manual)
    assert status.serving == "sqlite" and status.proposal is None
    assert manual.approvals.get(proposal.id).status == "applied"


async def test_a_save_becomes_a_proposal_within_the_debounce_bound(manual, settings_dir):
    """The watcher's promise (watcher.py): a change settles quiet_s after its close and never
    later than max_wait_s after its first event. A debounce of seconds would pass every other
    test here (they poll for 10 s); this one measures the save against the proposal's own time
    on the same clock. The bound is the promise written here, not read from the code it checks
    (MAX_WAIT_S is 2 s; the rest is slack for the reload on a busy machine)."""
    promised_s = 3.0
    path = settings_dir / "adapters.yml"
    path.write_text(select_cache(settings_dir, "sqlite"))
    saved_at = path.stat().st_mtime
    [proposal] = await until(lambda: pending(manual), "a pending proposal")
    assert proposal.created_at - saved_at <= promised_s, (saved_at, proposal.created_at)


async def test_auto_mode_applies_the_swap_and_app_yml_policy_changes_take_effect(manual, settings_dir):
    (settings_dir / "app.yml").write_text(FAST_APP + "approvals:\n  mode: auto\n")
    changed = await until(lambda: [e for e in kinds(manual, "config-changed") if e.data["file"].endswith("app.yml")],
                          "app.yml reloaded")
    assert "approvals" in changed[-1].data["applied"]

    (settings_dir / "adapters.yml").write_text(select_cache(settings_dir, "sqlite"))
    await until(lambda: cache_status(manual).serving == "sqlite", "the swap to sqlite")
    [proposal] = manual.approvals.recent()
    assert proposal.status == "applied" and proposal.source == "settings-watcher"
    assert proposal.decided_by == "policy:auto"
    assert cache_status(manual).proposal is None
    assert kinds(manual, "swap-complete")[-1].data["to"] == "sqlite"


async def test_reverting_an_edit_withdraws_its_proposal_and_proposes_nothing(manual, settings_dir):
    adapters = settings_dir / "adapters.yml"
    original = adapters.read_text()
    adapters.write_text(select_cache(settings_dir, "sqlite"))
    [proposal] = await until(lambda: pending(manual), "a pending proposal")

    adapters.write_text(original)  # back to memory, which is what serves
    await until(lambda: manual.approvals.get(proposal.id).status == "rejected", "the proposal withdrawn")
    assert "superseded" in (manual.approvals.get(proposal.id).comment or "")
    assert pending(manual) == [] and cache_status(manual).proposal is None
    assert len(kinds(manual, "swap-requested")) == 1


# -- invalid files -------------------------------------------------------------------------------

BROKEN_SYNTAX = """\
selections:
  cache: memory
  storage local
"""


async def test_broken_yaml_is_journaled_with_its_location_and_fixing_it_recovers(manual, settings_dir):
    adapters = settings_dir / "adapters.yml"
    good = adapters.read_text()
    adapters.write_text(BROKEN_SYNTAX)

    [invalid] = await until(lambda: kinds(manual, "config-invalid"), "config-invalid")
    assert invalid.severity.value == "error"
    assert invalid.data["file"].endswith("adapters.yml") and invalid.data["line"] == 4
    assert invalid.data["column"] is not None
    assert f"adapters.yml:4:{invalid.data['column']}:" in invalid.message
    assert "the last good version of that file stays in force" in invalid.message
    # the last good settings keep serving: the demo's candidates and selection are all there
    status = cache_status(manual)
    assert (status.selection, status.winner, status.serving) == ("memory", "memory", "memory")
    assert status.candidates == 4 and manual.settings.problems
    assert pending(manual) == []

    adapters.write_text(good.replace("  cache: memory\n", "  cache: sqlite\n"))
    [recovered] = await until(lambda: kinds(manual, "config-recovered"), "config-recovered")
    assert recovered.data["file"].endswith("adapters.yml")
    [proposal] = await until(lambda: pending(manual), "a proposal from the fixed file")
    assert proposal.to_provider == "sqlite"
    assert manual.settings.problems == []
    assert len(kinds(manual, "config-invalid")) == 1


async def test_a_deleted_file_keeps_its_last_good_version_until_it_is_recreated(manual, settings_dir):
    adapters = settings_dir / "adapters.yml"
    text = select_cache(settings_dir, "sqlite")
    adapters.unlink()
    deleted = await until(lambda: [e for e in kinds(manual, "config-changed") if e.data.get("deleted")],
                          "the deletion journaled")
    assert deleted[0].severity.value == "warning" and "last good version stays in force" in deleted[0].message
    assert cache_status(manual).selection == "memory" and pending(manual) == []

    adapters.write_text(text)
    [proposal] = await until(lambda: pending(manual), "a proposal from the recreated file")
    assert proposal.to_provider == "sqlite"


# -- how files get written -------------------------------------------------------------------------

async def test_a_burst_of_writes_is_one_reload(settings_dir, tmp_path):
    # A wider quiet window than the default, so a loaded machine cannot split the burst.
    eng = await host(settings_dir, tmp_path, watcher_quiet_s=0.3)
    try:
        adapters = settings_dir / "adapters.yml"
        final = select_cache(settings_dir, "sqlite")
        contents = [select_cache(settings_dir, p) for p in ("redis", "memory-large", "redis")]
        contents += [BROKEN_SYNTAX, "", final]

        def burst() -> None:
            for text in contents * 3:
                adapters.write_text(text)
                time.sleep(0.002)
            adapters.write_text(final)

        writer = threading.Thread(target=burst)
        writer.start()
        await asyncio.to_thread(writer.join)
        [proposal] = await until(lambda: pending(eng), "the proposal after the burst")
        assert proposal.to_provider == "sqlite"
        reloads = [e for e in kinds(eng, "config-changed") if e.data["file"].endswith("adapters.yml")]
        assert len(reloads) == 1
        assert kinds(eng, "config-invalid") == []
        assert [e.data["to"] for e in kinds(eng, "selection-changed")] == ["sqlite"]
        assert len(kinds(eng, "swap-requested")) == 1
    finally:
        await eng.stop()
        eng.close()


async def test_an_atomic_rename_save_is_seen_and_editor_temp_files_are_ignored(manual, settings_dir):
    # editor droppings with broken content: none of them is a settings file
    for junk in (".adapters.yml.swp", "adapters.yml~", "4913", "adapters.yml.tmp", "#adapters.yml#"):
        (settings_dir / junk).write_text(BROKEN_SYNTAX)
    tmp = settings_dir / ".adapters.yml.tmp-save"
    tmp.write_text(select_cache(settings_dir, "sqlite"))
    os.replace(tmp, settings_dir / "adapters.yml")

    [proposal] = await until(lambda: pending(manual), "a proposal from the rename-save")
    assert proposal.to_provider == "sqlite"
    assert kinds(manual, "config-invalid") == []


async def test_a_vim_style_save_moves_the_original_aside_and_writes_a_new_file(manual, settings_dir):
    adapters = settings_dir / "adapters.yml"
    text = select_cache(settings_dir, "sqlite")
    backup = settings_dir / "adapters.yml~"
    os.rename(adapters, backup)
    adapters.write_text(text)
    backup.unlink()

    [proposal] = await until(lambda: pending(manual), "a proposal from the vim-style save")
    assert proposal.to_provider == "sqlite"
    assert not [e for e in kinds(manual, "config-changed") if e.data.get("deleted")]


async def test_a_file_moved_in_from_elsewhere_is_seen(manual, settings_dir, tmp_path):
    outside = tmp_path / "adapters.yml.new"
    outside.write_text(select_cache(settings_dir, "sqlite"))
    os.replace(outside, settings_dir / "adapters.yml")
    [proposal] = await until(lambda: pending(manual), "a proposal from the moved-in file")
    assert proposal.to_provider == "sqlite"


# -- liveness ------------------------------------------------------------------------------------

async def test_stop_stops_the_observer_thread_and_status_says_so(settings_dir, tmp_path):
    eng = await host(settings_dir, tmp_path)
    try:
        status = eng.watcher_status()
        assert status.alive and status.describe() == f"alive (watching {Path(os.path.abspath(settings_dir))})"
        assert kinds(eng, "watcher-started")
        thread = eng.watcher.thread
        assert thread.is_alive()
        await eng.stop()
        assert not thread.is_alive()
        assert kinds(eng, "watcher-stopped")
        assert not eng.watcher_status().alive
    finally:
        await eng.stop()
        eng.close()


async def test_a_deleted_settings_directory_puts_the_watcher_down(tmp_path):
    settings = settings_with(tmp_path, "")
    eng = await host(settings, tmp_path)
    try:
        assert eng.watcher_status().alive
        shutil.rmtree(settings)
        [error] = await until(lambda: kinds(eng, "watcher-error"), "watcher-error")
        assert "settings edits on disk are not picked up" in error.message
        status = eng.watcher_status()
        assert not status.alive and "deleted" in status.reason
        assert eng.store.get_meta("settings_watcher")["state"] == "down"
        # the host keeps serving what it had
        assert cache_status(eng).serving == "memory"
    finally:
        await eng.stop()
        eng.close()


def run_status(settings: Path, state: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    env.update({"ONEIRIC_OPERATOR": "tester", "COLUMNS": "400"})
    return subprocess.run(
        [sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings), "--state-dir", str(state),
         "status", *args],
        capture_output=True, text=True, timeout=60, cwd=REPO, env=env,
    )


async def test_oneiric_status_in_another_process_shows_the_hosts_watcher_and_its_proposal(settings_dir, tmp_path):
    state = tmp_path / "state"
    proc = start_host_process(settings_dir, state)  # its cache serves sqlite
    try:
        text = run_status(settings_dir, state)
        assert text.returncode == 0, text.stderr
        assert f"settings watcher: alive (watching {Path(os.path.abspath(settings_dir))})" in text.stdout

        (settings_dir / "adapters.yml").write_text(select_cache(settings_dir, "redis"))
        client = Engine(settings_dir, state_dir=state, actor="client")
        try:
            await until(lambda: cache_status(client).proposal, "the host's proposal, seen from a client")
        finally:
            client.close()
        data = json.loads(run_status(settings_dir, state, "--json", "--key", "cache").stdout)
        assert data["watcher"]["alive"] is True and data["watcher"]["pid"] == proc.pid
        assert data["watcher"]["directory"] == str(Path(os.path.abspath(settings_dir)))
        [cache] = data["components"]
        assert (cache["winner"], cache["serving"]) == ("redis", "sqlite")
        assert cache["proposal"]["from"] == "sqlite" and cache["proposal"]["to"] == "redis"
        assert cache["proposal"]["source"] == "settings-watcher"
        text = run_status(settings_dir, state, "--key", "cache")
        assert f"proposal #{cache['proposal']['id']} pending: sqlite -> redis (settings-watcher)" in text.stdout
    finally:
        proc.kill()
        proc.wait()
    # the lease goes stale a few seconds after the host dies
    await until(lambda: "settings watcher: down (no host running)" in run_status(settings_dir, state).stdout,
                "status to show the watcher down", timeout=15)


async def test_a_watcher_that_cannot_start_is_journaled_and_the_host_runs_on(tmp_path):
    settings = settings_with(tmp_path, "")
    eng = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    shutil.rmtree(settings)  # loaded, then gone before the host starts watching it
    await eng.start()
    try:
        [error] = kinds(eng, "watcher-error")
        assert f"cannot watch {settings}" in error.message and error.severity.value == "error"
        status = eng.watcher_status()
        assert not status.alive and "cannot watch" in status.reason
        assert eng.store.get_meta("settings_watcher")["state"] == "down"
        assert cache_status(eng).serving == "memory"
    finally:
        await eng.stop()
        eng.close()


async def test_a_settings_file_slow_to_parse_never_stalls_the_host(settings_dir, tmp_path):
    """A file the fast YAML path hands to the line-exact parser (names like `k_1` do) takes
    seconds; parsed on the loop it held back every heartbeat, command and console update (at
    the size limit: over a minute, past the lease's staleness). The host parses it in a worker
    thread: its heartbeat goes on while the file is read."""
    from oneiric_core.store import StateStore

    eng = await host(settings_dir, tmp_path)
    beats: set[float] = set()
    done = threading.Event()

    def watch_heartbeats() -> None:
        with StateStore(tmp_path / "state" / "state.sqlite") as store:
            while not done.is_set():
                lease = store.current_lease()
                if lease is not None:
                    beats.add(lease.heartbeat_at)
                time.sleep(0.05)

    watcher = threading.Thread(target=watch_heartbeats)
    watcher.start()
    try:
        lines = ["selections:", "  scheduler: interval", "candidates:"]
        for i in range(6000):
            lines += [f"  - key: k_{i}", f"    provider: p_{i}",
                      "    factory: oneiric_core.providers.cache_memory:create"]
        written_at = time.time()
        (settings_dir / "services.yml").write_text("\n".join(lines) + "\n")
        changed = await until(lambda: [e for e in kinds(eng, "config-changed") if "services.yml" in e.message],
                              "the big file to be reloaded", timeout=120)
        reloaded_at = changed[-1].ts
    finally:
        done.set()
        watcher.join()
        await eng.stop()
        eng.close()
    assert reloaded_at - written_at > 1.5, "the file parsed too fast to tell anything"
    during = sorted(b for b in beats if written_at + 0.3 < b < reloaded_at - 0.2)
    assert during, f"no heartbeat while the file was parsed ({written_at:.2f} .. {reloaded_at:.2f}: {sorted(beats)})"
