"""The console as a web session runs it (web_tab.py): a client that never hosts, and keys that
are disabled say why instead of doing nothing. Pilot over a real engine; the host is a real
process."""

from __future__ import annotations

from oneiric_core.events import Event
from oneiric_core.store import StateStore
from oneiric_tui.main_screen import MainScreen
from oneiric_tui.widgets.swap_log import SwapLog
from tests.helpers import start_host_process
from tests.tui.conftest import ready, until
from tests.tui.test_console import screen_text, to_cache


async def test_a_disabled_key_says_in_one_line_why_it_does_nothing(make_app):
    app = make_app(read_only=True, read_only_reason="started without --web-operate")
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        await to_cache(pilot)
        before = app.engine.store.last_journal_id()
        await pilot.press("p")
        await until(pilot, lambda: any(n.message == "read-only: p would pause adapter/cache (started without "
                                       "--web-operate)." for n in app._notifications))
        await until(pilot, lambda: "read-only: p would pause adapter/cache" in screen_text(app))  # shown
        await pilot.press("s")
        await until(pilot, lambda: any(n.message.startswith("read-only: s would open the swap picker for "
                                                            "adapter/cache") for n in app._notifications))
        assert isinstance(app.screen, MainScreen)
        assert app.engine.journal(after_id=before) == []


async def test_a_console_that_may_not_host_follows_hosts_and_never_becomes_one(make_app):
    app = make_app(may_host=False)
    engine = app.engine
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await until(pilot, lambda: app.mode == "waiting")
        assert engine.host() == (None, False) and not engine.is_host
        assert "CLIENT waiting for a host" in screen_text(app)
        await pilot.press("p")
        await until(pilot, lambda: any(n.message == "No host runs for this state directory: pause is refused until "
                                       "one does." for n in app._notifications))
        host = start_host_process(engine.settings_dir, engine.state_dir)
        try:
            await until(pilot, lambda: app.mode == "client", timeout=15)
            await until(pilot, lambda: f"CLIENT attached to pid {host.pid}" in screen_text(app))
            # The host goes away: this console waits for the next one instead of taking over.
            host.kill()
            host.wait()
            await until(pilot, lambda: app.mode == "waiting", timeout=15)
            await until(pilot, lambda: any("this session waits for the next host" in n.message
                                           for n in app._notifications))
            # A barrier instead of a sleep: an event written to the store now is read by the
            # console's next look at it, and a look decides first whether to take over. Once
            # the event is in the swap log, a look after the host died has come and gone.
            with StateStore(engine.state_dir / "state.sqlite") as store:
                marker = store.append(Event("config-changed", "written by the test after the host died"))
            await until(pilot, lambda: app.mode != "waiting" or any(
                e.id == marker.id for e in app.main.query_one(SwapLog).visible_events()))
            assert app.mode == "waiting" and not engine.is_host
            lease, alive = engine.host()
            assert lease is not None and lease.pid == host.pid and not alive
        finally:
            if host.poll() is None:
                host.kill()
                host.wait()
