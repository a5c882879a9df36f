"""The header fitted to the width (oneiric_tui/header.py): the least needed parts give way
first, the mode and the pending count never do, and room freed is used again."""

from __future__ import annotations

from rich.text import Text

from oneiric_tui.header import Part, fit

PARTS = [Part("mode", ("HOST",), sep=" "), Part("detail", ("pid 12345", ""), sep=" "),
         Part("operator", ("operator carol", "")), Part("approvals", ("approvals manual", "manual", "")),
         Part("pending", ("3 pending",)), Part("maintenance", ("maintenance 7 due (m)", "maint 7 due", "7 due")),
         Part("upstream", ("upstream Oneiric settings NOT READ (m)", "upstream NOT READ", "NOT READ"))]


def line(width: int) -> str:
    return fit(Text(" Oneiric "), PARTS, width).plain


def test_everything_in_full_when_it_fits() -> None:
    assert line(200) == (" Oneiric  HOST pid 12345 | operator carol | approvals manual | 3 pending"
                         " | maintenance 7 due (m) | upstream Oneiric settings NOT READ (m)")


def test_at_80_columns_the_counts_stay_and_the_line_fits() -> None:
    shown = line(78)
    assert len(shown) <= 78
    assert shown.startswith(" Oneiric  HOST") and "3 pending" in shown and "7 due" in shown and "NOT READ" in shown
    assert "operator carol" in shown  # who this console acts as goes last


def test_too_narrow_for_the_parts_that_stay_the_line_is_left_to_be_cut() -> None:
    assert line(20) == " Oneiric  HOST | 3 pending | 7 due | NOT READ"


async def test_a_client_at_80_columns_keeps_the_pending_count_on_its_one_line(make_app):
    """The real header of a client (a host in another process, a proposal waiting) at 80x24:
    the line the operator sees holds "1 pending" and nothing of it wraps out of sight."""
    from oneiric_tui.main_screen import MainScreen
    from tests.helpers import start_host_process
    from tests.tui.conftest import until

    app = make_app()
    engine = app.engine
    host = start_host_process(engine.settings_dir, engine.state_dir)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.mode == "client", timeout=15)
            await app.engine.request_swap("adapter", "cache", "redis", reason="a long reason for the test")
            app.refresh_approvals()
            await until(pilot, lambda: app._pending == 1)
            bar = app.screen.query_one("#status-bar")
            await until(pilot, lambda: "CLIENT" in str(bar.render()))
            assert isinstance(app.screen, MainScreen)
            shown = bar.render_lines(bar.region.reset_offset)[0].text  # the one row on screen
            assert "CLIENT" in shown and "1 pending" in shown, shown
    finally:
        host.kill()
        host.wait()


def test_every_alarm_at_once_at_80_columns_keeps_the_pending_count() -> None:
    """A read-only client with every notice up: the parts that never give way come after the
    pending count, so a line still too long loses its tail, never the count."""
    parts = [Part("mode", ("CLIENT",), sep=" "),
             Part("detail", ("attached to pid 4242 on a-long-hostname", ""), sep=" "),
             Part("read-only", ("READ-ONLY",), sep=" "), Part("operator", ("operator carol", "")),
             Part("approvals", ("approvals manual two-person", "manual two-person", "")),
             Part("pending", ("12 pending",)),
             Part("maintenance", ("maintenance 7 due (2 overdue) (m)", "maint 7 due", "7 due")),
             Part("upstream", ("upstream Oneiric settings NOT READ (m)", "upstream NOT READ", "NOT READ")),
             Part("watcher", ("settings watcher DOWN", "watcher DOWN")),
             Part("telemetry", ("telemetry: otlp not installed",))]
    shown = fit(Text(" Oneiric "), parts, 78).plain
    assert "12 pending" in shown[:78]
