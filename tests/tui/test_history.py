"""History you can see: a key's history view (`enter` in Health, `:history KEY`) with its
swaps, rollbacks and health changes marked, the swap picker's memory of failed gates and of
rollbacks in a window, and a client's TREND and CHANGED from the host's store. Pilot over a
real engine; as a client, the host is a real process."""

from __future__ import annotations

import time

import pytest

from oneiric_core.domains import Domain
from oneiric_core.engine import Engine
from oneiric_core.events import Event, Severity
from oneiric_core.store.records import HealthSnapshot
from oneiric_tui.app import OneiricApp
from oneiric_tui.screens.approval_dialog import ApprovalDialog
from oneiric_tui.screens.history import HistoryScreen
from oneiric_tui.screens.swap_picker import SwapPicker
from oneiric_tui.widgets.health_table import HealthTable
from tests.helpers import FAST_APP, demo_copy, start_host_process
from tests.tui.conftest import ready, until
from tests.tui.test_command_line import type_command
from tests.tui.test_console import screen_text, to_cache


async def roll_back_redis(app, times: int = 3) -> None:
    """Swap adapter/cache to the demo's redis (nothing listens on its port) `times` times, the
    way the console's swap runs it (app.act: this engine as host, the host's socket as client)."""
    for _ in range(times):
        result = await app.act("swap", domain="adapter", key="cache", provider="redis", source="console",
                               approve=True)
        assert result.data["swap"]["outcome"] == "rolled-back", result


async def open_picker_on_redis(pilot) -> SwapPicker:
    app = pilot.app
    await to_cache(pilot)
    await pilot.press("s")
    await until(pilot, lambda: isinstance(app.screen, SwapPicker))
    return app.screen


def redis_option(picker: SwapPicker):
    return next(o for o in picker.options if o.provider == "redis")


async def test_enter_in_health_and_history_command_show_the_marked_plot_and_the_picker_remembers(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        await roll_back_redis(app)
        # the picker: redis's last gate failed, and how often it rolled back lately
        picker = await open_picker_on_redis(pilot)
        redis = redis_option(picker)
        assert redis.health == "failed" and redis.failures == "rolled back 3x in 15 min"
        await until(pilot, lambda: "lately: rolled back 3x in 15 min" in screen_text(app))
        assert "x FAILED - " in screen_text(app)
        # choosing it is a risky swap: the dialog names the rollbacks and asks for the key name
        picker.query_one("OptionList").highlighted = picker.options.index(redis)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ApprovalDialog))
        dialog = app.screen
        assert dialog.high_risk and "redis rolled back 3x in 15 min" in dialog.risk_reasons
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ApprovalDialog))

        # `enter` on adapter/cache in the Health pane opens its history
        await pilot.press("3")
        table = app.main.query_one(HealthTable)
        await until(pilot, lambda: table.has_focus)
        table.move_cursor(table.index_of(app.engine.ref("adapter", "cache")))
        await until(pilot, lambda: str(table.cursor_key) == "adapter/cache")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        text = screen_text(app)
        assert "History: adapter/cache" in text and "served by memory" in text
        assert "markers: s swap (1)   x rollback (3)   ! health change (0)" in text
        assert "rollback redis" in text and "activate memory" in text
        assert "adapter/cache: health latency (ms)" in text  # the plot's title, drawn by plotext
        assert "As a client" not in text  # the host's samples carry their own times
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HistoryScreen))

        # `:history KEY` opens the same view for any key, and so does the palette
        assert "History adapter/cache" in [c.title for c in app.get_system_commands(app.main)]
        await type_command(pilot, "history task/runner")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        assert str(app.screen.ref) == "task/runner"
        await until(pilot, lambda: "History: task/runner" in screen_text(app))
        await pilot.press("escape")
        await type_command(pilot, "history nosuch")
        assert any(n.message == "No component 'nosuch': type a key the tree shows (tab completes)."
                   for n in app._notifications)
        assert not isinstance(app.screen, HistoryScreen)


async def test_as_a_client_trend_changed_history_and_the_picker_come_from_the_store(make_app):
    app = make_app()
    host = start_host_process(app.engine.settings_dir, app.engine.state_dir)
    try:
        async with app.run_test(size=(120, 40)) as pilot:  # no toasts over the picker
            await until(pilot, lambda: app.mode == "client")
            await until(pilot, lambda: app.statuses and all(s.state == "ready" for s in app.statuses.values()))
            cache = app.engine.ref("adapter", "cache")
            assert app.engine.health.track(cache) is None  # nothing probed in this process
            # TREND and CHANGED of the host's samples, read from its store
            table = app.main.query_one(HealthTable)
            await until(pilot, lambda: table.row_cells(cache)[5] != "-")
            assert table.row_cells(cache)[4].strip() != ""

            await roll_back_redis(app)  # run by the host, asked through its socket
            await until(pilot, lambda: len(app.engine.journal(kinds=["swap-rollback"])) == 3)
            picker = await open_picker_on_redis(pilot)
            redis = redis_option(picker)
            assert redis.health == "failed" and "6399" in redis.health_message  # not "? UNKNOWN"
            assert redis.failures == "rolled back 3x in 15 min"
            await until(pilot, lambda: "lately: rolled back 3x in 15 min" in screen_text(app))
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, SwapPicker))

            await type_command(pilot, "history cache")
            await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
            await until(pilot, lambda: "x rollback (3)" in screen_text(app))
            text = screen_text(app)
            assert "History: adapter/cache" in text and "served by sqlite" in text
            assert "swap memory -> sqlite" in text and "As a client" in text
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, HistoryScreen))
            # `enter` in Health opens it as a client too
            await pilot.press("3")
            await until(pilot, lambda: table.has_focus)
            table.move_cursor(table.index_of(cache))
            await until(pilot, lambda: table.cursor_key == cache)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.ref == cache)
    finally:
        host.kill()
        host.wait()


# -- a snapshot of the view, from fixed data ---------------------------------------------------

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC: the app's clock, so ages and times never move


@pytest.fixture
def history_app(tmp_path, monkeypatch):
    """A console that never starts (as snapshots need) over a store holding a host's health
    snapshot of adapter/cache (40 samples, 10 s apart) and its swaps, rollbacks and a health
    change, all at fixed times: what a client reads."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    settings = demo_copy(tmp_path)
    (settings / "app.yml").write_text(FAST_APP.replace("interval_s: 3600", "interval_s: 10"))
    engine = Engine("settings", state_dir=tmp_path / "state", actor="operator")
    samples = [1.0 + (i % 7) * 0.2 + (3.0 if 20 <= i < 26 else 0.0) for i in range(40)]
    engine.store.put_health(HealthSnapshot("adapter", "cache", "sqlite", "ok", samples[-1], "", T0 - 5,
                                           T0 - 150, samples))
    for ts, kind, provider, outcome, data in (
            (T0 - 330, "swap-complete", "sqlite", "complete", {"from": "memory", "to": "sqlite"}),
            (T0 - 200, "swap-rollback", "redis", "rolled-back", {"from": "sqlite", "to": "redis"}),
            (T0 - 190, "health-changed", "sqlite", "degraded", {"from": "ok", "to": "degraded"}),
            (T0 - 150, "health-changed", "sqlite", "ok", {"from": "degraded", "to": "ok"}),
            (T0 - 60, "swap-rollback", "redis", "rolled-back", {"from": "sqlite", "to": "redis"})):
        engine.store.append(Event(kind, f"{kind} {provider}", Severity.INFO, Domain.ADAPTER, "cache", provider,
                                  "operator", outcome, data=data, ts=ts))
    yield OneiricApp(engine, autostart=False, clock=lambda: T0)
    monkeypatch.undo()  # the TZ before, in force again
    time.tzset()


def test_history_view_snapshot(snap_compare, history_app):
    async def open_history(pilot):
        await until(pilot, lambda: pilot.app.upkeep is not None)
        pilot.app.main.action_history(pilot.app.engine.ref("adapter", "cache"))
        await until(pilot, lambda: isinstance(pilot.app.screen, HistoryScreen)
                    and pilot.app.screen.history is not None)
        await pilot.pause(0.2)

    assert snap_compare(history_app, run_before=open_history, terminal_size=(120, 40))
